"""PostgreSQL: pg_dump custom format out, restore into a fresh database and swap it in.

Credentials reach pg_dump/pg_restore through a per-run PGPASSFILE (mode 0600) in a private
temporary directory; argv carries only host, port, user and database names.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from psycopg import sql
from psycopg.types.json import Jsonb

from backups.engines.carried import MAINTENANCE_COLUMNS, MAINTENANCE_TABLE
from backups.errors import BackupError


def _tool(name: str) -> str:
    folder = settings.OPS_BACKUP_PG_BIN_DIR
    path = str(Path(folder) / name) if folder else shutil.which(name)
    if not path or not Path(path).exists():
        raise BackupError(
            f"{name} was not found: install the PostgreSQL client tools or set "
            "OPS_BACKUP_PG_BIN_DIR"
        )
    return path


def tool_major(name: str) -> tuple[int, str]:
    out = subprocess.run(  # noqa: S603
        [_tool(name), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    match = re.search(r"\b(\d+)(?:\.(\d+))?", out)
    if not match:
        raise BackupError(f"cannot read the version of {name} from {out!r}")
    return int(match.group(1)), out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


class Connection:
    """Where a database is, and how to reach it without putting the password on argv."""

    def __init__(self, db: dict[str, Any], *, dbname: str | None = None) -> None:
        self.host = str(db.get("HOST") or "localhost")
        self.port = str(db.get("PORT") or 5432)
        self.user = str(db.get("USER") or "postgres")
        self.password = str(db.get("PASSWORD") or "")
        self.dbname = dbname or str(db["NAME"])

    def connect(self, dbname: str | None = None, *, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=dbname or self.dbname,
            autocommit=autocommit,
            connect_timeout=10,
        )

    @contextmanager
    def client_env(self) -> Iterator[dict[str, str]]:
        """Environment for a libpq child: a 0600 PGPASSFILE that is removed afterwards."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGHOST=self.host, PGPORT=self.port, PGUSER=self.user, PGCONNECT_TIMEOUT="10")
        with tempfile.TemporaryDirectory(prefix="ops-pgpass-") as folder:
            passfile = Path(folder) / "pgpass"
            fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                if self.password:
                    fh.write(f"*:*:*:{_escape(self.user)}:{_escape(self.password)}\n")
            env["PGPASSFILE"] = str(passfile)
            yield env

    def scrub(self, text: str) -> str:
        """Belt and braces: no message we keep or log may carry the password."""
        return text.replace(self.password, "***") if self.password else text


def server_major(conn: psycopg.Connection) -> tuple[int, str]:
    row = conn.execute(
        "SELECT current_setting('server_version_num')::int, current_setting('server_version')"
    ).fetchone()
    assert row is not None
    return int(row[0]) // 10000, str(row[1])


def check_dump_compatible(target: Connection) -> dict[str, Any]:
    """pg_dump must be at least the server's major version (it refuses newer servers)."""
    dump_major, dump_version = tool_major("pg_dump")
    with target.connect() as conn:
        major, version = server_major(conn)
    require_dump_fits(dump_major, major)
    return {"server_major": major, "server_version": version, "dump_tool": dump_version}


def require_dump_fits(dump_major: int, server: int) -> None:
    if dump_major < server:
        raise BackupError(
            f"pg_dump {dump_major} cannot dump a PostgreSQL {server} server: install the "
            f"PostgreSQL {server} client tools (or newer) and point OPS_BACKUP_PG_BIN_DIR at them"
        )


def _tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT schemaname, tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY schemaname, tablename"
    ).fetchall()
    return [(str(s), str(t)) for s, t in rows]


def row_counts(conn: psycopg.Connection, tables: list[tuple[str, str]] | None = None) -> dict:
    # JIT-compiling each count(*) costs more than it saves.
    conn.execute("SET LOCAL jit = off" if conn.info.transaction_status else "SET jit = off")
    counts: dict[str, int] = {}
    for schema, table in tables if tables is not None else _tables(conn):
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def dump(
    target: Connection, write: Callable[[bytes], Any], *, chunk: int = 1024 * 1024
) -> dict[str, Any]:
    """Stream `pg_dump -Fc` into `write`; row counts come from the same snapshot as the dump."""
    info = check_dump_compatible(target)
    counts: dict[str, int] = {}
    errors: list[BaseException] = []
    with target.connect(autocommit=False) as snap, target.client_env() as env:
        snap.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = snap.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        args = [_tool("pg_dump"), "--format=custom", "--no-password", f"--snapshot={row[0]}"]
        if settings.OPS_BACKUP_PG_COMPRESS:
            args.append(f"--compress={settings.OPS_BACKUP_PG_COMPRESS}")
        args.append(f"--dbname={target.dbname}")
        with tempfile.TemporaryFile() as stderr:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, env=env)  # noqa: S603
            assert proc.stdout is not None
            # A 1 MiB pipe instead of 64 KiB: fewer stalls and wake-ups between pg_dump and us.
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 1024 * 1024)

            def count() -> None:
                # Counting runs alongside the dump, in the transaction whose snapshot it reads.
                try:
                    # One core for counting: parallel workers would take CPU from pg_dump.
                    snap.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                    counts.update(row_counts(snap))
                except BaseException as exc:
                    errors.append(exc)

            counter = threading.Thread(target=count, name="backup-row-counts", daemon=True)
            counter.start()
            assert proc.stdout is not None
            try:
                first = True
                while data := proc.stdout.read(chunk):
                    if first and not data.startswith(b"PGDMP"):
                        raise BackupError("pg_dump did not write a custom-format archive")
                    first = False
                    write(data)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            finally:
                counter.join()
            code = proc.wait()
            stderr.seek(0)
            message = target.scrub(stderr.read().decode(errors="replace").strip())
        snap.rollback()
    if code != 0:
        last = message.splitlines()[-1] if message else "no message"
        raise BackupError(f"pg_dump exited with {code}: {last}")
    if errors:
        raise BackupError(f"counting rows failed: {target.scrub(str(errors[0]))}")
    return {**info, "database": target.dbname, "row_counts": counts}


def _scratch_name(base: str, purpose: str) -> str:
    suffix = f"__{purpose}_{int(time.time() * 1000)}"
    return base[: 63 - len(suffix)] + suffix


def _exists(admin: psycopg.Connection, name: str) -> bool:
    found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return found is not None


def _drop(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def check_restore_compatible(manifest: dict[str, Any], target: Connection) -> int:
    engine = manifest.get("engine")
    if engine != "postgresql":
        raise BackupError(
            f"backup {manifest.get('id')} holds a {engine} database and this server is "
            "PostgreSQL: restoring across engines is not supported; pick a PostgreSQL backup"
        )
    restore_major, _ = tool_major("pg_restore")
    with target.connect("postgres") as admin:
        major, _ = server_major(admin)
    source = int(manifest.get("server_major") or 0)
    if source > major:
        raise BackupError(
            f"backup {manifest.get('id')} comes from PostgreSQL {source} and this server is "
            f"PostgreSQL {major}: restore it on PostgreSQL {source} or newer"
        )
    dump_major = int(manifest.get("dump_tool_major") or source)
    if restore_major < dump_major:
        raise BackupError(
            f"pg_restore {restore_major} cannot read an archive written by pg_dump {dump_major}: "
            f"install the PostgreSQL {dump_major} client tools or newer"
        )
    return major


def restore_into_scratch(
    archive: Path, manifest: dict[str, Any], target: Connection, *, purpose: str = "restore"
) -> tuple[str, dict[str, int]]:
    """Restore `archive` into a new database and check its row counts; return its name."""
    check_restore_compatible(manifest, target)
    scratch = _scratch_name(target.dbname, purpose)
    with target.connect("postgres") as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch))
        )
    try:
        args = [
            _tool("pg_restore"),
            "--no-password",
            "--exit-on-error",
            "--no-owner",
            f"--jobs={settings.OPS_BACKUP_RESTORE_JOBS}",
            f"--dbname={scratch}",
            str(archive),
        ]
        with target.client_env() as env, tempfile.TemporaryFile() as stderr:
            code = subprocess.run(args, stderr=stderr, env=env, check=False).returncode  # noqa: S603
            stderr.seek(0)
            message = target.scrub(stderr.read().decode(errors="replace").strip())
        if code != 0:
            last = message.splitlines()[-1] if message else "no message"
            raise BackupError(f"pg_restore exited with {code}: {last}")
        expected: dict[str, int] = manifest.get("row_counts") or {}
        with target.connect(scratch) as conn:
            tables = [tuple(name.split(".", 1)) for name in expected]
            try:
                found = row_counts(conn, tables)  # type: ignore[arg-type]
            except psycopg.errors.UndefinedTable as exc:
                raise BackupError(f"the restored database lacks a table: {exc}") from None
        wrong = {k: (v, found.get(k)) for k, v in expected.items() if found.get(k) != v}
        if wrong:
            sample = ", ".join(
                f"{k} has {f} rows, expected {e}" for k, (e, f) in list(wrong.items())[:3]
            )
            raise BackupError(f"the restored database does not match the manifest: {sample}")
        return scratch, found
    except BaseException:
        with target.connect("postgres") as admin:
            _drop(admin, scratch)
        raise


def drop_database(target: Connection, name: str) -> None:
    with target.connect("postgres") as admin:
        _drop(admin, name)


def _read_maintenance(conn: psycopg.Connection) -> dict[str, Any] | None:
    exists = conn.execute("SELECT to_regclass(%s)", [MAINTENANCE_TABLE]).fetchone()
    if not exists or exists[0] is None:
        return None
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in MAINTENANCE_COLUMNS)
    row = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE singleton = 1").format(
            cols, sql.Identifier(MAINTENANCE_TABLE)
        )
    ).fetchone()
    if row is None:
        return {"is_down": False}
    return dict(zip(MAINTENANCE_COLUMNS, row, strict=True))


def _write_maintenance(conn: psycopg.Connection, state: dict[str, Any]) -> None:
    exists = conn.execute("SELECT to_regclass(%s)", [MAINTENANCE_TABLE]).fetchone()
    if not exists or exists[0] is None:
        return
    values = {
        "is_down": False,
        "message": "",
        "retry_after": 60,
        "secret_hash": "",
        "allowed_ips": [],
        "since": None,
        "changed_by": "restore",
        **state,
    }
    values["allowed_ips"] = Jsonb(values["allowed_ips"] or [])
    cols = list(MAINTENANCE_COLUMNS)
    conn.execute(
        sql.SQL(
            "INSERT INTO {t} (singleton, window_id, {cols}) VALUES (1, NULL, {vals}) "
            "ON CONFLICT (singleton) DO UPDATE SET window_id = NULL, {sets}"
        ).format(
            t=sql.Identifier(MAINTENANCE_TABLE),
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
            vals=sql.SQL(", ").join(sql.Placeholder(c) for c in cols),
            sets=sql.SQL(", ").join(
                sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in cols
            ),
        ),
        {c: values[c] for c in cols},
    )


def _rename(old: str, new: str) -> sql.Composed:
    return sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
        sql.Identifier(old), sql.Identifier(new)
    )


def swap_in(target: Connection, scratch: str, *, keep_old: bool = False) -> str | None:
    """Make `scratch` the database called target.dbname; the old one is renamed, then dropped.

    The maintenance-mode row of the target is carried over into the restored database, so a
    restore neither brings a site up that was down nor leaves it down because the backup was
    taken during maintenance. Returns the name the old database is kept under, if kept.
    """
    name = target.dbname
    old = _scratch_name(name, "old")
    with target.connect("postgres") as admin:
        had_target = _exists(admin, name)
        # A brand-new target comes up: a backup taken during maintenance must not keep it down.
        state: dict[str, Any] | None = {"is_down": False}
        if had_target:
            with target.connect(name) as conn:
                state = _read_maintenance(conn)
        if state is not None:
            with target.connect(scratch) as conn:
                _write_maintenance(conn, state)
        ident = sql.Identifier
        if had_target:
            # No new sessions, then end the current ones: a database in use cannot be renamed.
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident(name)))
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            try:
                admin.execute(_rename(name, old))
            except BaseException:
                admin.execute(
                    sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident(name))
                )
                raise
        try:
            admin.execute(_rename(scratch, name))
        except BaseException:
            if had_target:
                admin.execute(_rename(old, name))
                admin.execute(
                    sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident(name))
                )
            raise
        if had_target:
            if keep_old:
                admin.execute(
                    sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident(old))
                )
                return old
            _drop(admin, old)
    return None
