"""The metrics app's system checks."""

from __future__ import annotations

from typing import Any

from metrics.checks import check_metrics_settings


def ids(**overrides: Any) -> set[str]:
    from django.test import override_settings

    with override_settings(**overrides):
        return {p.id for p in check_metrics_settings()}


def test_a_short_metrics_token_is_reported() -> None:
    assert "metrics.W001" in ids(OPS_METRICS_TOKEN="short")
    assert "metrics.W001" not in ids(OPS_METRICS_TOKEN="x" * 32)
    assert "metrics.W001" not in ids(OPS_METRICS_TOKEN="")


def test_a_disk_path_that_does_not_exist_is_reported() -> None:
    assert "metrics.W002" in ids(OPS_METRICS_DISK_PATHS=["/", "/no/such/mount"])
    assert "metrics.W002" not in ids(OPS_METRICS_DISK_PATHS=["/"])
