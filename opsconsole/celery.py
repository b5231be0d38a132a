"""The standalone console's Celery app. Workers and beat start from here:
`celery -A opsconsole worker|beat`. A host project uses its own app instead and calls
`opsconsole.host.setup_celery(app)` on it, as this module does."""

import os

from celery import Celery

from opsconsole.host import setup_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")

app = Celery("opsconsole")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
setup_celery(app)
