"""Test settings, chosen explicitly by pytest's config (never sniffed from sys.argv)."""

import os

os.environ.setdefault("OPS_ENVIRONMENT", "test")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("OPS_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# Redis counters of one run never meet another's (project ids restart with each test database);
# set in the environment so servers and workers started by the tests share it.
os.environ.setdefault("OPS_REDIS_KEY_PREFIX", f"ops-test-{os.urandom(4).hex()}")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 20)

from opsconsole.settings import *  # noqa: E402,F403
from opsconsole.settings import CELERY_BROKER_URL as _BROKER  # noqa: E402

VAR_DIR.mkdir(parents=True, exist_ok=True)  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests that need a real worker start one (tests/conftest.py: live_worker) on a real broker;
# everything else only needs publishing to succeed.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or (
    _BROKER if _BROKER.startswith("redis") else "memory://"
)
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]  # noqa: F405

# A worker started by tests/conftest.py:live_worker listens on the queue the test chose.
if os.environ.get("OPS_TEST_DEFAULT_QUEUE"):
    import json as _json

    CELERY_TASK_DEFAULT_QUEUE = os.environ["OPS_TEST_DEFAULT_QUEUE"]
    CELERY_BROKER_TRANSPORT_OPTIONS = _json.loads(os.environ.get("OPS_TEST_BROKER_OPTIONS", "{}"))

# SQLite tests use a file, so worker and server processes started by tests share the data.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}  # noqa: F405

# Beats started by tests/test_many_hosts.py run only the schedule the test gives (JSON:
# name -> {"task", "schedule" (seconds), "options"}), not the product's.
if os.environ.get("OPS_TEST_BEAT_SCHEDULE"):
    import json as _json

    CELERY_BEAT_SCHEDULE = _json.loads(os.environ["OPS_TEST_BEAT_SCHEDULE"])

# Test-only task modules a worker started by the tests imports (tests/queues_support.py).
if os.environ.get("OPS_TEST_CELERY_IMPORTS"):
    CELERY_IMPORTS = os.environ["OPS_TEST_CELERY_IMPORTS"].split(",")
