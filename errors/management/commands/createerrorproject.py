"""`manage.py createerrorproject NAME`: create an error project and print its DSN."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from errors import services
from opsconsole import audit


class Command(BaseCommand):
    help = "Create an error project and print the DSN to give to its sentry-sdk."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="project name, e.g. 'billing-api'")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            project, key = services.create_project(options["name"], actor=audit.cli_actor())
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        dsn = services.dsn_for(key)
        if options["json"]:
            data = {"project_id": project.pk, "name": project.name, "dsn": dsn}
            self.stdout.write(json.dumps(data))
        else:
            self.stdout.write(dsn)
