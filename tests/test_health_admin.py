"""External services in the console: who may lift the private-address guard."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from health.models import ExternalService

pytestmark = pytest.mark.django_db

ADD = "/admin/health/externalservice/add/"


def service_form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "billing",
        "url": "https://billing.example.com/health",
        "method": "GET",
        "expected_status": "200",
        "timeout_seconds": "2",
        "tls_warn_days": "14",
        "critical": "on",
        "verify_tls": "on",
        "allow_private_network": "on",
        "enabled": "on",
    }
    data.update(overrides)
    return data


@pytest.fixture
def service_editor() -> User:
    user = User.objects.create_user("frank", "frank@example.com", "frank-pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="health",
            codename__in=["view_externalservice", "add_externalservice", "change_externalservice"],
        )
    )
    return user


def test_only_a_superuser_may_let_an_external_check_reach_private_addresses(
    client: Client, admin: Any, service_editor: User
) -> None:
    client.force_login(service_editor)
    response = client.post(ADD, service_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ExternalService.objects.get(name="billing").allow_private_network is False

    client.force_login(admin)
    response = client.post(ADD, service_form(name="internal"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ExternalService.objects.get(name="internal").allow_private_network is True
