"""Finding a backup and getting its artifacts: from the console's rows, or from the manifests
in storage when the console's own database is missing or empty (disaster recovery).

Verification and restore both start here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import DatabaseError, connection

from backups import manifest as manifests
from backups.crypto import EncryptionError
from backups.errors import BackupError
from backups.models import Backup
from backups.pipeline import ChecksumMismatch, Progress, fetch


def resolve(ref: int | str | None, *, need: str = "db") -> tuple[Backup | None, dict[str, Any]]:
    """The backup row (if the console knows it) and its manifest, for an id or "latest"."""
    ready = console_ready()
    if ref is None or str(ref) == "latest":
        row = Backup.objects.latest_restorable(need) if ready else None
        if row is None:
            found = manifests.find(None)
            if found is None:
                raise BackupError("there is no completed backup: run `manage.py backup` first")
            return None, found
    else:
        try:
            backup_id = int(ref)
        except (TypeError, ValueError):
            raise BackupError(f"{ref!r} is not a backup id: give a number or 'latest'") from None
        row = Backup.objects.filter(pk=backup_id).first() if ready else None
        if row is None:
            found = manifests.find(backup_id)
            if found is None:
                raise BackupError(
                    f"there is no backup {backup_id}: see `manage.py listbackups` for the ids"
                )
            return None, found
        if not row.is_restorable:
            raise BackupError(
                f"backup {row.pk} is {row.status} and cannot be used: pick a completed one "
                "(`manage.py listbackups`)"
            )
    document = manifests.read(row.name, expect_sha256=row.manifest_sha256)
    if document is None:
        raise BackupError(
            f"the manifest of backup {row.pk} is missing from {row.storage}: the backup is "
            "incomplete in storage; pick another one"
        )
    # The console's record is the authority on checksums; the manifest only travels along.
    document["artifacts"] = row.artifacts
    return row, document


def console_ready() -> bool:
    """False when the console's own database is missing or empty (disaster recovery): then
    backups are found from their manifests in storage, and there is no maintenance row to set."""
    try:
        Backup.objects.exists()
    except DatabaseError:
        connection.close()
        return False
    return True


def artifact(document: dict[str, Any], role: str) -> dict[str, Any] | None:
    """The manifest's artifact with `role` ("db" or "files"), if the backup has one."""
    return next((a for a in document.get("artifacts", []) if a.get("role") == role), None)


def download(artifact: dict[str, Any], dest: Path, progress: Progress | None, **kw: Any) -> Path:
    """`pipeline.fetch`, with a damaged archive or a wrong key reported as a BackupError."""
    try:
        return fetch(artifact, dest, progress=progress, **kw)
    except (ChecksumMismatch, EncryptionError) as exc:
        raise BackupError(str(exc)) from None
