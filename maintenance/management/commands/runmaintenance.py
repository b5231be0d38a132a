"""`manage.py runmaintenance daily|weekly [--json]`: run the upkeep now, by hand."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from maintenance import upkeep
from opsconsole import audit


class Command(BaseCommand):
    help = "Run the daily or weekly maintenance now (the same steps Celery beat runs)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(upkeep.STEPS), help="daily or weekly")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument(
            "--step",
            action="append",
            default=None,
            metavar="NAME",
            help="run only this step (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kind = options["kind"]
        known = [name for name, _ in upkeep.STEPS[kind]]
        only = options["step"]
        if only:
            unknown = [s for s in only if s not in known]
            if unknown:
                raise CommandError(
                    f"unknown {kind} step {unknown[0]!r}: use one of {', '.join(known)}"
                )

        def show(step: upkeep.StepResult) -> None:
            # Progress: one line per step as it finishes.
            line = f"{step.step:<22} {step.status:<8} {step.duration_ms:>7} ms  "
            self.stdout.write(line + json.dumps(step.counts, default=str)[:200])

        result = upkeep.run(
            kind, actor=audit.cli_actor(), only=only, on_step=None if options["json"] else show
        )
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), default=str, indent=2))
        if result.status == "skipped":
            raise CommandError(f"{result.reason}; nothing done, try again when it finishes")
        failed = [s.step for s in result.steps if s.status == "failed"]
        if failed:
            first = next(s for s in result.steps if s.status == "failed")
            raise CommandError(
                f"{kind} maintenance finished with {len(failed)} failed step(s): "
                f"{', '.join(failed)} ({first.error.splitlines()[0]}); see MaintenanceRun "
                f"records in the admin"
            )
        if not options["json"]:
            self.stdout.write(
                self.style.SUCCESS(f"{kind} maintenance done: {len(result.steps)} step(s).")
            )
