from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The console's own pages that read every app: the dashboard (the admin home)."""

    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from django.contrib import admin

        from console import views

        # The admin home becomes the dashboard (opsconsole.admintools.OpsAdminSite.home_view).
        admin.site.home_view = views.dashboard_view  # type: ignore[attr-defined]
