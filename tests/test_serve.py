"""`make run` (manage.py serve) on the embedded default: set up, serve, stop cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, free_port


@pytest.mark.slow
def test_serve_sets_up_runs_web_worker_beat_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        OPS_VAR_DIR=str(tmp_path / "var"),
        OPS_ADMIN_PASSWORD="chosen-password-42",
        DJANGO_SETTINGS_MODULE="opsconsole.settings",
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port), "--web-workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while b"is running at" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        children = psutil.Process(proc.pid).children()
        assert len(children) == 4  # web, the default worker, the ingest worker, beat
        queues = sorted(a for c in children for a in c.cmdline() if a.startswith("--queues="))
        assert queues == ["--queues=celery", "--queues=ingest"]
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2) as r:  # noqa: S310
                    assert r.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=5) as r:  # noqa: S310
            assert b"Ops Console" in r.read()
        text = log.read_text()
        assert "Created the admin account 'admin' with OPS_ADMIN_PASSWORD." in text
        assert "chosen-password-42" not in text
        assert (tmp_path / "var" / "db.sqlite3").exists()
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        code = proc.wait(timeout=40)
    assert code == 0, log.read_text()[-3000:]
    assert "Stopped cleanly." in log.read_text()
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
