"""`manage.py down`: put every web process into maintenance mode."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from maintenance.services import MAX_RETRY_AFTER, InvalidRequest, bring_down
from opsconsole import audit


class Command(BaseCommand):
    help = (
        "Turn maintenance mode on: requests get 503 with Retry-After, except the admin, "
        "allowed IPs and holders of the bypass cookie (visit /<secret>)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--message", default="", help="shown on the maintenance page")
        parser.add_argument(
            "--retry", type=int, default=60, help=f"Retry-After seconds (1..{MAX_RETRY_AFTER})"
        )
        secret = parser.add_mutually_exclusive_group()
        secret.add_argument(
            "--secret",
            help="bypass secret: visiting /<secret> sets a cookie valid 12 hours "
            "(argv is visible to other users of the host; prefer --with-secret)",
        )
        secret.add_argument(
            "--with-secret",
            action="store_true",
            help="generate a bypass secret and print it once",
        )
        parser.add_argument(
            "--allow",
            action="append",
            default=[],
            metavar="IP",
            help="address or network that is still served (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        secret = options["secret"]
        if options["with_secret"]:
            secret = secrets.token_urlsafe(24)
        try:
            bring_down(
                message=options["message"],
                retry_after=options["retry"],
                secret=secret,
                allowed_ips=options["allow"],
                actor=audit.cli_actor(),
            )
        except InvalidRequest as exc:
            raise CommandError(f"{exc}; nothing changed") from None
        if options["with_secret"]:
            self.stdout.write(f"bypass: visit /{secret} to get a 12-hour bypass cookie")
        self.stdout.write(
            self.style.SUCCESS(f"Maintenance mode is on (Retry-After {options['retry']} s).")
        )
