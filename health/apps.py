from importlib import import_module
from importlib.util import find_spec
from types import ModuleType

from django.apps import AppConfig

from opsconsole.conf import apply_all_defaults


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = "Health checks"

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        super().__init__(app_name, app_module)
        # Before any model or task module reads a setting (opsconsole.conf).
        apply_all_defaults()

    def ready(self) -> None:
        from health.components import register_defaults

        register_defaults()
        # Receivers are wired here, never at import time of models.
        if find_spec(f"{self.name}.receivers"):
            import_module(f"{self.name}.receivers")
