"""`manage.py grant <username> <role>`: give a user one of the console's roles.

The user becomes staff (the console is the admin) and joins the role's group; `--only` first
takes them out of the other two roles. Exit 2 with one line for an unknown user or role.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError, CommandParser

from opsconsole import audit
from opsconsole.roles import ROLES, sync_roles


class Command(BaseCommand):
    help = "Give a user a console role (viewer, operator or administrator)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", help=", ".join(ROLES))
        parser.add_argument(
            "--only", action="store_true", help="remove the user from the other roles"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        role = options["role"]
        if role not in ROLES:
            raise CommandError(f"unknown role {role!r}: choose {', '.join(ROLES)}", returncode=2)
        model = get_user_model()
        user = model._default_manager.filter(**{model.USERNAME_FIELD: options["username"]}).first()
        if user is None:
            raise CommandError(
                f"there is no user {options['username']!r}: create one with createsuperuser "
                "or in the console",
                returncode=2,
            )
        sync_roles(Group, Permission)
        if options["only"]:
            user.groups.remove(*Group.objects.filter(name__in=[r for r in ROLES if r != role]))
        user.groups.add(Group.objects.get(name=role))
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        audit.record(
            "auth.grant_role",
            actor=audit.cli_actor(),
            target=f"user {user.get_username()}",
            details={"role": role, "only": options["only"]},
        )
        self.stdout.write(f"{user.get_username()} is now staff with the {role} role")
