from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig
from django.conf import settings


class ErrorsConfig(AppConfig):
    name = "errors"
    verbose_name = "Errors"

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
