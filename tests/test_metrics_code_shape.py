"""The metrics and health code reads as named steps: no function runs past about 60 lines
unless its docstring gives the reason ("Long because ...")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 60


def test_no_metrics_or_health_function_runs_over_sixty_lines() -> None:
    long = []
    for app in ("metrics", "health"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                reason = "Long because" in (ast.get_docstring(node) or "")
                if length > LIMIT and not reason:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert long == []
