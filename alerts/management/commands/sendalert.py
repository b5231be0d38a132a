"""manage.py sendalert --severity S --key K --message M [--resolve]: alerts from scripts."""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from alerts import services
from alerts.models import Alert, Severity
from opsconsole import audit

KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-/@]+)*$")


class Command(BaseCommand):
    help = "Fire (or resolve) an alert from a script; channels are told like any other alert."

    def add_arguments(self, parser: CommandParser) -> None:
        # Validated below rather than by argparse, so a mistake is one clear line.
        parser.add_argument("--severity", default="", help="info, warning or critical")
        parser.add_argument("--key", default="", help='alert key, e.g. "deploy:web"')
        parser.add_argument("--message", default="", help="what happened")
        parser.add_argument("--resolve", action="store_true", help="resolve the key instead")

    def handle(self, *args: Any, **options: Any) -> None:
        key = options["key"].strip()
        if not key:
            raise CommandError('--key is required, e.g. --key "deploy:web"')
        if len(key) > 255 or not KEY_RE.match(key):
            raise CommandError(
                f"--key {key!r} is not a key: use words joined by colons, e.g. deploy:web"
            )
        actor = audit.cli_actor()
        if options["resolve"]:
            alert = services.resolve(key)
            audit.record("alerts.sendalert.resolve", actor=actor, target=key)
            if alert is None:
                self.stdout.write(f"{key} was not firing; nothing to resolve.")
            else:
                self.stdout.write(f"Resolved {key}.")
            return
        try:
            severity = Severity.parse(options["severity"] or "")
        except ValueError as exc:
            raise CommandError(f"--severity: {exc}") from None
        message = options["message"].strip()
        if not message:
            raise CommandError("--message is required: say what happened")
        alert = services.fire(
            key,
            severity=severity,
            summary=message,
            expires_in=services.repeat_interval(),
            details={"source": "sendalert"},
        ) or Alert.objects.get(key=key, state=Alert.State.FIRING)
        audit.record(
            "alerts.sendalert",
            actor=actor,
            target=key,
            details={"severity": severity.label, "alert": alert.pk},
        )
        state = f"suppressed ({alert.suppressed_by})" if alert.suppressed_by else "recorded"
        self.stdout.write(
            f"Alert {key} ({severity.label}) {state}; occurrence {alert.occurrences}."
        )
