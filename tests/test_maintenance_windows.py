"""Maintenance windows: each starts and ends once, under frozen time, with one signal each."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client

from maintenance import state
from maintenance.models import MaintenanceWindow
from maintenance.services import bring_down, check_windows
from maintenance.signals import maintenance_window_ended, maintenance_window_started
from maintenance.tasks import check_maintenance_windows
from opsconsole.models import SystemLog

START = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


@pytest.fixture
def received() -> Iterator[dict[str, list[dict[str, Any]]]]:
    seen: dict[str, list[dict[str, Any]]] = {"started": [], "ended": []}

    def on_started(sender: Any, **kwargs: Any) -> None:
        seen["started"].append(kwargs)

    def on_ended(sender: Any, **kwargs: Any) -> None:
        seen["ended"].append(kwargs)

    maintenance_window_started.connect(on_started, dispatch_uid="test-window-started")
    maintenance_window_ended.connect(on_ended, dispatch_uid="test-window-ended")
    yield seen
    maintenance_window_started.disconnect(dispatch_uid="test-window-started")
    maintenance_window_ended.disconnect(dispatch_uid="test-window-ended")


def make_window(**overrides: Any) -> MaintenanceWindow:
    values: dict[str, Any] = {
        "starts_at": START,
        "ends_at": END,
        "message": "database upgrade",
        "enable_maintenance_mode": True,
        "silence_keys": ["health:*"],
    }
    values.update(overrides)
    return MaintenanceWindow.objects.create(**values)


@pytest.mark.django_db
def test_a_window_starts_and_ends_once_each_and_sends_each_signal_once(received) -> None:
    window = make_window()
    with time_machine.travel(START - timedelta(minutes=1), tick=False) as traveller:
        assert check_windows() == {"started": [], "ended": []}
        traveller.move_to(START + timedelta(seconds=30))
        assert check_windows() == {"started": [window.pk], "ended": []}
        assert state.current(fresh=True).is_down
        traveller.shift(timedelta(minutes=1))
        assert check_windows() == {"started": [], "ended": []}
        traveller.move_to(END + timedelta(seconds=5))
        assert check_windows() == {"started": [], "ended": [window.pk]}
        traveller.shift(timedelta(minutes=1))
        assert check_windows() == {"started": [], "ended": []}
    assert received["started"] == [
        {
            "signal": maintenance_window_started,
            "window_id": window.pk,
            "message": "database upgrade",
            "silence_keys": ["health:*"],
            "ends_at": END,
        }
    ]
    assert received["ended"] == [{"signal": maintenance_window_ended, "window_id": window.pk}]
    assert not state.current(fresh=True).is_down
    window.refresh_from_db()
    assert window.started_notified_at == START + timedelta(seconds=30)
    assert window.ended_notified_at == END + timedelta(seconds=5)
    actions = list(SystemLog.objects.order_by("id").values_list("action", flat=True))
    assert actions == [
        "maintenance.down",
        "maintenance.window_started",
        "maintenance.up",
        "maintenance.window_ended",
    ]


@pytest.mark.django_db
def test_a_window_turns_the_site_down_and_up_again(client: Client) -> None:
    make_window(message="back at 03:00")
    with time_machine.travel(START + timedelta(minutes=1), tick=False) as traveller:
        check_windows()
        response = client.get("/nothing-here")
        assert response.status_code == 503
        assert "back at 03:00" in response.content.decode()
        assert int(response["Retry-After"]) == 3540  # until the window ends
        traveller.move_to(END)
        check_windows()
        state.invalidate()
        assert client.get("/nothing-here").status_code == 404


@pytest.mark.django_db
def test_a_window_without_maintenance_mode_only_announces_itself(received) -> None:
    make_window(enable_maintenance_mode=False)
    with time_machine.travel(START, tick=False):
        check_windows()
    assert len(received["started"]) == 1
    assert not state.current(fresh=True).is_down


@pytest.mark.django_db
def test_the_end_of_a_window_leaves_a_manual_down_alone() -> None:
    make_window(enable_maintenance_mode=False)
    with time_machine.travel(START, tick=False) as traveller:
        check_windows()
        bring_down(message="manual", actor="cli:ops")
        traveller.move_to(END)
        check_windows()
    assert state.current(fresh=True).is_down


@pytest.mark.django_db
def test_a_window_missed_entirely_still_sends_both_signals_once(received) -> None:
    make_window()
    with time_machine.travel(END + timedelta(hours=2), tick=False):
        check_windows()
        check_windows()
    assert len(received["started"]) == 1
    assert len(received["ended"]) == 1
    # It does not flip the site down for a window that is already over.
    assert not SystemLog.objects.filter(action="maintenance.down").exists()


@pytest.mark.django_db
def test_a_failing_receiver_does_not_stop_the_others(received) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    maintenance_window_started.connect(broken, dispatch_uid="test-broken")
    try:
        make_window(enable_maintenance_mode=False)
        with time_machine.travel(START, tick=False):
            check_windows()
    finally:
        maintenance_window_started.disconnect(dispatch_uid="test-broken")
    assert len(received["started"]) == 1


@pytest.mark.django_db
def test_the_beat_task_checks_windows() -> None:
    window = make_window(enable_maintenance_mode=False)
    with time_machine.travel(START, tick=False):
        assert check_maintenance_windows.apply().get() == {"started": [window.pk], "ended": []}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_checking_at_once_send_each_signal_once(received) -> None:
    windows = [make_window(enable_maintenance_mode=False) for _ in range(5)]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            check_windows(now=START + timedelta(seconds=1))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(k["window_id"] for k in received["started"]) == sorted(w.pk for w in windows)


# --- the admin ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_windows_are_managed_in_the_admin(client: Client, admin) -> None:
    client.force_login(admin)
    response = client.post(
        "/admin/maintenance/maintenancewindow/add/",
        {
            "starts_at_0": "2026-03-01",
            "starts_at_1": "02:00:00",
            "ends_at_0": "2026-03-01",
            "ends_at_1": "03:00:00",
            "message": "upgrade",
            "enable_maintenance_mode": "on",
            "silence_keys": '["health:*"]',
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    window = MaintenanceWindow.objects.get()
    assert window.created_by == "alice" and window.silence_keys == ["health:*"]
    assert SystemLog.objects.filter(action="admin.add", actor=admin).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ends", "keys", "error"),
    [
        ("01:00:00", "[]", "must end after it starts"),
        ("03:00:00", '"health:*"', "JSON list of alert key patterns"),
        ("03:00:00", "[1, 2]", "JSON list of alert key patterns"),
    ],
)
def test_the_admin_refuses_a_bad_window(client: Client, admin, ends, keys, error) -> None:
    client.force_login(admin)
    response = client.post(
        "/admin/maintenance/maintenancewindow/add/",
        {
            "starts_at_0": "2026-03-01",
            "starts_at_1": "02:00:00",
            "ends_at_0": "2026-03-01",
            "ends_at_1": ends,
            "message": "upgrade",
            "silence_keys": keys,
        },
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


@pytest.mark.django_db
def test_an_active_window_silences_matching_alert_keys() -> None:
    from maintenance.services import silencing_window

    window = make_window(silence_keys=["health:*", "threshold:cpu:*"])
    during = START + timedelta(minutes=5)
    assert silencing_window("health:database", during) == window
    assert silencing_window("threshold:cpu:web1", during) == window
    assert silencing_window("backup:failed", during) is None
    assert silencing_window("health:database", END + timedelta(seconds=1)) is None
    assert silencing_window("health:database", START - timedelta(seconds=1)) is None


def _window_form(**overrides: str) -> dict[str, str]:
    data = {
        "starts_at_0": "2026-03-01",
        "starts_at_1": "02:00:00",
        "ends_at_0": "2026-03-01",
        "ends_at_1": "03:00:00",
        "message": "upgrade",
        "silence_keys": '["health:*"]',
    }
    data.update(overrides)
    return data


@pytest.fixture
def window_planner(db: Any) -> Any:
    """Staff who may manage windows but not take the site down."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("dave", "dave@example.com", "dave-password", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="maintenance",
            codename__in=["view_maintenancewindow", "add_maintenancewindow"],
        )
    )
    return user


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"enable_maintenance_mode": "on"}, "may plan a window that does"),
        ({"silence_keys": '["*"]'}, "silences every alert"),
        ({"silence_keys": '["health:*", "**"]'}, "silences every alert"),
    ],
)
def test_a_window_with_site_wide_effects_needs_the_permission_to_take_the_site_down(
    client: Client, window_planner: Any, overrides: dict[str, str], field_error: str
) -> None:
    client.force_login(window_planner)
    url = "/admin/maintenance/maintenancewindow/add/"
    response = client.post(url, _window_form(**overrides))
    assert response.status_code == 200
    assert field_error in response.content.decode()
    assert not MaintenanceWindow.objects.exists()
    # A window that names the alerts it silences is theirs to plan.
    assert client.post(url, _window_form()).status_code == 302
    assert MaintenanceWindow.objects.get().silence_keys == ["health:*"]


@pytest.mark.django_db
def test_whoever_may_take_the_site_down_may_plan_a_window_that_silences_everything(
    client: Client, window_planner: Any
) -> None:
    from django.contrib.auth.models import Permission

    window_planner.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="maintenance", codename="change_maintenancestate"
        )
    )
    client.force_login(window_planner)
    response = client.post(
        "/admin/maintenance/maintenancewindow/add/",
        _window_form(enable_maintenance_mode="on", silence_keys='["*"]'),
    )
    assert response.status_code == 302
    assert MaintenanceWindow.objects.get().enable_maintenance_mode
