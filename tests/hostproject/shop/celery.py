"""The shop's own Celery app; Ops Console's tasks are shared tasks and run on it."""

import os

from celery import Celery

import opsconsole.host

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
opsconsole.host.setup_celery(app)  # step 4: worker heartbeat, broker guard, start-up refusal
