"""Fixtures shared by the maintenance tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from maintenance import state


@pytest.fixture(autouse=True)
def fresh_maintenance_state() -> Iterator[None]:
    # The state is cached per process for a second; a test must not see the last one's.
    state.invalidate()
    yield
    state.invalidate()
