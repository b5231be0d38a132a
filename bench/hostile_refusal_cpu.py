"""CPU time of one refused ingest post inside the WSGI application, without a server: answered
from the raw environ (what the deployed application does) against the whole Django ingest path
(OpsWSGIHandler._ingest, what it did before). Process CPU time over many calls, so other load
on the machine barely moves it.

bench_hostile.py runs this with the console's environment, the id and X-Sentry-Auth of a
project whose quota is spent, and a key of no project: `hostile_refusal_cpu.py ID AUTH WRONG`.
"""

import gzip
import io
import sys
import time
from collections.abc import Callable
from typing import Any

import django

django.setup()

from opsconsole.wsgi import application  # noqa: E402

CALLS = 3000
BODY = b"\x1f\x8b" + b"\0" * 65_000  # what a bomb's first 64 KiB look like
EVENT = gzip.compress(b'{}\n{"type":"event"}\n{"event_id":"%s","message":"over"}\n' % (b"0" * 32))


def post(project_id: str, auth: str, body: bytes = BODY) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/api/{project_id}/envelope/",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-sentry-envelope",
        "HTTP_CONTENT_ENCODING": "gzip",
        "HTTP_X_SENTRY_AUTH": auth,
    }


def answer(app: Callable[..., Any], environ: dict[str, Any]) -> str:
    """Call `app` as a WSGI server does (read the body, close the result); the status."""
    started: list[str] = []
    result = app(environ, lambda status, headers: started.append(status))
    b"".join(result)
    if hasattr(result, "close"):
        result.close()
    return started[0]


def cpu_us(app: Callable[..., Any], project_id: str, auth: str) -> float:
    """CPU microseconds per refused post, best of three runs of CALLS."""
    status = answer(app, post(project_id, auth))
    assert status[:3] in ("403", "429"), status
    runs = []
    for _ in range(3):
        start = time.process_time()
        for _ in range(CALLS):
            answer(app, post(project_id, auth))
        runs.append((time.process_time() - start) / CALLS * 1e6)
    return min(runs)


project_id, auth, wrong = sys.argv[1:4]
for name, key in (("quota spent", auth), ("wrong key", wrong)):
    answer(application, post(project_id, key, EVENT))  # counted, refused and remembered
    early = cpu_us(application, project_id, key)
    whole = cpu_us(application._ingest, project_id, key)
    print(
        f"in-process CPU per refused post ({name}): {early:.0f} us from the environ, "
        f"{whole:.0f} us through the Django ingest path (x{whole / early:.1f})"
    )
