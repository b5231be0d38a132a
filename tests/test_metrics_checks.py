"""The metrics app's system checks."""

from __future__ import annotations

from typing import Any

from metrics.system_checks import check_metrics_settings


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


def deploy_ids(**overrides: Any) -> set[str]:
    from django.test import override_settings

    from metrics.system_checks import check_metrics_exposure

    with override_settings(**overrides):
        return {p.id for p in check_metrics_exposure()}


def test_deploy_check_warns_when_production_metrics_are_open_without_a_token() -> None:
    assert "metrics.W003" in deploy_ids(
        PRODUCTION=True, OPS_METRICS_TOKEN="", OPS_METRICS_PUBLIC=True
    )
    assert not deploy_ids(PRODUCTION=True, OPS_METRICS_TOKEN="x" * 32, OPS_METRICS_PUBLIC=True)
    assert not deploy_ids(PRODUCTION=True, OPS_METRICS_TOKEN="", OPS_METRICS_PUBLIC=False)
    assert not deploy_ids(PRODUCTION=False, OPS_METRICS_TOKEN="", OPS_METRICS_PUBLIC=True)
