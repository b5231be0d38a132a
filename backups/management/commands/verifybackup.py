import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import services
from backups.errors import BackupError
from backups.management.cli import TtyProgress, backup_row


class Command(BaseCommand):
    help = "Restore a backup into a scratch database, check it against its manifest, drop it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup", help="a backup id, or 'latest'")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        ref = options["backup"]
        if ref != "latest" and not ref.isdigit():
            raise CommandError(f"{ref!r} is not a backup id: give a number or 'latest'")
        progress = TtyProgress()
        try:
            backup = services.verify_backup(
                None if ref == "latest" else int(ref), progress=progress
            )
        except BackupError as exc:
            raise CommandError(f"verification did not run: {exc}") from None
        finally:
            progress.done()
        if options["json"]:
            self.stdout.write(json.dumps(backup_row(backup)))
        if backup.verification_failed:
            raise CommandError(
                f"backup {backup.pk} FAILED verification: {backup.verify_error}; do not rely on "
                "it, take a new backup (`manage.py backup`)"
            )
        if not options["json"]:
            self.stdout.write(
                f"backup {backup.pk} verified: restored and checked in "
                f"{backup.restore_seconds or 0:.1f} s"
            )
