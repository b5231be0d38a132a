import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import services
from backups.errors import BackupError
from backups.management.cli import TtyProgress, backup_row, human_size
from opsconsole import audit


class Command(BaseCommand):
    help = "Back up the database and files (MEDIA_ROOT, OPS_BACKUP_PATHS) to BACKUP_STORAGE_URL."

    def add_arguments(self, parser: CommandParser) -> None:
        only = parser.add_mutually_exclusive_group()
        only.add_argument("--db-only", action="store_true", help="only the database")
        only.add_argument("--files-only", action="store_true", help="only the files")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        kind = "db" if options["db_only"] else "files" if options["files_only"] else "full"
        progress = TtyProgress()
        try:
            backup = services.create_backup(kind, actor=audit.cli_actor(), progress=progress)
        except BackupError as exc:
            progress.done()
            raise CommandError(f"backup failed: {exc}") from None
        progress.done()
        if options["json"]:
            self.stdout.write(json.dumps(backup_row(backup)))
            return
        self.stdout.write(
            f"backup {backup.pk} completed: {kind}, {human_size(backup.size)} in "
            f"{backup.duration or 0:.1f} s, stored in {backup.storage}/{backup.name}"
        )
