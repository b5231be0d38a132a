from types import ModuleType

from django.apps import AppConfig

from opsconsole.conf import apply_all_defaults


class QueuesConfig(AppConfig):
    name = "queues"
    verbose_name = "Queues and tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        super().__init__(app_name, app_module)
        # Before any model or task module reads a setting (opsconsole.conf).
        apply_all_defaults()

    def ready(self) -> None:
        from queues import recording  # noqa: F401  (connects Celery's signals)
