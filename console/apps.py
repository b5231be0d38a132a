from types import ModuleType

from django.apps import AppConfig

from opsconsole.conf import apply_all_defaults


class ConsoleConfig(AppConfig):
    """The console's own pages that read every app: the dashboard (the admin home)."""

    name = "console"
    verbose_name = "Console"

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        super().__init__(app_name, app_module)
        # Before any model or task module reads a setting (opsconsole.conf).
        apply_all_defaults()

    def ready(self) -> None:
        from django.contrib import admin

        from console import views

        # The admin home becomes the dashboard (opsconsole.admintools.OpsAdminSite.home_view).
        admin.site.home_view = views.dashboard_view  # type: ignore[attr-defined]
