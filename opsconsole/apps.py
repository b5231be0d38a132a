from types import ModuleType

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps

from opsconsole.conf import apply_all_defaults


class OpsConsoleConfig(AppConfig):
    name = "opsconsole"
    verbose_name = "Ops Console"

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        super().__init__(app_name, app_module)
        # Before any model or task module reads a setting (opsconsole.conf).
        apply_all_defaults()

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from opsconsole import receivers, system_checks  # noqa: F401  (registers both)
        from opsconsole.roles import sync_after_migrate

        post_migrate.connect(sync_after_migrate, dispatch_uid="opsconsole.roles.sync")


class OpsAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the console's site (opsconsole.admintools.OpsAdminSite) as
    `admin.site`, so third-party ModelAdmins are registered on it too. A host project lists it
    in INSTALLED_APPS instead of "django.contrib.admin" (README: Add it to an existing project)."""

    default = False  # named in INSTALLED_APPS; OpsConsoleConfig stays this module's default
    default_site = "opsconsole.admintools.OpsAdminSite"
