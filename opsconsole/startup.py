"""Processes that serve requests or run jobs refuse to start in production without a SECRET_KEY.

`manage.py check` reports the same problem as ops.E001, but nothing forces anyone to run it: a
gunicorn or Celery process started without the key would sign sessions, bypass cookies and
alert links with a made-up value. Each entry point (the WSGI and ASGI applications, the Celery
worker and beat) calls `refuse_unsafe_start` once, before it serves anything.
"""

from __future__ import annotations

import sys

from django.conf import settings

# gunicorn halts the master (instead of respawning workers for ever) when a worker exits with
# its "worker failed to boot" status, 3; the Celery processes simply exit with it.
EXIT_STATUS = 3


def unsafe_start_reason() -> str | None:
    """Why a production process must not start, as one line, or None when it may."""
    if getattr(settings, "PRODUCTION", False) and getattr(settings, "SECRET_KEY_MISSING", False):
        return (
            "SECRET_KEY is not set (ops.E001). Set it to a long random value, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`, and start again."
        )
    return None


def refuse_unsafe_start(process: str) -> None:
    reason = unsafe_start_reason()
    if reason is None:
        return
    sys.stderr.write(f"Ops Console {process} refuses to start in production: {reason}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_STATUS)
