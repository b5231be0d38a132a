"""Mirror every admin change and every console login into the audit trail."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_failure_limit
from axes.signals import user_locked_out
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from opsconsole import audit

_ADMIN_ACTIONS = {ADDITION: "admin.add", CHANGE: "admin.change", DELETION: "admin.delete"}


@receiver(post_save, sender=LogEntry, dispatch_uid="ops-audit-admin-logentry")
def record_admin_change(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    content_type = instance.content_type
    model = content_type.model if content_type is not None else "object"
    app = content_type.app_label if content_type is not None else ""
    audit.record(
        _ADMIN_ACTIONS.get(instance.action_flag, "admin.action"),
        actor=instance.user,
        target=f"{app}.{model}:{instance.object_id} {instance.object_repr}"[:255],
        details={"change": instance.get_change_message()},
    )


@receiver(user_logged_in, dispatch_uid="ops-audit-login")
def record_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit.record("auth.login", actor=user, target=user.get_username())


@receiver(user_logged_out, dispatch_uid="ops-audit-logout")
def record_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record("auth.logout", actor=user, target=user.get_username())


@receiver(user_login_failed, dispatch_uid="ops-audit-login-failed")
def record_login_failure(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    # Guesses against a locked-out login are not written one by one: the lockout is, once.
    if getattr(request, "axes_locked_out", False):
        return
    # Only the username: the password is never recorded.
    audit.record(
        "auth.login_failed",
        target=str(credentials.get("username", ""))[:150],
        result="failure",
    )


@receiver(user_locked_out, dispatch_uid="ops-audit-lockout")
def record_lockout(
    sender: Any, request: Any, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    # django-axes announces the lockout again on every guess made while it lasts; the guess
    # that reaches the limit is the one that starts it.
    failures = getattr(request, "axes_failures_since_start", None)
    credentials = getattr(request, "axes_credentials", None)
    if failures != get_failure_limit(request, credentials):
        return
    audit.record(
        "auth.locked_out",
        target=str(username or "")[:150],
        result="denied",
        details={"failures": failures},
        ip_address=ip_address,
    )
