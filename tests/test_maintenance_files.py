"""Temp file cleanup and our own log file: rotation, compression, the configured count."""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from maintenance import steps
from opsconsole.logs import JsonFormatter, OpsFileHandler, rotate_log_file
from tests.conftest import ROOT, subprocess_env


def age(path: Path, seconds: float) -> None:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp), follow_symlinks=False)


# --- temp files ------------------------------------------------------------------------------
def test_it_deletes_temp_files_older_than_a_day_and_keeps_newer_ones(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "nested").mkdir(parents=True)
    b.mkdir()
    old = [a / "old.tmp", a / "nested" / "old.part", b / "old"]
    new = [a / "new.tmp", b / "new"]
    for path in old + new:
        path.write_bytes(b"x" * 100)
    for path in old:
        age(path, 2 * 86400)
    age(a / "nested", 2 * 86400)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    age(outside, 5 * 86400)
    (a / "link").symlink_to(outside)
    age(a / "link", 5 * 86400)
    with override_settings(OPS_TEMP_DIRS=[str(a), str(b), str(tmp_path / "missing")]):
        counts = steps.clean_temp_files(timezone.now())
    assert counts["files_deleted"] == 4  # three old files and the old symlink
    assert counts["bytes_freed"] >= 300
    assert counts["missing_dirs"] == [str(tmp_path / "missing")]
    assert all(not p.exists() for p in old)
    assert all(p.exists() for p in new)
    assert outside.read_text() == "keep"  # a link's target is never followed
    assert a.exists() and b.exists()


def test_the_age_limit_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "hour-old"
    path.write_text("x")
    age(path, 3600)
    with override_settings(OPS_TEMP_DIRS=[str(tmp_path)], OPS_TEMP_MAX_AGE=timedelta(minutes=30)):
        assert steps.clean_temp_files(timezone.now())["files_deleted"] == 1


# --- log rotation ------------------------------------------------------------------------------
def test_rotation_keeps_the_configured_number_of_files(tmp_path: Path) -> None:
    log = tmp_path / "ops.log"
    for day in range(6):
        log.write_text(f"day {day}\n")
        assert rotate_log_file(log, keep=3) is True
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["ops.log.1.gz", "ops.log.2.gz", "ops.log.3.gz"]
    assert gzip.decompress((tmp_path / "ops.log.1.gz").read_bytes()) == b"day 5\n"
    assert gzip.decompress((tmp_path / "ops.log.3.gz").read_bytes()) == b"day 3\n"


def test_lowering_the_count_drops_the_extra_files(tmp_path: Path) -> None:
    log = tmp_path / "ops.log"
    for day in range(5):
        log.write_text(f"day {day}\n")
        rotate_log_file(log, keep=5)
    log.write_text("today\n")
    rotate_log_file(log, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ops.log.1.gz", "ops.log.2.gz"]


def test_an_empty_or_missing_log_is_not_rotated(tmp_path: Path) -> None:
    log = tmp_path / "ops.log"
    assert rotate_log_file(log, keep=3) is False
    log.touch()
    assert rotate_log_file(log, keep=3) is False
    assert list(tmp_path.iterdir()) == [log]


def test_the_handler_keeps_writing_after_the_job_rotated_its_file(tmp_path: Path) -> None:
    log = tmp_path / "ops.log"
    handler = OpsFileHandler(str(log), backupCount=3)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.maintenance.rotation")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("before")
        with override_settings(OPS_LOG_FILE=str(log), OPS_LOG_BACKUPS=3):
            assert steps.rotate_logs(timezone.now()) == {"rotated": 1, "kept": 3}
        logger.warning("after")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert json.loads(log.read_text())["message"] == "after"
    rotated = gzip.decompress((tmp_path / "ops.log.1.gz").read_bytes()).decode()
    assert json.loads(rotated)["message"] == "before"


def test_the_handler_rotates_by_size_into_gzip_files(tmp_path: Path) -> None:
    log = tmp_path / "ops.log"
    handler = OpsFileHandler(str(log), maxBytes=200, backupCount=2)
    record = logging.makeLogRecord({"msg": "x" * 150, "levelname": "INFO"})
    try:
        for _ in range(6):
            handler.emit(record)
    finally:
        handler.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ops.log", "ops.log.1.gz", "ops.log.2.gz"]


def test_rotate_step_is_skipped_without_a_log_file() -> None:
    with override_settings(OPS_LOG_FILE=""), pytest.raises(steps.StepSkipped, match="OPS_LOG_FILE"):
        steps.rotate_logs(timezone.now())


def test_ops_log_file_adds_a_json_file_handler_to_logging(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "ops.log"
    code = (
        "import django, logging; django.setup();"
        "logging.getLogger('opsconsole.test').warning('to the file', extra={'job': 'x'})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=subprocess_env(OPS_LOG_FILE=str(log), OPS_LOG_BACKUPS="4"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    line = json.loads(log.read_text().splitlines()[-1])
    assert line["message"] == "to the file" and line["job"] == "x"
    assert line["request_id"] == "-"


def test_a_bad_log_setting_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=subprocess_env(OPS_LOG_FILE=str(tmp_path / "x.log"), OPS_LOG_BACKUPS="zero"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "OPS_LOG_BACKUPS='zero' is not a whole number" in result.stderr
