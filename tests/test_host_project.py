"""Ops Console inside someone else's Django project (issue 15).

tests/hostproject is a small shop: its own settings, an `orders` app with a model and views, its
own Celery app. It installs Ops Console the way README's "Add it to an existing project" says,
from the wheel `python -m build` makes, into a fresh virtual environment (built once per run),
and runs on real PostgreSQL and Redis under gunicorn with a real Celery worker of its own.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from tests.servers import ROOT, Gunicorn, start_gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

HOST_PROJECT = ROOT / "tests" / "hostproject"
PASSWORD = "shop-owner-password-1"


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="session")
def host_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """README step 1: build the wheel and pip-install it into a new virtual environment."""
    work = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(ROOT)])
    (wheel,) = (work / "dist").glob("opsconsole-*.whl")
    run([sys.executable, "-m", "venv", str(work / "venv")])
    python = work / "venv" / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)])
    return python


@dataclass
class Shop:
    python: Path
    directory: Path
    env: dict[str, str]
    server: Gunicorn
    metrics_token: str

    @property
    def url(self) -> str:
        return self.server.url

    def manage(self, *args: str) -> str:
        done = run([str(self.python), "manage.py", *args], cwd=self.directory, env=self.env)
        return done.stdout

    def query(self, code: str) -> Any:
        """Run `code` (which prints one JSON line last) in the shop's `manage.py shell`."""
        out = self.manage("shell", "-c", code)
        return json.loads(out.strip().splitlines()[-1])

    @contextmanager
    def signed_in(self) -> Iterator[httpx.Client]:
        """An HTTP client signed in to the shop's admin as its superuser."""
        with httpx.Client(base_url=self.url, timeout=20) as client:
            client.get("/admin/login/")
            answer = client.post(
                "/admin/login/?next=/admin/",
                data={
                    "username": "owner",
                    "password": PASSWORD,
                    "csrfmiddlewaretoken": client.cookies["csrftoken"],
                },
            )
            assert answer.status_code == 302, answer.text[:500]
            yield client


def postgres(sql: str, timeout: str = "0") -> None:
    """Run `sql` on the PostgreSQL server of the test run (as its maintenance database)."""
    import psycopg

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db.get("HOST") or "127.0.0.1",
        port=int(db.get("PORT") or 5432),
        user=db.get("USER") or "postgres",
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
        options=f"-c statement_timeout={timeout}",
    ) as conn:
        conn.execute(sql.encode())


def shop_env(database: str, prefix: str, metrics_token: str) -> dict[str, str]:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
    # Nothing of this checkout's environment: no PYTHONPATH, no DJANGO_SETTINGS_MODULE.
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "SHOP_SECRET_KEY": secrets.token_urlsafe(50),
        "SHOP_DATABASE_URL": f"postgres://{user}{password}@{host}/{database}",
        "SHOP_REDIS_URL": os.environ["REDIS_URL"],
        "SHOP_KEY_PREFIX": prefix,
        "SHOP_METRICS_TOKEN": metrics_token,
        "SHOP_BACKUP_KEY": secrets.token_urlsafe(32),
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }


@pytest.fixture(scope="module")
def shop(host_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The shop, migrated (README step 5), served by gunicorn, with its own Celery worker and
    beat."""
    work = tmp_path_factory.mktemp("shop")
    directory = work / "shop"
    shutil.copytree(HOST_PROJECT, directory, ignore=shutil.ignore_patterns("__pycache__"))
    prefix = f"shop-{uuid.uuid4().hex[:10]}"
    database = f"{settings.DATABASES['default']['NAME']}_{prefix.replace('-', '_')}"
    postgres(f'CREATE DATABASE "{database}"')
    token = secrets.token_urlsafe(24)
    env = shop_env(database, prefix, token)
    run([str(host_python), "manage.py", "migrate", "-v", "0"], cwd=directory, env=env)
    run(
        [str(host_python), "manage.py", "createsuperuser", "--noinput"]
        + ["--username", "owner", "--email", "owner@shop.example"],
        cwd=directory,
        env=env,
    )
    worker_log = open(work / "worker.log", "wb")  # noqa: SIM115  (closed below)
    worker = subprocess.Popen(
        [str(host_python), "-m", "celery", "-A", "shop", "worker", "--loglevel=INFO"]
        + ["-Q", f"{prefix}-celery,{prefix}-ingest", "-n", f"{prefix}@%h", "-c", "1"]
        # Beat too (embedded): it runs the console's schedule, which collects the shop's own
        # errors into issues (a captured exception does not wake the digest by itself).
        + ["--beat", "--schedule", str(work / "beat-schedule")],
        cwd=directory,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    server = None
    try:
        server = start_gunicorn(
            "--workers", "2", env=env, log=work / "gunicorn.log", app="shop.wsgi:application",
            python=str(host_python), cwd=directory, timeout=60,
        )  # fmt: skip
        yield Shop(host_python, directory, env, server, token)
    finally:
        if server:
            server.stop()
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        worker_log.close()
        try:
            postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', timeout="60s")
        except Exception as exc:  # noqa: BLE001 - a busy server must not fail the specs
            warnings.warn(f"could not drop {database}: {exc}", stacklevel=1)
        from metrics.store import redis_client

        client = redis_client(os.environ["REDIS_URL"])
        keys = list(client.scan_iter(match=f"*{prefix}*"))
        if keys:
            client.delete(*keys)


def eventually(probe: Callable[[], Any], timeout: float = 30) -> Any:
    """`probe()`'s first truthy answer within `timeout` seconds (else its last one)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(0.3)


def test_its_probes_answer_for_its_own_database_cache_and_broker(shop: Shop) -> None:
    assert httpx.get(f"{shop.url}/health/live", timeout=10).status_code == 200
    ready = httpx.get(f"{shop.url}/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert {name: checks[name][0]["status"] for name in ("database", "cache", "broker")} == {
        "database": "pass",
        "cache": "pass",
        "broker": "pass",
    }


def test_its_own_views_appear_under_their_own_routes_in_metrics(shop: Shop) -> None:
    for _ in range(3):
        assert httpx.get(f"{shop.url}/orders/", timeout=10).status_code == 200
    assert httpx.get(f"{shop.url}/orders/424242/", timeout=10).status_code == 404

    def counted() -> dict[str, float]:
        text = httpx.get(
            f"{shop.url}/metrics",
            headers={"Authorization": f"Bearer {shop.metrics_token}"},
            timeout=10,
        ).text
        found: dict[str, float] = {}
        for route, value in re.findall(
            r'^http_requests_total\{route="([^"]+)"[^}]*\} (\S+)$', text, re.M
        ):
            found[route] = found.get(route, 0.0) + float(value)
        # Each gunicorn worker flushes its own counts: wait for both routes' totals.
        return found if found.get("orders/") == 3 and "orders/<int:pk>/" in found else {}

    routes = eventually(counted)
    assert routes.get("orders/") == 3
    assert routes.get("orders/<int:pk>/") == 1


def test_down_blocks_its_views_and_up_restores_them(shop: Shop) -> None:
    def status() -> int:
        return httpx.get(f"{shop.url}/orders/", timeout=10).status_code

    shop.manage("down", "--message", "Stocktaking")
    assert eventually(lambda: status() == 503, timeout=10)
    assert "Stocktaking" in httpx.get(f"{shop.url}/orders/", timeout=10).text
    shop.manage("up")
    assert eventually(lambda: status() == 200, timeout=10)


def test_an_exception_in_its_view_becomes_an_issue_in_its_admin(shop: Shop) -> None:
    assert httpx.get(f"{shop.url}/checkout/", timeout=10).status_code == 500
    with shop.signed_in() as admin:

        def listed() -> bool:
            page = admin.get("/admin/errors/issue/").text
            return "checkout lost the basket of order 7" in page

        assert eventually(listed, timeout=60)
    project = shop.query(
        "import json; from errors.models import Issue; "
        "print(json.dumps([i.project.name for i in Issue.objects.all()]))"
    )
    assert project == ["Shop"]


def test_the_console_pages_render_in_its_admin(shop: Shop) -> None:
    apps = ("health", "metrics", "errors", "backups", "maintenance", "alerts", "opsconsole")
    with shop.signed_in() as admin:
        home = admin.get("/admin/")
        assert home.status_code == 200
        assert "opsconsole/console.css" in home.text  # the console's admin templates are in use
        assert "Orders" in home.text  # next to the shop's own models
        pages = sorted(
            set(re.findall(rf'href="(/admin/(?:{"|".join(apps)})/[a-z_]+/)"', home.text))
        )
        assert len(pages) >= 8, pages
        for page in [*pages, "/console/metrics/"]:
            answer = admin.get(page)
            assert answer.status_code == 200, (page, answer.text[:300])


def test_backup_then_restore_round_trips_its_rows(shop: Shop) -> None:
    rows = [["ann", 1], ["bob", 2], ["cy", 3]]
    read = (
        "import json; from orders.models import Order; "
        "print(json.dumps(sorted(Order.objects.values_list('customer', 'quantity'))))"
    )
    shop.query(
        "import json; from orders.models import Order; "
        f"Order.objects.bulk_create([Order(customer=c, quantity=q) for c, q in {rows!r}]); "
        "print(json.dumps(True))"
    )
    assert "completed" in shop.manage("backup", "--db-only")
    shop.query(
        "import json; from orders.models import Order; Order.objects.filter(customer='bob')"
        ".delete(); Order.objects.create(customer='eve', quantity=9); print(json.dumps(True))"
    )
    assert shop.query(read) == [["ann", 1], ["cy", 3], ["eve", 9]]
    assert "restored backup" in shop.manage("restore", "latest", "--yes")
    assert shop.query(read) == rows
    assert httpx.get(f"{shop.url}/orders/", timeout=10).json()["orders"][0]["customer"] == "ann"
