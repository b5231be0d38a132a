"""No function in the metrics app returns a figure that was not measured."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from metrics.collectors import collect_performance_metrics, summarize_minute
from metrics.models import PerformanceMetric
from metrics.reports import get_performance_report, get_resource_report

APP = Path(__file__).resolve().parent.parent / "metrics"


def _modules() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text()))
        for path in APP.rglob("*.py")
        if "migrations" not in path.parts
    ]


def test_no_module_imports_a_random_number_source() -> None:
    for path, tree in _modules():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] in {"random", "faker", "numpy"} for n in names), path


def test_no_function_returns_a_hard_coded_number() -> None:
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant):
                value = node.value.value
                # 0 is allowed only as "no rows written" by the rollup steps.
                allowed = value == 0 and path.name == "rollups.py"
                number = isinstance(value, int | float) and not isinstance(value, bool)
                assert allowed or not number, (
                    f"{path.name}:{node.lineno} returns the constant {value!r}"
                )


def test_an_empty_minute_gives_no_figures() -> None:
    assert summarize_minute({}) == []


@pytest.mark.django_db
def test_reports_on_an_empty_database_report_nothing() -> None:
    assert get_performance_report(24)["metrics"] == {}
    assert get_performance_report(24)["by_key"] == {}
    assert get_resource_report(24)["hosts"] == {}


@pytest.mark.django_db
def test_without_redis_there_is_no_cache_hit_rate_row(settings: object) -> None:
    settings.REDIS_URL = ""  # type: ignore[attr-defined]
    collect_performance_metrics()
    assert not PerformanceMetric.objects.filter(metric="cache_hit_rate_percent").exists()
