"""The Docker image serves the admin under the production settings the compose file runs with.

There is no Docker engine in CI, so the test does what the image does: it reads the
Dockerfile's `ENV` lines and the `collectstatic` step of its `RUN` line, runs that step into a
temporary directory (the image's /app/static), then starts the compose `web` command
(docker/start-web.sh + gunicorn) with production settings and DEBUG off, logs in with the
account that script created from DJANGO_SUPERUSER_* and requests admin pages and their CSS.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.conftest import ROOT, database_url_for_subprocess
from tests.servers import start_gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ADMIN_USER = "docker-admin"
ADMIN_PASSWORD = "docker-admin-password-0123"  # noqa: S105


def dockerfile_steps() -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(ENV of the image, the collectstatic step's own assignments, its command)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    image_env: dict[str, str] = {}
    step: list[str] = []
    for line in text.splitlines():
        if line.startswith("ENV "):
            for word in shlex.split(line[4:]):
                name, _, value = word.partition("=")
                image_env[name] = value
        if line.startswith("RUN ") and "collectstatic" in line:
            segment = next(s for s in line[4:].split("&&") if "collectstatic" in s)
            step = shlex.split(segment)
    assert step, "the Dockerfile has no RUN step running collectstatic"
    assignments: dict[str, str] = {}
    while "=" in step[0] and not step[0].startswith("-"):
        name, _, value = step.pop(0).partition("=")
        assignments[name] = value
    return image_env, assignments, step


def clean_env(**extra: str) -> dict[str, str]:
    """A container's environment: none of the test run's Django settings leak in."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(ROOT)}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def image_static(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Collect static files exactly as the Dockerfile does, into a temporary directory."""
    tmp_path = tmp_path_factory.mktemp("image")
    image_env, assignments, command = dockerfile_steps()
    assert command[0] == "python", command
    # The image's static root and data directory, moved under tmp_path.
    paths = {"OPS_VAR_DIR": str(tmp_path / "var")}
    if "OPS_STATIC_ROOT" in image_env:
        paths["OPS_STATIC_ROOT"] = str(tmp_path / "static")
    env = clean_env(**{**image_env, **assignments, **paths})
    done = subprocess.run(
        [sys.executable, *command[1:]], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {**image_env, **paths}


def production_env(image: dict[str, str], **extra: str) -> dict[str, str]:
    # As docker-compose.yml's environment block (x-ops-env and the web service's additions).
    env = clean_env(
        **image,
        OPS_ENVIRONMENT="production",
        DATABASE_URL=database_url_for_subprocess(),
        SECRET_KEY="docker-static-test-" + "k" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        OPS_SSL_REDIRECT="0",
        OPS_SECURE_COOKIES="0",
        OPS_ERRORS_CAPTURE="0",
        DJANGO_SUPERUSER_USERNAME=ADMIN_USER,
        DJANGO_SUPERUSER_EMAIL="docker-admin@example.com",
        DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
    )
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    env.update(extra)
    return env


def start_web(*server: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "docker/start-web.sh", *server],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def web(image_static: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with start_gunicorn(
        "-w",
        "1",
        env=production_env(image_static),
        log=tmp_path / "web.log",
        prefix=("sh", "docker/start-web.sh"),
        timeout=90,
    ) as server:
        yield server.url


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
    )


def fetch(
    browser: urllib.request.OpenerDirector, url: str, data: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with browser.open(url, data=body, timeout=30) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), dict(exc.headers)


def test_the_image_collects_static_files_with_the_production_manifest(
    image_static: dict[str, str],
) -> None:
    root = Path(image_static.get("OPS_STATIC_ROOT") or Path(image_static["OPS_VAR_DIR"]) / "static")
    manifest = json.loads((root / "staticfiles.json").read_text())
    hashed = manifest["paths"]["admin/css/base.css"]
    assert hashed != "admin/css/base.css"
    assert (root / hashed).exists()
    # No development secret key is written into the image.
    assert not (Path(image_static["OPS_VAR_DIR"]) / "secret_key").exists()


def test_the_compose_web_command_serves_the_admin_under_production_settings(web: str) -> None:
    browser = opener()
    status, page, _ = fetch(browser, f"{web}/admin/login/?next=/admin/")
    assert status == 200, page[-2000:]
    css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page)
    assert css, "the login page does not link the hashed admin CSS"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token
    status, _, headers = fetch(
        browser,
        f"{web}/admin/login/?next=/admin/",
        {
            "csrfmiddlewaretoken": token.group(1),
            "username": ADMIN_USER,
            "password": ADMIN_PASSWORD,
            "next": "/admin/",
        },
    )
    assert status == 302 and headers["Location"] == "/admin/", status
    for path in ("/admin/", "/admin/errors/errorproject/", "/admin/errors/errorproject/add/"):
        status, page, _ = fetch(browser, f"{web}{path}")
        assert status == 200, (path, page[-2000:])
    status, stylesheet, headers = fetch(browser, f"{web}{css.group(1)}")
    assert status == 200 and "text/css" in headers["Content-Type"]
    assert "immutable" in headers.get("Cache-Control", "")


def test_the_web_start_script_creates_the_admin_once_and_keeps_it_on_restart(
    image_static: dict[str, str],
) -> None:
    env = production_env(image_static)
    first = start_web("true", env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    user = User.objects.get(username=ADMIN_USER)
    # Created with the production hasher (the login under gunicorn above proves the password).
    assert user.is_superuser and user.password.startswith("pbkdf2_sha256$")

    restarted = start_web(
        "true", env=production_env(image_static, DJANGO_SUPERUSER_PASSWORD="a-new-password-xyz")
    )
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    assert f"admin account {ADMIN_USER} exists; left unchanged" in restarted.stdout
    assert User.objects.filter(username=ADMIN_USER).count() == 1
    assert User.objects.get(username=ADMIN_USER).password == user.password


def test_the_web_start_script_says_why_it_creates_no_admin_without_a_password(
    image_static: dict[str, str],
) -> None:
    done = start_web("true", env=production_env(image_static, DJANGO_SUPERUSER_PASSWORD=""))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "admin account not created: set DJANGO_SUPERUSER_PASSWORD" in done.stderr
    assert not User.objects.filter(username=ADMIN_USER).exists()
