"""One-click operations from the console: the permission check that records refusals.

An operation is a ModelAdmin page (`admin_page(..., methods=("POST",))`, so a GET gets a
405) whose view is wrapped with `operation(action, permission)`. The page itself is let in to
anyone who may view the model; `operation` then refuses those without the operation's
permission with a 403 and a "denied" audit record, so a forged POST leaves a trace. The view
records its own success or failure (it knows the target and the outcome).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from opsconsole import audit
from opsconsole.models import SystemLog

View = Callable[..., HttpResponse]


def refuse(request: HttpRequest, action: str, permission: str, target: str = "") -> None:
    """Record the refusal and raise PermissionDenied (a 403)."""
    audit.record(
        action,
        actor=request.user,
        target=target,
        result=SystemLog.Result.DENIED,
        details={"needs": permission},
    )
    raise PermissionDenied


def operation(action: str, permission: str, target: str = "") -> Callable[[View], View]:
    """Refuse (403, audited as denied) a user without `permission` before the view runs.

    `target` names what was refused in the record, formatted with the URL's arguments
    ("backup {backup_id}").
    """

    def wrap(view: View) -> View:
        @functools.wraps(view)
        def run(model_admin: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not request.user.has_perm(permission):
                refuse(request, action, permission, target.format(**kwargs))
            return view(model_admin, request, *args, **kwargs)

        return run

    return wrap


def may(request: HttpRequest, permission: str) -> bool:
    """Whether to show the button of an operation needing `permission`."""
    return bool(request.user.has_perm(permission))
