from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"
    verbose_name = "Queues and tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from queues import recording  # noqa: F401  (connects Celery's signals)
