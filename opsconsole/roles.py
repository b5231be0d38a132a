"""The console's three roles, as Django groups: one table of role -> permission rules.

- viewer: sees every console page (the view permissions of the console's apps). Secrets stay
  hidden: the pages show them only to users who may change the object, or to superusers.
- operator: a viewer who also runs the operations (health check now, back up, verify,
  maintenance down/up, silence, resolve an issue, retry a task).
- administrator: every permission of the console's apps: changes configuration, and is the
  only role that may restore a backup (a restore replaces the live database and files).

User accounts, groups and second-factor devices (auth, django_otp, axes) are not in any role:
those stay with superusers.

The groups are created by a data migration (opsconsole 0002) and kept in sync after every
`migrate` by a post_migrate receiver, so permissions brought by apps added later join their
roles. Syncing only adds: a permission granted to a group by hand survives a deploy. A rule
naming a permission that does not exist (an app not installed yet) is skipped.
"""

from __future__ import annotations

import fnmatch
from typing import Any

VIEWER = "viewer"
OPERATOR = "operator"
ADMINISTRATOR = "administrator"

# The apps whose permissions the roles grant.
CONSOLE_APPS = (
    "opsconsole",
    "health",
    "metrics",
    "errors",
    "backups",
    "maintenance",
    "alerts",
    "queues",
    "django_celery_beat",
    "django_celery_results",
)

_VIEW = tuple(f"{app}.view_*" for app in CONSOLE_APPS)
OPERATIONS = (
    "health.run_check",
    "backups.operate_backup",
    "maintenance.change_maintenancestate",  # maintenance down and up
    "alerts.add_silence",
    "errors.resolve_issue",
    "queues.retry_task",
)

# role -> "app_label.codename" patterns (fnmatch) of the permissions it holds.
ROLES: dict[str, tuple[str, ...]] = {
    VIEWER: _VIEW,
    OPERATOR: (*_VIEW, *OPERATIONS),
    ADMINISTRATOR: tuple(f"{app}.*" for app in CONSOLE_APPS),
}


def matches(role: str, app_label: str, codename: str) -> bool:
    name = f"{app_label}.{codename}"
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in ROLES[role])


def sync_roles(
    group_model: Any, permission_model: Any, *, using: str = "default"
) -> dict[str, int]:
    """Create the three groups if missing and grant each the permissions its rules name.

    Takes the model classes so the data migration can pass its historical ones. Returns
    {role: permissions added}. Idempotent.
    """
    permissions = list(
        permission_model.objects.using(using)
        .filter(content_type__app_label__in=CONSOLE_APPS)
        .values_list("pk", "content_type__app_label", "codename")
    )
    added: dict[str, int] = {}
    for role in ROLES:
        group, _ = group_model.objects.using(using).get_or_create(name=role)
        wanted = {pk for pk, app, codename in permissions if matches(role, app, codename)}
        held = set(group.permissions.values_list("pk", flat=True))
        missing = wanted - held
        if missing:
            group.permissions.add(*missing)
        added[role] = len(missing)
    return added


def sync_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver: runs once per `migrate`, after the last app's permissions exist."""
    from django.apps import apps as global_apps
    from django.contrib.auth.models import Group, Permission

    # post_migrate is sent once per app with models, in INSTALLED_APPS order.
    configs = [c for c in global_apps.get_app_configs() if c.models_module is not None]
    if not configs or sender is not configs[-1]:
        return
    sync_roles(Group, Permission, using=using)
