"""Metric storage: minute rows, hourly/daily rollups, slow requests/queries, thresholds."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class PerformanceMetric(models.Model):
    """One measured figure for one minute: app-wide (key ""), or per route, task or queue."""

    recorded_at = models.DateTimeField(help_text="Start of the minute the figure covers.")
    metric = models.CharField(max_length=64)
    key = models.CharField(max_length=255, blank=True, default="")
    host = models.CharField(max_length=255, blank=True, default="")
    value = models.FloatField()
    # How many observations stand behind the value (requests, tasks, queries); 0 for gauges.
    samples = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "key", "host", "recorded_at"], name="metrics_perf_unique_minute"
            )
        ]
        indexes = [models.Index(fields=["recorded_at"], name="metrics_perf_time")]

    def __str__(self) -> str:
        return f"{self.recorded_at:%Y-%m-%d %H:%M} {self.metric}[{self.key}] = {self.value:g}"


class ResourceUsage(models.Model):
    """One psutil sample of one host."""

    recorded_at = models.DateTimeField()
    host = models.CharField(max_length=255)
    cpu_percent = models.FloatField()
    cpu_count = models.PositiveSmallIntegerField()
    memory_percent = models.FloatField()
    memory_used_bytes = models.BigIntegerField()
    memory_total_bytes = models.BigIntegerField()
    swap_percent = models.FloatField()
    swap_used_bytes = models.BigIntegerField()
    # {mount: {"total": bytes, "used": bytes, "percent": float}}
    disks = models.JSONField(default=dict)
    # Raw interface counters, kept so the next sample can compute a rate.
    net_bytes_recv_total = models.BigIntegerField()
    net_bytes_sent_total = models.BigIntegerField()
    # Rates against the previous sample of this host; null on the first sample or a reset.
    net_bytes_in_per_s = models.FloatField(null=True, blank=True)
    net_bytes_out_per_s = models.FloatField(null=True, blank=True)
    net_connections = models.PositiveIntegerField(null=True, blank=True)
    process_count = models.PositiveIntegerField()
    load_1 = models.FloatField()
    load_5 = models.FloatField()
    load_15 = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "recorded_at"], name="metrics_res_unique")
        ]
        indexes = [models.Index(fields=["recorded_at"], name="metrics_res_time")]
        verbose_name_plural = "resource usage"

    def __str__(self) -> str:
        return f"{self.recorded_at:%Y-%m-%d %H:%M} {self.host}"


class MetricRollup(models.Model):
    """count/sum/min/max of a series over an hour or a day, built from the finer rows."""

    class Period(models.TextChoices):
        HOUR = "hour", "hour"
        DAY = "day", "day"

    period = models.CharField(max_length=4, choices=Period.choices)
    bucket = models.DateTimeField()
    metric = models.CharField(max_length=64)
    key = models.CharField(max_length=255, blank=True, default="")
    host = models.CharField(max_length=255, blank=True, default="")
    count = models.PositiveIntegerField()
    sum = models.FloatField()
    min = models.FloatField()
    max = models.FloatField()
    samples = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["period", "metric", "key", "host", "bucket"], name="metrics_rollup_unique"
            )
        ]
        indexes = [models.Index(fields=["period", "bucket"], name="metrics_rollup_time")]

    def __str__(self) -> str:
        return f"{self.period} {self.bucket:%Y-%m-%d %H:%M} {self.metric}[{self.key}]"


class CounterValue(models.Model):
    """Request/task counters when there is no Redis (the embedded default).

    minute = 0 holds the all-time totals behind /metrics; other rows hold one minute
    (epoch seconds) for the collectors. Processes add to them with INSERT .. ON CONFLICT.
    """

    minute = models.BigIntegerField()
    field = models.CharField(max_length=600)
    value = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "field"], name="metrics_counter_unique")
        ]

    def __str__(self) -> str:
        return f"{self.minute} {self.field} = {self.value:g}"


class SeenUser(models.Model):
    """Last request time per authenticated user, when there is no Redis."""

    user_id = models.BigIntegerField(primary_key=True)
    last_seen = models.FloatField(help_text="Epoch seconds.")

    def __str__(self) -> str:
        return str(self.user_id)


class SlowRequest(models.Model):
    created_at = models.DateTimeField(default=timezone.now)
    route = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    status = models.PositiveSmallIntegerField()
    duration_ms = models.FloatField()
    query_count = models.PositiveIntegerField()
    query_ms = models.FloatField()
    request_id = models.CharField(max_length=128, blank=True, default="")
    host = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="metrics_slowreq_time")]

    def __str__(self) -> str:
        return f"{self.method} {self.route} {self.duration_ms:.0f} ms"


class SlowQuery(models.Model):
    created_at = models.DateTimeField(default=timezone.now)
    route = models.CharField(max_length=255, blank=True, default="")
    # The statement without its parameters: values never leave the database.
    sql = models.TextField()
    # The statement's shape (metrics.sqlshape), set when the row is written, and its hash: the
    # console groups slow queries by it without normalising every row on every page view.
    normalized = models.TextField(blank=True, default="")
    fingerprint = models.CharField(max_length=32, blank=True, default="")
    duration_ms = models.FloatField()
    request_id = models.CharField(max_length=128, blank=True, default="")
    host = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="metrics_slowq_time")]
        verbose_name_plural = "slow queries"

    def __str__(self) -> str:
        return f"{self.duration_ms:.0f} ms {self.sql[:60]}"


class Threshold(models.Model):
    """An alerting rule on one metric, for one host or every host ("")."""

    class Comparison(models.TextChoices):
        ABOVE = "gt", "above"
        BELOW = "lt", "below"

    metric = models.CharField(
        max_length=64,
        help_text="cpu_percent, memory_percent, swap_percent, disk_percent, load_per_core, "
        "response_time_p95_ms, error_rate_percent, ... (see README).",
    )
    host = models.CharField(
        max_length=255, blank=True, default="", help_text="Empty applies to every host."
    )
    comparison = models.CharField(max_length=2, choices=Comparison.choices, default="gt")
    warning = models.FloatField(null=True, blank=True)
    critical = models.FloatField(null=True, blank=True)
    recovery = models.FloatField(
        null=True,
        blank=True,
        help_text="Resolve only once the value is back past this level (hysteresis); "
        "empty means the lowest firing level.",
    )
    sustained_minutes = models.PositiveIntegerField(
        default=0, help_text="Fire only after the level held for this many minutes."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["metric", "host"]
        constraints = [
            models.UniqueConstraint(fields=["metric", "host"], name="metrics_threshold_unique")
        ]

    def __str__(self) -> str:
        return f"{self.metric} on {self.host or 'every host'}"

    def clean(self) -> None:
        if self.warning is None and self.critical is None:
            raise ValidationError("Set a warning level, a critical level, or both.")
        if self.warning is not None and self.critical is not None:
            inverted = (
                self.critical < self.warning
                if self.comparison == self.Comparison.ABOVE
                else self.critical > self.warning
            )
            if inverted:
                raise ValidationError({"critical": "The critical level must be past the warning."})
        first = self.firing_level_floor()
        if self.recovery is not None and first is not None:
            wrong_side = (
                self.recovery > first
                if self.comparison == self.Comparison.ABOVE
                else self.recovery < first
            )
            if wrong_side:
                raise ValidationError(
                    {"recovery": "The recovery level must not be past a firing level."}
                )

    def firing_level_floor(self) -> float | None:
        """The first level that fires (warning if set, else critical)."""
        return self.warning if self.warning is not None else self.critical


class ThresholdState(models.Model):
    """Where one threshold stands for one subject (host, plus mount for disks)."""

    class Level(models.TextChoices):
        OK = "ok", "ok"
        WARNING = "warning", "warning"
        CRITICAL = "critical", "critical"

    threshold = models.ForeignKey(Threshold, on_delete=models.CASCADE, related_name="states")
    subject = models.CharField(max_length=255, help_text="Host, or host plus mount.")
    metric = models.CharField(max_length=300, help_text="The metric name sent in signals.")
    host = models.CharField(max_length=255, blank=True, default="")
    level = models.CharField(max_length=8, choices=Level.choices, default="ok")
    since = models.DateTimeField(default=timezone.now)
    # The level the value currently points at, and since when (for "sustained for").
    pending_level = models.CharField(max_length=8, choices=Level.choices, default="ok")
    pending_since = models.DateTimeField(default=timezone.now)
    last_value = models.FloatField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["threshold", "subject"], name="metrics_state_unique")
        ]

    def __str__(self) -> str:
        return f"{self.metric}@{self.host}: {self.level}"


class Host(models.Model):
    """A machine that reports resource samples, and whether it stopped.

    The host sampler (metrics.sampler) marks it seen with every sample; the missing-host job
    marks it missing once when it has been quiet for OPS_HOST_MISSING_AFTER and clears that when
    a sample arrives again. A retired host is forgotten by deleting it here.
    """

    name = models.CharField(max_length=255, primary_key=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    missing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
