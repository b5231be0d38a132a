"""The Celery app. Workers and beat both start from here: `celery -A opsconsole worker|beat`."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")

app = Celery("opsconsole")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A Redis restart must not end the worker (see opsconsole.brokerfix).
from opsconsole import brokerfix  # noqa: E402

brokerfix.install()

# Each worker records its own heartbeat (health.worker); the queue health check reads its age.
from health.worker import HeartbeatStep  # noqa: E402
from opsconsole.startup import refuse_unsafe_start  # noqa: E402

app.steps["consumer"].add(HeartbeatStep)


@signals.worker_init.connect
def _refuse_unsafe_worker(**kwargs: object) -> None:
    refuse_unsafe_start("worker")


@signals.beat_init.connect
def _refuse_unsafe_beat(**kwargs: object) -> None:
    refuse_unsafe_start("beat")
