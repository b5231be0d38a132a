import os

from django.core.asgi import get_asgi_application

import opsconsole.celery  # noqa: F401  (the standalone project's Celery app)
from opsconsole.startup import refuse_unsafe_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconsole.settings")
application = get_asgi_application()
refuse_unsafe_start("web server")
