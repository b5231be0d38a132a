"""Recording operational actions in the SystemLog audit trail."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from opsconsole.context import current_client_ip, current_request_id
from opsconsole.models import SystemLog

logger = logging.getLogger(__name__)


def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def record(
    action: str,
    *,
    actor: Any = None,
    target: str = "",
    result: str = SystemLog.Result.SUCCESS,
    details: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> SystemLog:
    """Append one audit record. `actor` is a user, a name such as "cli:root", or None (system)."""
    user = actor if getattr(actor, "pk", None) is not None else None
    if user is not None:
        actor_name = user.get_username()
    elif isinstance(actor, str) and actor:
        actor_name = actor
    else:
        actor_name = "system"
    entry = SystemLog.objects.create(
        actor=user,
        actor_name=actor_name[:150],
        action=action[:100],
        target=str(target)[:255],
        result=result,
        details=details or {},
        ip_address=_valid_ip(ip_address or current_client_ip()),
        request_id=(current_request_id() or "")[:128],
    )
    logger.info(
        "audit %s %s %s",
        action,
        target,
        result,
        extra={"audit_actor": actor_name, "audit_action": action},
    )
    return entry


def cli_actor() -> str:
    """The name recorded for a management command run from a shell."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no passwd entry in some containers
        return "cli"
