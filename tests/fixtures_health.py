"""Helpers for the health tests: components the test controls, and a socket that never answers
(tests.servers.SilentServer, shared with the benchmarks)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from health import registry
from health.checks import OpsCheck
from health.runner import _inflight, report_cache
from tests.servers import SilentServer


@dataclasses.dataclass
class Switch(OpsCheck):
    """A check whose outcome the test sets: state["status"] in pass/warn/fail; counts runs."""

    state: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def run(self) -> None:
        self.state["runs"] = self.state.get("runs", 0) + 1
        status = self.state.get("status", "pass")
        if status == "fail":
            raise ServiceUnavailable(self.state.get("output", "switched off"))
        if status == "warn":
            raise ServiceWarning(self.state.get("output", "degraded"))
        self.observe("responseTime", 1.0, "ms")


@pytest.fixture(autouse=True)
def fresh_health_state() -> Iterator[None]:
    report_cache.clear()
    _inflight.clear()
    saved = dict(registry._components)
    yield
    registry._components.clear()
    registry._components.update(saved)
    report_cache.clear()
    _inflight.clear()


@pytest.fixture
def switch() -> dict[str, Any]:
    """Adds a `switch` component (ready and full) whose status the test controls."""
    state: dict[str, Any] = {"status": "pass", "runs": 0}
    registry.register("switch", lambda: [Switch(state=state)], ready=True)
    return state


@pytest.fixture
def only_switch(switch: dict[str, Any]) -> dict[str, Any]:
    """Leave only the `switch` component registered."""
    for name in list(registry._components):
        if name != "switch":
            registry.unregister(name)
    return switch


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()
