"""`manage.py up`: leave maintenance mode."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from maintenance import state
from maintenance.services import bring_up
from opsconsole import audit


class Command(BaseCommand):
    help = "Turn maintenance mode off: every web process serves requests again."

    def handle(self, *args: Any, **options: Any) -> None:
        was_down = state.current(fresh=True).is_down
        bring_up(actor=audit.cli_actor())
        if was_down:
            self.stdout.write(self.style.SUCCESS("Maintenance mode is off: serving again."))
        else:
            self.stdout.write("Maintenance mode was already off.")
