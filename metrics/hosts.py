"""Which hosts report, and which stopped: marked seen by each sample, missing by a beat job.

Both transitions are conditional UPDATEs, so with several workers and beats each one sends its
signal once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from metrics.models import Host
from metrics.signals import host_missing, host_recovered


def mark_seen(name: str, at: datetime | None = None) -> None:
    """Records a sample from host `name`; a host that was missing is back (signal once)."""
    at = at or timezone.now()
    came_back = Host.objects.filter(name=name, missing_since__isnull=False).update(
        last_seen=at, missing_since=None
    )
    if came_back:
        host_recovered.send(sender=Host, host=name, forgotten=False)
        return
    if not Host.objects.filter(name=name).update(last_seen=at):
        Host.objects.get_or_create(name=name, defaults={"first_seen": at, "last_seen": at})


def find_missing(now: datetime | None = None) -> list[str]:
    """Marks hosts quiet for OPS_HOST_MISSING_AFTER as missing; returns the newly missing."""
    now = now or timezone.now()
    after = settings.OPS_HOST_MISSING_AFTER
    cutoff = now - timedelta(seconds=after)
    newly = []
    for host in Host.objects.filter(missing_since__isnull=True, last_seen__lt=cutoff):
        # Conditional: another beat job or a late sample may have changed the row meanwhile.
        if Host.objects.filter(pk=host.pk, missing_since__isnull=True, last_seen__lt=cutoff).update(
            missing_since=now
        ):
            newly.append(host.name)
            host_missing.send(
                sender=Host, host=host.name, last_seen=host.last_seen, missing_after=after
            )
    return newly


def forget(name: str) -> None:
    """An operator retired host `name`: its row goes, and so does its missing alert."""
    deleted, _ = Host.objects.filter(name=name).delete()
    if deleted:
        host_recovered.send(sender=Host, host=name, forgotten=True)
