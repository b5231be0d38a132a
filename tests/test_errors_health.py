"""The "errors" health component warns, then fails, when undigested events wait too long."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from errors.health import ErrorDigestBacklog
from errors.models import InboxEvent
from health import registry

pytestmark = pytest.mark.django_db


def test_it_is_registered_as_a_health_component():
    component = registry.get("errors")
    assert component is not None
    assert isinstance(component.factory()[0], ErrorDigestBacklog)


def test_it_passes_with_an_empty_or_fresh_inbox(project):
    proj, _ = project
    ErrorDigestBacklog().run()
    InboxEvent.objects.create(project=proj, event_id="a" * 32, payload=b"{}")
    ErrorDigestBacklog().run()


def test_it_warns_then_fails_as_the_oldest_event_ages(project):
    proj, _ = project
    InboxEvent.objects.create(project=proj, event_id="a" * 32, payload=b"{}")
    later = timezone.now() + timedelta(minutes=6)
    with time_machine.travel(later), pytest.raises(ServiceWarning):
        ErrorDigestBacklog().run()
    much_later = timezone.now() + timedelta(minutes=31)
    with time_machine.travel(much_later), pytest.raises(ServiceUnavailable, match="worker"):
        ErrorDigestBacklog().run()
