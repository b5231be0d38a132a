"""A host project: a small shop with its own settings, app and Celery app, which runs Ops Console
the way README's "Add it to an existing project" says (tests/test_host_project.py)."""

from shop.celery import app as celery_app

__all__ = ("celery_app",)
