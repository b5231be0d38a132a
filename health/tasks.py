from celery import shared_task

from health import services


# Runs every minute and each probe has its own timeout: a run must never outlast its interval.
@shared_task(
    name="health.tasks.perform_health_check", ignore_result=False, soft_time_limit=45, time_limit=60
)
def perform_health_check() -> dict[str, object]:
    """PerformHealthCheck: run every check, store the run, send the signals."""
    run = services.perform_health_check(trigger="schedule")
    return {"id": run.pk, "status": run.status, "duration_ms": run.duration_ms}
