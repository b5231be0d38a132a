"""Request context: a request id (honouring a sane incoming X-Request-ID) and the client IP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import sentry_sdk
from django.http import HttpRequest, HttpResponse

from opsconsole.clientip import client_ip
from opsconsole.context import reset_request_context, set_request_context

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Whatever the previous request left on this thread's sentry scope (breadcrumbs, tags)
        # must not reach this one's events (our own error capture, errors/capture.py). The
        # standalone's WSGI handler clears it too, earlier; a host's WSGI handler does not.
        sentry_sdk.get_isolation_scope().clear()
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        tokens = set_request_context(request_id, client_ip(request))
        try:
            response = self.get_response(request)
        finally:
            reset_request_context(tokens)
        response["X-Request-ID"] = request_id
        return response
