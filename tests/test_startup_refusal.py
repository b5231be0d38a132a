"""A production process without SECRET_KEY refuses to start: gunicorn, the worker and beat.

`manage.py check` already says so (ops.E001); these are the processes nobody runs `check`
before. Each must exit non-zero with one line saying what to do, and never serve.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from opsconsole.startup import unsafe_start_reason
from tests.conftest import ROOT, free_port, subprocess_env

BIN = Path(sys.executable).parent


def production_env_without_key(tmp_path: Path) -> dict[str, str]:
    env = subprocess_env(
        DJANGO_SETTINGS_MODULE="opsconsole.settings",
        OPS_ENVIRONMENT="production",
        DEBUG="0",
        ALLOWED_HOSTS="ops.example.com",
        OPS_VAR_DIR=str(tmp_path / "var"),
    )
    env.pop("SECRET_KEY", None)
    return env


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def assert_refused(result: subprocess.CompletedProcess[str], process: str) -> None:
    assert result.returncode != 0
    lines = [
        line
        for line in result.stderr.splitlines()
        if f"Ops Console {process} refuses to start in production" in line
    ]
    assert len(lines) == 1, result.stderr[-2000:]
    assert "SECRET_KEY is not set" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.django_db
def test_gunicorn_refuses_to_start_in_production_without_a_secret_key(tmp_path: Path) -> None:
    port = free_port()
    result = run(
        [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "opsconsole.wsgi"],
        production_env_without_key(tmp_path),
    )
    assert_refused(result, "web server")
    assert "Worker failed to boot" in result.stderr  # the master stopped, it did not respawn


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("command", "process"),
    [(["worker", "--pool", "solo"], "worker"), (["beat"], "beat")],
)
def test_celery_refuses_to_start_in_production_without_a_secret_key(
    tmp_path: Path, command: list[str], process: str
) -> None:
    argv = [str(BIN / "celery"), "-A", "opsconsole", *command]
    if process == "beat":
        argv += ["--schedule", str(tmp_path / "beat-schedule")]
    result = run(argv, production_env_without_key(tmp_path))
    assert_refused(result, process)


def test_it_starts_with_a_key_or_outside_production() -> None:
    with override_settings(PRODUCTION=True, SECRET_KEY_MISSING=True):
        assert unsafe_start_reason() is not None
    with override_settings(PRODUCTION=True, SECRET_KEY_MISSING=False):
        assert unsafe_start_reason() is None
    with override_settings(PRODUCTION=False, SECRET_KEY_MISSING=True):
        assert unsafe_start_reason() is None
