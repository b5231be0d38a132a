"""Malformed maintenance settings stop start-up naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, subprocess_env


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OPS_RETENTION_BATCH_SIZE", "20000", "OPS_RETENTION_BATCH_SIZE must be at most 10000"),
        ("OPS_RETENTION_BATCH_SIZE", "0", "OPS_RETENTION_BATCH_SIZE=0 is below the minimum"),
        ("OPS_AUDIT_RETENTION_DAYS", "ninety", "OPS_AUDIT_RETENTION_DAYS='ninety' is not a whole"),
        ("OPS_TEMP_MAX_AGE", "soon", "OPS_TEMP_MAX_AGE: 'soon' is not a duration"),
        ("OPS_LOG_BACKUPS", "0", "OPS_LOG_BACKUPS=0 is below the minimum of 1"),
    ],
)
def test_a_bad_value_stops_start_up_naming_it(name: str, value: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=subprocess_env(**{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr
