"""The console's status-at-a-glance panel on the admin index."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template
from django.conf import settings
from django.utils import timezone

register = template.Library()


@register.inclusion_tag("admin/ops_status.html", takes_context=True)
def ops_status(context: dict[str, Any]) -> dict[str, Any]:
    from health.models import ComponentState, HealthCheck, WorkerHeartbeat
    from health.runner import worst

    states = list(ComponentState.objects.order_by("component"))
    last_run = HealthCheck.objects.only("created_at", "status").first()
    cutoff = timezone.now() - timedelta(seconds=settings.OPS_HEALTH_WORKER_MAX_AGE)
    workers = list(WorkerHeartbeat.objects.filter(last_seen__gte=cutoff))
    return {
        "states": states,
        "overall": worst([s.status for s in states]) if states else None,
        "last_run": last_run,
        "workers": workers,
        "request": context.get("request"),
    }
