"""Alert storms: Ops Console's fire() (dedup + grouping) vs notify-per-event, in the same run.

The peer is the plain "one notification per event" pipeline (what the seed's SendSystemAlert
job and a Laravel `Notification::send` per event do): every signal stores a row and queues one
message per channel. Both sides write to the same database and publish to the same in-memory
Celery broker, with three channels configured.

Scenarios (N signals each, three interleaved rounds, BENCH_ALERT_SIGNALS, default 1000):
  storm      N identical firing signals (one key)      -> cost per signal, messages produced
  distinct   N signals with N different keys (in one group wait)

Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/ops_alerts_bench; a
throwaway test_<name> database is created and dropped), or sqlite when set to "sqlite".
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
N = int(os.environ.get("BENCH_ALERT_SIGNALS", "1000"))
ROUNDS = 3
db_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ops_alerts_bench")
if db_url != "sqlite":
    os.environ["DATABASE_URL"] = db_url
else:
    os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ["DJANGO_SETTINGS_MODULE"] = "opsconsole.settings_test"

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from alerts import services  # noqa: E402
from alerts.models import Alert, Channel, Delivery, Kind, Notification, Severity  # noqa: E402
from alerts.tasks import send_system_alert  # noqa: E402


def notify_per_event(key: str, summary: str) -> None:
    """The peer: store the event, one notification, one queued delivery per channel."""
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
    services.fire(key, kind=Kind.PERFORMANCE, severity=Severity.CRITICAL, summary=summary)


def reset() -> None:
    Delivery.objects.all().delete()
    Alert.objects.all().delete()
    Notification.objects.all().delete()


def run(label: str, func: Any, keys: list[str]) -> tuple[float, int]:
    reset()
    started = time.perf_counter()
    for key in keys:
        func(key, "cpu on web-1 is 99% (critical, threshold 90%)")
    # Ours sends when the group wait is over: include that flush in its cost.
    if func is ours:
        Notification.objects.update(send_at=timezone.now())
        services.dispatch_due()
    elapsed = time.perf_counter() - started
    messages = Delivery.objects.count()
    print(f"  {label:<22} {N / elapsed:>9,.0f} signals/s  {messages:>6,} channel messages")
    return elapsed, messages


def main() -> int:
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        global CHANNELS
        CHANNELS = [
            Channel.objects.create(name="mail", type="email", recipients="ops@example.com"),
            Channel.objects.create(name="slack", type="slack", url="https://hooks.example.com/x"),
            Channel.objects.create(name="hook", type="webhook", url="https://example.com/hook"),
        ]
        vendor = connection.vendor
        print(f"alerts: {N:,} signals, 3 channels, {vendor}")
        for scenario, keys in (
            ("storm (one key)", ["threshold:cpu:web-1"] * N),
            ("distinct keys", [f"threshold:cpu:web-{i}" for i in range(N)]),
        ):
            print(f"{scenario}:")
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
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


CHANNELS: list[Channel] = []

if __name__ == "__main__":
    sys.exit(main())
