"""Pieces every app's ModelAdmins share."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class SuperuserOnlyFieldsMixin:
    """Fields only a superuser may set: others see them read-only and cannot post them.

    For switches that lift a safety guard for the whole installation, such as letting
    outbound HTTP reach private addresses (the cloud metadata service, the database).
    """

    superuser_only_fields: tuple[str, ...] = ()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if not request.user.is_superuser:
            fields += [f for f in self.superuser_only_fields if f not in fields]
        return fields
