"""Alert storms: Ops Console's fire() (dedup + grouping) vs notify-per-event, in the same run.

The peer is the plain "one notification per event" pipeline (what the seed's SendSystemAlert
job and a Laravel `Notification::send` per event do): every signal stores a row and queues one
message per channel. Both sides write to the same database and publish to the same in-memory
Celery broker, with three channels configured.

Scenarios (N signals each, three interleaved rounds, BENCH_ALERT_SIGNALS, default 1000):
  storm      N identical firing signals (one key)      -> cost per signal, messages produced
  distinct   N signals with N different keys (in one group wait)

Database: a scratch database made and dropped by bench/harness.py (PostgreSQL when
DATABASE_URL points at it, else SQLite).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import app_env, scratch_database  # noqa: E402

N = int(os.environ.get("BENCH_ALERT_SIGNALS", "1000"))
ROUNDS = 3
SUMMARY = "cpu on web-1 is 99% (critical, threshold 90%)"
Signal = Callable[[str, str], None]
CHANNELS: list[Any] = []  # the three channels, once the database has them


def notify_per_event(key: str, summary: str) -> None:
    """The peer: store the event, one notification, one queued delivery per channel."""
    from django.db import transaction
    from django.utils import timezone

    from alerts.models import Alert, Delivery, Kind, Notification, Severity
    from alerts.tasks import send_system_alert

    now = timezone.now()
    with transaction.atomic():
        alert = Alert.objects.create(
            key=key,
            kind=Kind.PERFORMANCE,
            severity=Severity.CRITICAL,
            summary=summary,
            first_fired_at=now,
            last_fired_at=now,
            state=Alert.State.RESOLVED,
        )
        group = Notification.objects.create(
            kind=Kind.PERFORMANCE,
            status=Notification.Status.SENT,
            send_at=now,
            sent_at=now,
            items=[{"key": key, "id": alert.pk}],
        )
        for channel in CHANNELS:
            delivery = Delivery.objects.create(notification=group, channel=channel)
            transaction.on_commit(lambda pk=delivery.pk: send_system_alert.delay(pk))


def ours(key: str, summary: str) -> None:
    from alerts import services
    from alerts.models import Kind, Severity

    services.fire(key, kind=Kind.PERFORMANCE, severity=Severity.CRITICAL, summary=summary)


def reset() -> None:
    from alerts.models import Alert, Delivery, Notification

    Delivery.objects.all().delete()
    Alert.objects.all().delete()
    Notification.objects.all().delete()


def run(label: str, func: Signal, keys: list[str]) -> tuple[float, int]:
    from django.utils import timezone

    from alerts import services
    from alerts.models import Delivery, Notification

    reset()
    started = time.perf_counter()
    for key in keys:
        func(key, SUMMARY)
    # Ours sends when the group wait is over: include that flush in its cost.
    if func is ours:
        Notification.objects.update(send_at=timezone.now())
        services.dispatch_due()
    elapsed = time.perf_counter() - started
    messages = Delivery.objects.count()
    print(f"  {label:<22} {N / elapsed:>9,.0f} signals/s  {messages:>6,} channel messages")
    return elapsed, messages


def scenario(name: str, keys: list[str]) -> None:
    """Warm both sides up, then interleaved rounds; print the median of each side."""
    print(f"{name}:")
    for warm in (notify_per_event, ours):  # connections, caches, code paths
        for key in keys[:100]:
            warm(key, "warm-up")
    # Interleaved rounds, median of each: a busy machine drifts between runs.
    peer_times, our_times = [], []
    for _ in range(ROUNDS):
        peer_time, peer_msgs = run("notify-per-event", notify_per_event, keys)
        our_time, our_msgs = run("ops console fire()", ours, keys)
        peer_times.append(peer_time)
        our_times.append(our_time)
    peer_median = statistics.median(peer_times)
    our_median = statistics.median(our_times)
    print(
        f"  median of {ROUNDS}: peer {N / peer_median:,.0f} signals/s, "
        f"ops console {N / our_median:,.0f} signals/s; ops console takes "
        f"{our_median / peer_median:.2f}x the peer's time and sends "
        f"{peer_msgs / max(our_msgs, 1):,.0f}x fewer messages"
    )


def setup(database_url: str, var_dir: str) -> Any:
    """Django on the scratch database, publishing to an in-memory broker; the connection."""
    os.environ.update(
        app_env(
            database_url,
            var_dir,
            DJANGO_SETTINGS_MODULE="opsconsole.settings_test",
            OPS_ENVIRONMENT="test",
            CELERY_BROKER_URL="memory://",
        )
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    return connection


def main() -> int:
    with scratch_database("alerts") as db, tempfile.TemporaryDirectory() as var_dir:
        connection = setup(db.url, var_dir)
        try:
            from alerts.models import Channel

            CHANNELS[:] = [
                Channel.objects.create(name="mail", type="email", recipients="ops@example.com"),
                Channel.objects.create(
                    name="slack", type="slack", url="https://hooks.example.com/x"
                ),
                Channel.objects.create(name="hook", type="webhook", url="https://example.com/hook"),
            ]
            print(f"alerts: {N:,} signals, 3 channels, {connection.vendor}")
            scenario("storm (one key)", ["threshold:cpu:web-1"] * N)
            scenario("distinct keys", [f"threshold:cpu:web-{i}" for i in range(N)])
        finally:
            connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
