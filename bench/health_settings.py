"""Settings for benchmarks: the production-shaped app plus two comparison views."""

import os

os.environ.setdefault("OPS_ENVIRONMENT", "test")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-secret-key-" + "b" * 40)
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")

from opsconsole.settings import *  # noqa: E402,F403

ROOT_URLCONF = "bench.health_urls"
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]  # noqa: F405
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
