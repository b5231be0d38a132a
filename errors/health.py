"""The `errors` health component: is the digest keeping up with ingest?"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from django.conf import settings
from django.db.models import Min
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from errors.models import InboxEvent


@dataclasses.dataclass
class ErrorDigestBacklog(HealthCheck):
    """Warn when accepted events wait too long to be grouped (no worker, or too slow)."""

    def run(self) -> None:
        # Quarantined events wait for an operator, not for a worker (admin: Inbox events).
        waiting_rows = InboxEvent.objects.filter(quarantined_at__isnull=True)
        oldest = waiting_rows.aggregate(oldest=Min("received_at"))["oldest"]
        if oldest is None:
            return
        waiting = timezone.now() - oldest
        if waiting > timedelta(seconds=settings.OPS_ERRORS_BACKLOG_FAIL):
            raise ServiceUnavailable(
                f"oldest undigested error event waits {waiting}: is a worker running?"
            )
        if waiting > timedelta(seconds=settings.OPS_ERRORS_BACKLOG_WARN):
            raise ServiceWarning(f"oldest undigested error event waits {waiting}")
