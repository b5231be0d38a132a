"""Every host is watched: each host's processes sample it (one sampler per host), and a host
that stops reporting is marked missing and alerted once, not silently dropped. Real processes on
two simulated hosts: tests/test_many_hosts.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from alerts.models import Alert
from health.checks import Disk, Memory
from metrics import hosts
from metrics.models import Host
from metrics.sampler import HostSampler


def test_a_quiet_host_is_marked_missing_and_alerted_once(db: Any) -> None:
    start = timezone.now()
    hosts.mark_seen("web-1", start)
    hosts.mark_seen("web-2", start + timedelta(minutes=3))
    with override_settings(OPS_HOST_MISSING_AFTER=120):
        later = start + timedelta(minutes=4)
        assert hosts.find_missing(later) == ["web-1"]
        assert hosts.find_missing(later + timedelta(minutes=1)) == []  # once, not every minute
    assert Host.objects.get(name="web-1").missing_since == later
    alert = Alert.objects.get(key="host:web-1:missing")
    assert alert.state == "firing" and "web-1 stopped reporting" in alert.summary
    assert not Alert.objects.filter(key="host:web-2:missing").exists()


def test_a_missing_host_that_reports_again_resolves_its_alert(db: Any) -> None:
    start = timezone.now() - timedelta(minutes=10)
    hosts.mark_seen("db-1", start)
    hosts.find_missing()
    hosts.mark_seen("db-1")
    assert Host.objects.get(name="db-1").missing_since is None
    assert Alert.objects.get(key="host:db-1:missing").resolved_at is not None


def test_forgetting_a_retired_host_removes_it_and_its_alert(db: Any) -> None:
    hosts.mark_seen("old-1", timezone.now() - timedelta(hours=1))
    hosts.find_missing()
    hosts.forget("old-1")
    assert not Host.objects.filter(name="old-1").exists()
    assert Alert.objects.get(key="host:old-1:missing").resolved_at is not None


def test_only_one_sampler_per_host_holds_the_lock_and_another_takes_over(db: Any) -> None:
    first, second = HostSampler(60), HostSampler(60)
    try:
        assert first.holds_lock()
        assert not second.holds_lock()
        assert first.lock_file is not None
        first.lock_file.close()  # the holder's process ended: the kernel drops its lock
        first.lock_file = None
        assert second.holds_lock()
    finally:
        for sampler in (first, second):
            if sampler.lock_file is not None:
                sampler.lock_file.close()


def test_disk_and_memory_checks_name_the_host_they_describe(db: Any) -> None:
    with override_settings(OPS_HOST_NAME="db-7", OPS_HEALTH_DISK_WARN=0.0):
        disk, memory = Disk(), Memory(warn_percent=0.0)
        for check in (disk, memory):
            with pytest.raises(Exception, match="on db-7"):
                check.run()
            assert {"measurement": "host", "observedValue": "db-7", "observedUnit": ""} in (
                check.observations
            )
