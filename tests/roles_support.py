"""Users in the console's roles: staff members of the groups the roles migration creates."""

from __future__ import annotations

from django.contrib.auth.models import Group, User

PASSWORDS = {"viewer": "vera-password", "operator": "oscar-password", "administrator": "ada-pw"}
NAMES = {"viewer": "vera", "operator": "oscar", "administrator": "ada"}


def member_of(role: str) -> User:
    """A staff user (vera, oscar or ada) whose only permissions come from `role`'s group."""
    user = User.objects.create_user(
        NAMES[role], f"{NAMES[role]}@example.com", PASSWORDS[role], is_staff=True
    )
    user.groups.add(Group.objects.get(name=role))
    return user
