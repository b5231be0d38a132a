"""What a host project adds (opsconsole.host) and the settings defaults inside the apps
(opsconsole.conf, <app>/conf.py). The whole installation is tests/test_host_project.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import import_module
from typing import Any

from django.conf import global_settings

import opsconsole.host
from opsconsole.conf import APPS, Derived
from tests.servers import ROOT

STOCK_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
# Settings the standalone project sets differently from the apps' defaults, on purpose.
STANDALONE_DIFFERS = {
    "SECRET_KEY_MISSING": "it knows whether SECRET_KEY came from the environment",
    "OPS_METRICS_QUEUES": "it names its two queues; the default reads them from the Celery app",
}


def all_defaults() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for app in APPS:
        found.update(import_module(f"{app}.conf").DEFAULTS)
    return found


def test_it_gives_every_setting_the_apps_read_a_default() -> None:
    read = set()
    pattern = re.compile(r'settings\.([A-Z][A-Z0-9_]+)|getattr\(settings, "([A-Z][A-Z0-9_]+)"')
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            # The standalone project itself, and `manage.py serve`, which starts it.
            if relative.startswith(("opsconsole/settings", "opsconsole/management/commands/serve")):
                continue
            for a, b in pattern.findall(path.read_text()):
                read.add(a or b)
    django_own = {name for name in dir(global_settings) if name.isupper()}
    # A name ending in "_" is the prefix of an f-string (OPS_HEALTH_{name}_WARN) or of prose.
    missing = {n for n in read if not n.endswith("_")} - set(all_defaults()) - django_own
    assert not missing, f"settings read without a default in any <app>/conf.py: {sorted(missing)}"


def test_the_standalone_project_sets_what_the_apps_default_to() -> None:
    names = [n for n, v in all_defaults().items() if not isinstance(v, Derived)]
    # A fresh interpreter with no OPS_* variables: the standalone's own defaults.
    code = (
        "import json, sys; import opsconsole.settings as s; "
        "json.dump({n: repr(getattr(s, n, None)) for n in json.loads(sys.argv[1])}, sys.stdout)"
    )
    env = {"PATH": "/usr/bin:/bin", "OPS_VAR_DIR": str(ROOT / "var" / "test"), "SECRET_KEY": "x"}
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(names)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    standalone = json.loads(done.stdout)
    defaults = all_defaults()
    differ = {n for n in names if standalone[n] != repr(defaults[n])}
    assert differ == {"OPS_METRICS_QUEUES"}, {n: (standalone[n], defaults[n]) for n in differ}
    assert set(STANDALONE_DIFFERS) >= differ


def test_it_fills_only_the_settings_a_host_left_unset(settings: Any) -> None:
    from opsconsole.conf import apply_defaults

    settings.OPS_SITE_NAME = "Shop operations"
    del settings.OPS_HEALTH_RETENTION_DAYS
    apply_defaults(
        {
            "OPS_SITE_NAME": "Ops Console",
            "OPS_HEALTH_RETENTION_DAYS": 30,
            "OPS_TEMP_DIRS": Derived(lambda s: [s.OPS_SITE_NAME]),
        }
    )
    assert settings.OPS_SITE_NAME == "Shop operations"
    assert settings.OPS_HEALTH_RETENTION_DAYS == 30


def test_the_middleware_goes_where_its_order_matters() -> None:
    chain = opsconsole.host.middleware(STOCK_MIDDLEWARE)
    assert chain[:4] == opsconsole.host.MIDDLEWARE_FIRST
    auth = chain.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    assert chain[auth + 1] == "django_otp.middleware.OTPMiddleware"
    assert chain[-1] == "axes.middleware.AxesMiddleware"
    assert opsconsole.host.middleware(chain) == chain  # applying it twice changes nothing


def test_the_middleware_list_needs_the_host_to_have_authentication() -> None:
    try:
        opsconsole.host.middleware(STOCK_MIDDLEWARE[:3])
    except ValueError as exc:
        assert "AuthenticationMiddleware" in str(exc)
    else:
        raise AssertionError("a middleware list without authentication was accepted")


def test_the_admin_becomes_the_consoles_site_after_its_templates() -> None:
    apps = opsconsole.host.installed_apps(
        ["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "shop"]
    )
    assert "django.contrib.admin" not in apps
    assert apps.index("opsconsole.theme") + 1 == apps.index("opsconsole.apps.OpsAdminConfig")
    assert apps.index("shop") < apps.index("axes") < apps.index("opsconsole")
    assert opsconsole.host.installed_apps(apps) == apps


def test_the_beat_schedule_takes_the_hosts_timing_and_the_apps_defaults() -> None:
    schedule = opsconsole.host.beat_schedule(
        {"OPS_BACKUP_HOUR": 5, "OPS_HEALTH_CHECK_INTERVAL": 30.0}
    )
    assert schedule["perform-health-check"]["schedule"] == 30.0
    assert schedule["errors-digest-inbox"]["schedule"] == 15.0
    assert schedule["backups-daily"]["schedule"].hour == {5}
    assert schedule["perform-weekly-maintenance"]["schedule"].hour == {5}


def test_the_digest_gets_its_own_queue() -> None:
    routes = opsconsole.host.task_routes({"OPS_ERRORS_DIGEST_QUEUE": "shop-ingest"})
    assert routes == {"errors.tasks.digest_inbox": {"queue": "shop-ingest"}}
    assert opsconsole.host.task_queues({"OPS_ERRORS_DIGEST_QUEUE": "shop-ingest"}) == [
        "shop-ingest"
    ]


def test_it_warns_when_the_admin_site_is_djangos_own(monkeypatch: Any) -> None:
    from django.contrib import admin
    from django.core.checks import run_checks

    monkeypatch.setattr(admin, "site", admin.AdminSite())
    assert "ops.W006" in {m.id for m in run_checks()}


def test_it_warns_about_middleware_out_of_order(settings: Any) -> None:
    from django.core.checks import run_checks

    assert "ops.W007" not in {m.id for m in run_checks()}
    settings.MIDDLEWARE = [*STOCK_MIDDLEWARE, *opsconsole.host.MIDDLEWARE_FIRST]
    assert "ops.W007" in {m.id for m in run_checks()}


def test_it_warns_that_backups_cover_the_default_database_only(monkeypatch: Any) -> None:
    from types import SimpleNamespace

    from opsconsole import system_checks

    # A stand-in for the settings: overriding DATABASES itself would reset the connections.
    databases: dict[str, dict[str, str]] = {"default": {}, "reports": {}}
    monkeypatch.setattr(system_checks, "settings", SimpleNamespace(DATABASES=databases))
    (warned,) = system_checks.check_backed_up_databases()
    assert warned.id == "ops.W008" and "reports" in warned.msg
    databases.pop("reports")
    assert system_checks.check_backed_up_databases() == []
