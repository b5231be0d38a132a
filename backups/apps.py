from importlib import import_module
from importlib.util import find_spec
from types import ModuleType

from django.apps import AppConfig

from opsconsole.conf import apply_all_defaults


class BackupsConfig(AppConfig):
    name = "backups"
    verbose_name = "Backups"

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        super().__init__(app_name, app_module)
        # Before any model or task module reads a setting (opsconsole.conf).
        apply_all_defaults()

    def ready(self) -> None:
        # Receivers are wired here, never at import time of models.
        if find_spec(f"{self.name}.receivers"):
            import_module(f"{self.name}.receivers")
        from backups.health import checks
        from health.registry import register

        register("backups", checks)
