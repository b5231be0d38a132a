from django.apps import AppConfig


class OpsConsoleConfig(AppConfig):
    name = "opsconsole"
    verbose_name = "Ops Console"

    def ready(self) -> None:
        from opsconsole import checks, receivers  # noqa: F401  (registers checks and receivers)
