"""Defaults of the errors app's settings (applied by ErrorsConfig; see opsconsole.conf)."""

from typing import Any

DEFAULTS: dict[str, Any] = {
    "SENTRY_DSN": "",
    # Capture the host's own unhandled exceptions as issues of project OPS_ERRORS_OWN_PROJECT.
    "OPS_ERRORS_CAPTURE": True,
    "OPS_ERRORS_OWN_PROJECT": "Ops Console",
    "OPS_ERRORS_CAPTURE_PER_MINUTE": 60,
    "OPS_ERRORS_CAPTURE_SECURITY_PER_MINUTE": 2,
    "OPS_ERRORS_CAPTURE_LOCALS": False,
    "OPS_ERRORS_SPOOL_MAX_FILES": 1000,
    "OPS_ERRORS_SPOOL_MAX_BYTES": 64 * 2**20,
    "OPS_ERRORS_MAX_ENVELOPE_BYTES": 20 * 2**20,
    "OPS_ERRORS_MAX_DECOMPRESSED_BYTES": 64 * 2**20,
    "OPS_ERRORS_MAX_EVENT_BYTES": 2**20,
    "OPS_ERRORS_MAX_HEADER_BYTES": 8192,
    "OPS_ERRORS_SCRUB_FIELDS": [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_key",
        "private_key",
        "privatekey",
        "auth",
        "credentials",
        "cookie",
        "session",
        "csrf",
        "bearer",
        "mysql_pwd",
        "card",
        "cvv",
        "iban",
        "passphrase",
        "dsn",
    ],  # fmt: skip
    "OPS_ERRORS_DIGEST_BATCH": 500,
    "OPS_ERRORS_DIGEST_BATCH_BYTES": 16 * 2**20,
    "OPS_ERRORS_DIGEST_TIME_LIMIT": 30.0,
    "OPS_ERRORS_DIGEST_MAX_ATTEMPTS": 3,
    "OPS_ERRORS_DIGEST_RETRY_DELAY": 30.0,
    # The digest runs on its own queue, so an ingest flood never delays the host's tasks.
    "OPS_ERRORS_DIGEST_QUEUE": "ingest",
    "OPS_ERRORS_BACKLOG_WARN": 300.0,
    "OPS_ERRORS_BACKLOG_FAIL": 1800.0,
    "OPS_ERRORS_DIGEST_INTERVAL": 15.0,
}
