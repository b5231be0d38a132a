from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"
    verbose_name = "Backups"

    def ready(self) -> None:
        # Receivers are wired here, never at import time of models.
        if find_spec(f"{self.name}.receivers"):
            import_module(f"{self.name}.receivers")
        from backups.health import checks
        from health.registry import register

        register("backups", checks)
