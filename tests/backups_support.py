"""Helpers for the backups tests (fixtures live in tests/fixtures_backups.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection
from psycopg import sql

from backups.engines.postgres import Connection


def on_postgres() -> bool:
    return connection.settings_dict["ENGINE"].endswith("postgresql")


def admin_conn() -> psycopg.Connection:
    return Connection(connection.settings_dict).connect("postgres")


def scratch_db(name: str) -> Iterator[str]:
    with admin_conn() as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    yield name
    with admin_conn() as admin:
        rows = admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [name + "%"]
        ).fetchall()
        for (found,) in rows:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(found))
            )


def databases_like(prefix: str) -> list[str]:
    with admin_conn() as admin:
        rows = admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY datname",
            [prefix + "%"],
        ).fetchall()
    return [r[0] for r in rows]


def query(dbname: str, text: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with Connection(connection.settings_dict).connect(dbname) as conn:
        cur = conn.execute(text, params)
        return cur.fetchall() if cur.description else []


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
