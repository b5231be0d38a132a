from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = "Health checks"

    def ready(self) -> None:
        from health.components import register_defaults

        register_defaults()
        # Receivers are wired here, never at import time of models.
        if find_spec(f"{self.name}.receivers"):
            import_module(f"{self.name}.receivers")
