import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import manifest
from backups.management.cli import backup_row, human_size
from backups.models import Backup


class Command(BaseCommand):
    help = "List backups, newest first; only completed/verified ones are restorable."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument(
            "--storage",
            action="store_true",
            help="list complete backups found in storage (when the database is lost)",
        )
        parser.add_argument("--limit", type=int, default=50, help="at most this many (50)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] < 1:
            options["limit"] = 50
        if options["storage"]:
            try:
                found = [m for m in (manifest.read(f) for f in reversed(manifest.folders())) if m]
            except Exception as exc:  # storage unreachable or misconfigured: say so, briefly
                raise CommandError(
                    f"cannot read the backup storage: {exc}; check BACKUP_STORAGE_URL and AWS_*"
                ) from None
            found = found[: options["limit"]]
            if options["json"]:
                self.stdout.write(json.dumps(found))
                return
            for doc in found:
                self.stdout.write(
                    f"{doc['id']:>6}  {doc['kind']:<6} {doc['started_at'][:19]}  "
                    f"{human_size(doc['size']):>10}  {doc['engine']}  {doc['name']}"
                )
            self.stdout.write(f"{len(found)} complete backups in storage")
            return
        rows = list(Backup.objects.all()[: options["limit"]])
        if options["json"]:
            self.stdout.write(json.dumps([backup_row(b) for b in rows]))
            return
        for b in rows:
            verified = (
                "verify FAILED"
                if b.verification_failed
                else (f"verified {b.verified_at:%Y-%m-%d}" if b.verified_at else "")
            )
            self.stdout.write(
                f"{b.pk:>6}  {b.kind:<6} {b.status:<10} {b.started_at:%Y-%m-%d %H:%M:%S}  "
                f"{human_size(b.size):>10}  {'restorable' if b.is_restorable else '-':<10} "
                f"{verified}"
            )
        restorable = sum(1 for b in rows if b.is_restorable)
        self.stdout.write(f"{len(rows)} backups, {restorable} restorable")
