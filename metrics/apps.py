from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        import_module(f"{self.name}.system_checks")  # registers the system checks
        import_module(f"{self.name}.sampler").connect()  # one host sampler per host
        # Receivers are wired here, never at import time of models.
        if find_spec(f"{self.name}.receivers"):
            import_module(f"{self.name}.receivers")
