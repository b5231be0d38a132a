"""The shape of the code, as issue 13 set it: no app reaches into another app's private names,
and no function (in the apps or in bench/) runs past about 60 lines without saying why in its
docstring.

The import contracts themselves (no domain app imports `alerts`, no import cycle inside an app,
private modules stay in their package) are import-linter's: `make lint` runs `lint-imports` with
the contracts in pyproject.toml.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("alerts", "backups", "errors", "health", "maintenance", "metrics", "opsconsole")
# The length rule covers the benchmarks too: they are read and changed like the apps.
SHAPED = (*APPS, "bench")
MAX_FUNCTION_LINES = 60
# A longer function says why it stays one piece in its docstring ("Long because ...").
REASON = "Long because"


def sources(folders: tuple[str, ...] = APPS) -> Iterator[tuple[str, Path, ast.Module]]:
    for app in folders:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield app, path, ast.parse(path.read_text(), str(path))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def foreign_private_uses(app: str, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Imports of another app's underscore names, and attribute reads of them through a module
    of another app imported by name."""
    modules: dict[str, str] = {}  # local name -> dotted module of another app
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            owner = node.module.split(".")[0]
            if owner in APPS and owner != app:
                for alias in node.names:
                    if _private(alias.name):
                        yield node.lineno, f"from {node.module} import {alias.name}"
                    else:
                        modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                owner = alias.name.split(".")[0]
                if owner in APPS and owner != app:
                    if any(_private(part) for part in alias.name.split(".")):
                        yield node.lineno, f"import {alias.name}"
                    modules[alias.asname or owner] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            yield node.lineno, f"{modules[node.value.id]}.{node.attr}"


def test_no_app_uses_another_apps_private_names():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for app, path, tree in sources()
        for line, what in foreign_private_uses(app, tree)
    ]
    assert not found, "private names used across apps:\n" + "\n".join(found)


def test_no_function_runs_past_sixty_lines_without_a_reason():
    found = []
    for _, path, tree in sources(SHAPED):
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            doc = ast.get_docstring(node) or ""
            if length > MAX_FUNCTION_LINES and REASON not in doc:
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.append(f"{where}: {node.name} ({length} lines)")
    assert not found, (
        f"functions over {MAX_FUNCTION_LINES} lines: split them into named steps, or say why "
        f"not in its docstring ({REASON!r} ...):\n" + "\n".join(found)
    )


def test_the_checker_finds_what_it_looks_for():
    """The two rules above would pass vacuously if the walk found nothing."""
    tree = ast.parse(
        "from errors.services import _publish\nfrom alerts import services\nservices._hidden()\n"
    )
    assert [what for _, what in foreign_private_uses("metrics", tree)] == [
        "from errors.services import _publish",
        "alerts.services._hidden",
    ]
    own = list(foreign_private_uses("alerts", tree))  # alerts may use its own private names
    assert own == [(1, "from errors.services import _publish")]
    assert sum(1 for _ in sources()) > 100
    assert any(path.parent.name == "bench" for _, path, _ in sources(SHAPED))
