from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from metrics.hosts import forget
from metrics.models import (
    Host,
    PerformanceMetric,
    ResourceUsage,
    SlowQuery,
    SlowRequest,
    Threshold,
    ThresholdState,
)
from opsconsole.admintools import ReadOnlyAdmin


@admin.register(Threshold)
class ThresholdAdmin(admin.ModelAdmin):
    """Changes here are audited: admin LogEntry rows are mirrored into the SystemLog."""

    list_display = (
        "metric",
        "host",
        "comparison",
        "warning",
        "critical",
        "recovery",
        "sustained_minutes",
        "enabled",
    )
    list_filter = ("enabled", "metric")
    list_editable = ("enabled",)
    search_fields = ("metric", "host")


@admin.register(ThresholdState)
class ThresholdStateAdmin(ReadOnlyAdmin):
    list_display = ("metric", "host", "level", "since", "last_value", "evaluated_at")
    list_filter = ("level",)


@admin.register(PerformanceMetric)
class PerformanceMetricAdmin(ReadOnlyAdmin):
    list_display = ("recorded_at", "metric", "key", "value", "samples")
    list_filter = ("metric",)
    search_fields = ("key",)
    date_hierarchy = "recorded_at"


@admin.register(ResourceUsage)
class ResourceUsageAdmin(ReadOnlyAdmin):
    list_display = (
        "recorded_at",
        "host",
        "cpu_percent",
        "memory_percent",
        "load_1",
        "net_bytes_in_per_s",
        "net_bytes_out_per_s",
    )
    list_filter = ("host",)
    date_hierarchy = "recorded_at"


@admin.register(SlowRequest)
class SlowRequestAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "method", "route", "status", "duration_ms", "query_count")
    search_fields = ("route", "request_id")
    date_hierarchy = "created_at"


@admin.register(SlowQuery)
class SlowQueryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "duration_ms", "route", "sql")
    search_fields = ("sql", "route", "request_id")
    date_hierarchy = "created_at"


@admin.register(Host)
class HostAdmin(ReadOnlyAdmin):
    """Hosts that report samples; deleting one forgets a retired host (and resolves its
    missing-host alert). Needs the delete permission (administrators)."""

    list_display = ("name", "state", "last_seen", "missing_since", "first_seen")
    list_filter = ("missing_since",)
    search_fields = ("name",)

    @admin.display(description="state")
    def state(self, obj: Host) -> str:
        return "missing" if obj.missing_since else "reporting"

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        forget(obj.name)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for name in queryset.values_list("name", flat=True):
            forget(name)
