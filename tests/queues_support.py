"""A task for the queue page's live-worker test: it fails until its marker file exists.

Imported only by the worker the test starts (OPS_TEST_CELERY_IMPORTS, opsconsole/settings_test).
On success it writes `<marker>.done` holding the token it was given, so the test can tell that
a retry ran with the original arguments and not with their scrubbed copy.
"""

from __future__ import annotations

from pathlib import Path

from celery import shared_task

TASK_NAME = "tests.queues_support.fails_until_marker"


@shared_task(name=TASK_NAME, ignore_result=True)
def fails_until_marker(marker: str, api_token: str = "") -> None:
    if not Path(marker).exists():
        raise RuntimeError(f"marker {Path(marker).name} is missing")
    Path(marker + ".done").write_text(api_token)
