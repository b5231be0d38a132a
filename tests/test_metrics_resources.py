"""Host resources from psutil: plausible figures and network rates from counter deltas."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import psutil
import pytest
from django.utils import timezone

from metrics.collectors import collect_resource_usage, net_rates, sample_host
from metrics.models import ResourceUsage

pytestmark = pytest.mark.django_db


def test_a_sample_of_this_host_is_plausible(settings: object) -> None:
    result = collect_resource_usage()
    row = ResourceUsage.objects.get()
    assert row.host == socket.gethostname() == result["host"]
    assert 0.0 <= row.cpu_percent <= 100.0
    assert row.cpu_count == psutil.cpu_count()
    assert row.memory_total_bytes == psutil.virtual_memory().total
    assert 0 < row.memory_used_bytes < row.memory_total_bytes
    assert 0.0 < row.memory_percent < 100.0
    assert 0.0 <= row.swap_percent <= 100.0
    root = row.disks["/"]
    assert 0 < root["used"] <= root["total"]
    assert 0.0 < root["percent"] <= 100.0
    assert row.process_count > 1
    assert row.load_1 >= 0 and row.load_5 >= 0 and row.load_15 >= 0
    # The first sample of a host has nothing to take a rate against: no figure, not zero.
    assert row.net_bytes_in_per_s is None and row.net_bytes_out_per_s is None


def _push_over_loopback(size: int) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    received = 0

    def drain() -> None:
        nonlocal received
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                received += len(chunk)

    thread = threading.Thread(target=drain)
    thread.start()
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"x" * size)
    thread.join(timeout=10)
    server.close()
    assert received == size


def test_network_rates_are_counter_deltas_over_the_time_between_two_samples() -> None:
    start = timezone.now().replace(second=0, microsecond=0)
    first = sample_host(start, None)
    _push_over_loopback(4 * 1024 * 1024)
    second = sample_host(start + timedelta(seconds=60), first)
    d_in = second.net_bytes_recv_total - first.net_bytes_recv_total
    d_out = second.net_bytes_sent_total - first.net_bytes_sent_total
    # The loopback traffic is counted in both directions on this host.
    assert d_in >= 4 * 1024 * 1024 and d_out >= 4 * 1024 * 1024
    assert second.net_bytes_in_per_s == pytest.approx(d_in / 60)
    assert second.net_bytes_out_per_s == pytest.approx(d_out / 60)


def test_a_counter_reset_or_a_stale_previous_sample_gives_no_rate() -> None:
    at = timezone.now()
    previous = ResourceUsage(
        recorded_at=at - timedelta(minutes=1), net_bytes_recv_total=5000, net_bytes_sent_total=10
    )
    assert net_rates(previous, 6200, 70, at) == (20.0, 1.0)
    assert net_rates(previous, 100, 70, at) == (None, 1.0)  # rebooted: counter went down
    previous.recorded_at = at - timedelta(hours=1)
    assert net_rates(previous, 6200, 70, at) == (None, None)


def test_two_runs_in_one_minute_keep_one_row_per_host() -> None:
    now = timezone.now().replace(second=5)
    collect_resource_usage(now=now)
    collect_resource_usage(now=now + timedelta(seconds=40))
    assert ResourceUsage.objects.count() == 1


def test_a_missing_disk_path_is_skipped_not_invented(settings: object) -> None:
    settings.OPS_METRICS_DISK_PATHS = ["/", "/no/such/mount"]  # type: ignore[attr-defined]
    row = sample_host(timezone.now(), None)
    assert set(row.disks) == {"/"}
