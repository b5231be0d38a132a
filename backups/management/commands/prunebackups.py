import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups.errors import BackupError
from backups.management.cli import human_size
from backups.retention import apply_retention
from opsconsole import audit


class Command(BaseCommand):
    help = "Apply the retention policy (GFS + size cap); --dry-run lists what would go."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only list")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            doomed = apply_retention(dry_run=options["dry_run"])
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        if not options["dry_run"]:
            audit.record("backup.prune", actor=audit.cli_actor(), target=f"{len(doomed)} backups")
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    [
                        {
                            "id": b.pk,
                            "name": b.name,
                            "size": b.size,
                            "started_at": b.started_at.isoformat(),
                        }
                        for b in doomed
                    ]
                )
            )
            return
        for b in doomed:
            self.stdout.write(
                f"{b.pk:>6}  {b.kind:<6} {b.started_at:%Y-%m-%d %H:%M}  "
                f"{human_size(b.size):>10}  {b.name}"
            )
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(
            f"retention {verb} {len(doomed)} backups ({human_size(sum(b.size for b in doomed))})"
        )
