"""Failed tasks (recorded from Celery's task_failure signal, whether the task keeps a result or
not) and per-minute runtime figures per task name."""

from __future__ import annotations

from django.db import models


class TaskFailure(models.Model):
    """One task run that raised, with what is needed to look at it and to send it again.

    `args` / `kwargs` are scrubbed and capped for display. `raw_arguments` holds the arguments
    as sent (JSON), only to retry the task: never shown, and emptied when the failure is retried,
    discarded or deleted by retention. It is empty when the arguments could not be kept whole
    (too large or not JSON), and then the task cannot be retried from the console.
    """

    class State(models.TextChoices):
        FAILED = "failed", "failed"
        RETRIED = "retried", "retried"
        DISCARDED = "discarded", "discarded"

    task_id = models.CharField(max_length=255, db_index=True)
    task_name = models.CharField(max_length=255, db_index=True)
    queue = models.CharField(max_length=255, blank=True, default="")
    args = models.JSONField(default=list, blank=True, help_text="Scrubbed and capped.")
    kwargs = models.JSONField(default=dict, blank=True, help_text="Scrubbed and capped.")
    arguments_changed = models.BooleanField(
        default=False, help_text="Scrubbing or the size cap changed the arguments shown here."
    )
    raw_arguments = models.TextField(blank=True, default="")
    exception_type = models.CharField(max_length=255, blank=True, default="")
    exception_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    hostname = models.CharField(max_length=255, blank=True, default="")
    failed_at = models.DateTimeField(db_index=True)
    retries = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.FAILED)
    retried_as = models.CharField(max_length=255, blank=True, default="")
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-failed_at", "-id"]
        permissions = [("retry_task", "Can retry and discard failed tasks")]
        indexes = [models.Index(fields=["state", "failed_at"], name="queues_failure_state")]

    def __str__(self) -> str:
        return f"{self.task_name} [{self.task_id}]"

    @property
    def retriable(self) -> bool:
        return self.state == self.State.FAILED and bool(self.raw_arguments)


class TaskRuns(models.Model):
    """Runs of one task name in one period: finished runs, failures, runtime total and a
    histogram. `histogram` counts runs per slot of metrics.histogram.DURATION_BUCKETS (the last
    slot is everything above), so percentiles over any span are read from the summed counts."""

    task_name = models.CharField(max_length=255)
    count = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    runtime_sum = models.FloatField(default=0.0, help_text="Seconds.")
    histogram = models.JSONField(default=list)

    class Meta:
        abstract = True


class TaskMinute(TaskRuns):
    """One minute of one task name (the 1 h view reads these)."""

    minute = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "task_name"], name="queues_minute_unique")
        ]
        indexes = [models.Index(fields=["minute"], name="queues_minute_time")]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.task_name}: {self.count}"


class TaskHour(TaskRuns):
    """The same figures per hour, written with the minutes, so 24 h and 7 d read 24 and 168
    rows per task name instead of 1,440 and 10,080."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "task_name"], name="queues_hour_unique")
        ]
        indexes = [models.Index(fields=["hour"], name="queues_hour_time")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.task_name}: {self.count}"
