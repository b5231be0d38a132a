"""The scheduler's parts: a due run's claim is won once until it lapses, and with no beat the
`scheduler` component says how to start one. Real beats on two hosts: tests/test_many_hosts.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from health.checks import Scheduler
from opsconsole.models import ScheduleClaim
from opsconsole.scheduler import claim


def test_a_claim_is_won_once_until_it_lapses(db: Any) -> None:
    now = timezone.now()
    assert claim("entry", 10, "beat-a", now)
    assert not claim("entry", 10, "beat-b", now + timedelta(seconds=5))
    assert claim("entry", 10, "beat-b", now + timedelta(seconds=10))
    assert ScheduleClaim.objects.get(name="entry").holder == "beat-b"


def test_without_any_beat_the_scheduler_component_says_how_to_start_one(db: Any) -> None:
    from health_check.exceptions import ServiceUnavailable

    with pytest.raises(ServiceUnavailable, match="start Celery beat"):
        Scheduler().run()
