"""Ops Console's own errors as events of its own project (settings.OPS_ERRORS_OWN_PROJECT)."""

from __future__ import annotations

import logging

from django.conf import settings

from errors import services
from errors.ingest import IngestError, parse_envelope
from errors.models import ErrorProject, ProjectKey

logger = logging.getLogger(__name__)


def own_project() -> ErrorProject:
    """The project Ops Console reports its own errors to (created on first use)."""
    project, created = ErrorProject.objects.get_or_create(name=settings.OPS_ERRORS_OWN_PROJECT)
    if created:
        ProjectKey.objects.create(project=project, label="in-process")
    return project


def accept_own_envelope(data: bytes) -> str | None:
    """Ingest an envelope produced by our own sentry-sdk client (no HTTP involved)."""
    try:
        envelope = parse_envelope(data, services.limits())
    except IngestError as exc:
        logger.warning("own envelope refused: %s", exc.reason)
        return None
    if envelope.event is not None:
        # No kick: if the digest itself were failing, each failure would report an error
        # that kicks another failing digest. Beat collects our own events instead.
        services.enqueue(own_project().pk, envelope, kick=False)
    return envelope.event_id
