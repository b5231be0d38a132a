"""`manage.py healthcheck [--json] [--component NAME]`: run the checks in this process.

Exit 0 for pass or warn, 1 for fail, 2 for bad usage (an unknown component).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from health import registry, services
from health.runner import FAIL
from health.views import render_report


class Command(BaseCommand):
    help = "Run the health checks in-process. Exit 0 for pass or warn, 1 for fail."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print application/health+json.")
        parser.add_argument(
            "--component",
            default="full",
            help="One component, or 'ready'; default: every check.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scope = options["component"]
        try:
            report = services.get_report(scope, cached=False)
        except services.UnknownComponent:
            known = ", ".join(["ready", *registry.all_names()])
            raise CommandError(
                f"unknown component {scope!r}: choose one of {known}", returncode=2
            ) from None
        if options["json"]:
            self.stdout.write(
                json.dumps(render_report(report, details=True), default=str, indent=2)
            )
        else:
            for outcome in report.outcomes:
                figures = ", ".join(
                    f"{o['measurement']}={o['observedValue']} {o.get('observedUnit', '')}".strip()
                    for o in outcome.observations
                )
                line = f"{outcome.status:4}  {outcome.component:12} {outcome.duration_ms:8.1f} ms"
                if outcome.output:
                    line += f"  {outcome.output}"
                elif figures:
                    line += f"  {figures}"
                self.stdout.write(line)
            failing = [o.component for o in report.outcomes if o.status == FAIL]
            summary = f"health: {report.status} ({len(report.outcomes)} components"
            summary += f", failing: {', '.join(failing)})" if failing else ")"
            self.stdout.write(summary)
        if report.status == FAIL:
            raise SystemExit(1)
