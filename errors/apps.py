from importlib import import_module
from importlib.util import find_spec
from types import ModuleType

from django.apps import AppConfig
from django.conf import settings

from opsconsole.conf import apply_all_defaults


class ErrorsConfig(AppConfig):
    name = "errors"
    verbose_name = "Errors"

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        super().__init__(app_name, app_module)
        # Before any model or task module reads a setting (opsconsole.conf).
        apply_all_defaults()

    def ready(self) -> None:
        # Receivers are wired here, never at import time of models.
        if find_spec(f"{self.name}.receivers"):
            import_module(f"{self.name}.receivers")
        from errors.health import ErrorDigestBacklog
        from health.registry import register

        register("errors", lambda: [ErrorDigestBacklog()])
        if settings.OPS_ERRORS_CAPTURE:
            from errors import capture

            capture.init()
