"""The shop's settings: its own choices, plus the lines README's "Add it to an existing project"
adds (marked "step N"). Connection details come from the environment the test gives it."""

import os
from pathlib import Path
from urllib.parse import urlsplit

import opsconsole.host

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ["SHOP_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

# step 2: the console's apps (and the admin as the console's site) ...
INSTALLED_APPS = opsconsole.host.installed_apps(
    [
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "django.contrib.staticfiles",
        "orders",
    ]
)
# ... and its middleware, each where its order matters, and login throttling.
MIDDLEWARE = opsconsole.host.middleware(
    [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]
)
AUTHENTICATION_BACKENDS = opsconsole.host.authentication_backends(
    ["django.contrib.auth.backends.ModelBackend"]
)

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_db = urlsplit(os.environ["SHOP_DATABASE_URL"])
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username or "",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname or "",
        "PORT": str(_db.port or ""),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ["SHOP_REDIS_URL"]
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ["SHOP_KEY_PREFIX"],
    }
}

# The console's settings this shop changes; every other one keeps its app's
# default. (Before the Celery settings: step 4 reads the digest's queue from here.)
OPS_SITE_NAME = "Shop operations"
OPS_ERRORS_OWN_PROJECT = "Shop"
OPS_ERRORS_DIGEST_QUEUE = os.environ["SHOP_KEY_PREFIX"] + "-ingest"
OPS_METRICS_TOKEN = os.environ["SHOP_METRICS_TOKEN"]
OPS_METRICS_KEY_PREFIX = os.environ["SHOP_KEY_PREFIX"] + ":metrics"
OPS_METRICS_FLUSH_INTERVAL = 0.2
OPS_REDIS_KEY_PREFIX = os.environ["SHOP_KEY_PREFIX"]
OPS_BACKUP_ENCRYPTION_KEY = os.environ["SHOP_BACKUP_KEY"]

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = os.environ["SHOP_KEY_PREFIX"] + "-celery"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# step 4: the console's periodic tasks and its queue, merged into the shop's own.
CELERY_BEAT_SCHEDULE = {
    "orders-count": {"task": "orders.tasks.count_orders", "schedule": 3600.0},
    **opsconsole.host.beat_schedule(globals()),
}
CELERY_TASK_ROUTES = {**opsconsole.host.task_routes(globals())}
# Each due run sent once with several beats, and a heartbeat for the scheduler component.
CELERY_BEAT_SCHEDULER = "opsconsole.scheduler:OpsScheduler"

STATIC_URL = "static/"
USE_TZ = True
TIME_ZONE = "UTC"
