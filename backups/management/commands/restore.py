import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from backups.errors import BackupError, PartialRestore
from backups.management.cli import TtyProgress
from backups.restore import restore_backup
from opsconsole import audit


class Command(BaseCommand):
    help = (
        "Restore a backup's database (into a fresh database, swapped in only after it checks "
        "out) and, with --files, its files."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup", help="a backup id, or 'latest'")
        parser.add_argument("--files", action="store_true", help="also restore the files")
        parser.add_argument("--files-only", action="store_true", help="restore only the files")
        parser.add_argument(
            "--target-db",
            metavar="NAME",
            help="restore into this database (PostgreSQL name or SQLite path); default: live",
        )
        parser.add_argument(
            "--keep-old", action="store_true", help="keep the replaced PostgreSQL database"
        )
        parser.add_argument(
            "--trust-storage-paths",
            action="store_true",
            help="restore files although the console has no record of the backup (its database "
            "is gone): the paths then come from the manifest in storage, shown when refused",
        )
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        ref = options["backup"]
        if ref != "latest" and not ref.isdigit():
            raise CommandError(f"{ref!r} is not a backup id: give a number or 'latest'")
        database = not options["files_only"]
        files = options["files"] or options["files_only"]
        target = options["target_db"] or str(connection.settings_dict["NAME"])
        if not options["yes"]:
            what = f"the database {target}" if database else ""
            if files:
                what += (" and " if what else "") + "the backed-up files"
            if not sys.stdin.isatty():
                raise CommandError(f"this replaces {what}: run again with --yes to confirm")
            answer = input(f"Restore backup {ref} over {what}? Type 'yes' to go on: ")
            if answer.strip().lower() != "yes":
                raise CommandError("restore cancelled: nothing was changed")
        progress = TtyProgress()
        try:
            result = restore_backup(
                ref,
                target_db=options["target_db"],
                database=database,
                files=files,
                keep_old=options["keep_old"],
                trust_storage_paths=options["trust_storage_paths"],
                actor=audit.cli_actor(),
                progress=progress,
            )
        except PartialRestore as exc:
            progress.done()
            raise CommandError(f"restore failed part way: {exc}") from None
        except BackupError as exc:
            progress.done()
            raise CommandError(f"restore failed, nothing was changed: {exc}") from None
        progress.done()
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        restored = []
        if "row_counts" in result:
            restored.append(f"database {result['target']} ({len(result['row_counts'])} tables)")
        if "files" in result:
            restored.append(f"{sum(result['files'].values())} files")
        self.stdout.write(
            f"restored backup {result['backup_id']}: {' and '.join(restored)} in "
            f"{result['seconds']:.1f} s"
        )
