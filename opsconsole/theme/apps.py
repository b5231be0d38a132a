from django.apps import AppConfig


class OpsThemeConfig(AppConfig):
    name = "opsconsole.theme"
    label = "opsconsole_theme"
    verbose_name = "Ops Console templates"
