"""Shared pieces of the fuzz suites (tests/test_fuzz_*.py).

Every suite runs a fixed number of generated cases with `derandomize=True` (the same cases on
every run and machine, no example database), so a CI failure reproduces locally. Each test
calls an inner @given function itself, so one database transaction and one set of fixtures
serves all of its cases, and whatever must hold across them (valid events all stored) is
checked once at the end.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# How the 10,000 cases of a CI run are split between the suites. OPS_FUZZ_SCALE=0.1 runs a
# tenth of them (a quick local pass); CI runs them all.
SCALE = float(os.environ.get("OPS_FUZZ_SCALE", "1"))
CASES = {
    name: max(1, round(count * SCALE))
    for name, count in {
        "envelope": 2500,
        "store": 1500,
        "deep": 100,
        "health": 4900,
        "admin": 1000,
    }.items()
}


def fuzz_settings(cases: int) -> settings:
    return settings(
        max_examples=cases,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )
