"""Configuration mistakes surface as system checks with stable ids."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from opsconsole.env import ConfigError, env_bool, env_duration, env_int, parse_duration

ROOT = Path(__file__).resolve().parent.parent


def ids(**overrides: object) -> set[str]:
    with override_settings(**overrides):
        return {m.id for m in run_checks() if m.id and m.id.startswith("ops.")}


def test_it_reports_a_missing_secret_key_in_production() -> None:
    assert "ops.E001" in ids(PRODUCTION=True, SECRET_KEY_MISSING=True)


def test_it_reports_debug_on_in_production() -> None:
    assert "ops.E002" in ids(PRODUCTION=True, DEBUG=True)


def test_it_allows_debug_in_development() -> None:
    assert "ops.E002" not in ids(PRODUCTION=False, DEBUG=True)


def test_it_reports_an_unknown_backup_storage_scheme() -> None:
    assert "ops.E003" in ids(BACKUP_STORAGE_URL="ftp://backups.example.com/x")


def test_it_reports_an_s3_url_without_a_bucket() -> None:
    assert "ops.E004" in ids(BACKUP_STORAGE_URL="s3:///prefix")


def test_it_reports_health_thresholds_in_the_wrong_order() -> None:
    assert "ops.E005" in ids(OPS_HEALTH_DISK_WARN=95.0, OPS_HEALTH_DISK_FAIL=80.0)


def test_it_warns_about_a_short_health_token() -> None:
    assert "ops.W001" in ids(OPS_HEALTH_TOKEN="short")


def test_it_warns_about_sqlite_and_the_filesystem_broker_in_production(monkeypatch: Any) -> None:
    from celery import current_app

    # The broker is the running Celery app's (a host's may use another settings namespace).
    monkeypatch.setitem(current_app.conf, "broker_url", "filesystem://")
    found = ids(
        PRODUCTION=True,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x"}},
    )
    assert {"ops.W002", "ops.W003"} <= found


def test_it_warns_about_a_redis_url_with_another_scheme() -> None:
    assert "ops.W004" in ids(REDIS_URL="http://127.0.0.1:6379")


def deploy_ids(**overrides: object) -> set[str]:
    with override_settings(**overrides):
        found = run_checks(include_deployment_checks=True)
        return {m.id for m in found if m.id and m.id.startswith("ops.")}


def test_it_warns_at_deploy_when_production_backups_are_unencrypted() -> None:
    assert "ops.W005" in deploy_ids(PRODUCTION=True, OPS_BACKUP_ENCRYPTION_KEY="")


def test_it_accepts_encrypted_production_backups_and_plain_development_ones() -> None:
    assert "ops.W005" not in deploy_ids(PRODUCTION=True, OPS_BACKUP_ENCRYPTION_KEY="k" * 40)
    assert "ops.W005" not in deploy_ids(PRODUCTION=False, OPS_BACKUP_ENCRYPTION_KEY="")


def test_a_sane_configuration_has_no_ops_problems() -> None:
    assert ids() == set()


@pytest.mark.parametrize(
    ("name", "value", "call"),
    [
        ("X_BOOL", "maybe", lambda: env_bool("X_BOOL")),
        ("X_INT", "ten", lambda: env_int("X_INT", 1)),
        ("X_INT", "-3", lambda: env_int("X_INT", 1, minimum=0)),
        ("X_DUR", "soon", lambda: env_duration("X_DUR", "1h")),
    ],
)
def test_typed_helpers_raise_on_bad_values(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, call: object
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        call()  # type: ignore[operator]


def test_durations_parse_with_units() -> None:
    assert parse_duration("26h").total_seconds() == 26 * 3600
    assert parse_duration("90").total_seconds() == 90
    assert parse_duration("2w").days == 14


def test_a_malformed_variable_stops_start_up_with_one_clear_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DEBUG="maybe", DJANGO_SETTINGS_MODULE="opsconsole.settings")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_production_settings_pass_the_deploy_checks() -> None:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="opsconsole.settings",
        OPS_ENVIRONMENT="production",
        DEBUG="0",
        SECRET_KEY="a-long-random-production-secret-key-" + "k" * 30,
        ALLOWED_HOSTS="ops.example.com",
        DATABASE_URL="postgres://ops@db.example.com/ops",
        REDIS_URL="redis://redis.example.com:6379/0",
        OPS_BACKUP_ENCRYPTION_KEY="a-long-random-backup-key-" + "b" * 30,
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
