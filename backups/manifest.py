"""The manifest JSON written beside each backup's artifacts, last: its presence marks the
backup complete in storage, and it is enough to restore without the console's database."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.files.base import ContentFile

from backups import storage
from backups.errors import BackupError

FORMAT = "ops-console-backup"
FILENAME = "manifest.json"


def write(folder: str, manifest: dict[str, Any]) -> str:
    body = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
    target = storage.backup_storage()
    name = f"{folder}/{FILENAME}"
    if target.exists(name):
        target.delete(name)
    target.save(name, ContentFile(body))
    return hashlib.sha256(body).hexdigest()


def read(folder: str, *, expect_sha256: str = "") -> dict[str, Any] | None:
    """The manifest in `folder`, or None when there is none (or it is not ours).

    With `expect_sha256` (the console's record of what was written), a manifest whose bytes
    differ is refused: whoever could change it in storage could point a restore at other data.
    """
    target = storage.backup_storage()
    name = f"{folder}/{FILENAME}"
    if not target.exists(name):
        return None
    with target.open(name, "rb") as fh:
        body = fh.read()
    if expect_sha256 and hashlib.sha256(body).hexdigest() != expect_sha256:
        raise BackupError(
            f"the manifest in {folder} does not match the console's record of it (SHA-256): "
            "it was changed after the backup was made; restore another backup and find out "
            "who can write to the backup storage"
        )
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def folders() -> list[str]:
    dirs, _ = storage.backup_storage().listdir("")
    return sorted(dirs)


def find(backup_id: int | None) -> dict[str, Any] | None:
    """A complete backup's manifest from storage alone (disaster recovery: no database rows).

    `None` finds the newest one.
    """
    for folder in reversed(folders()):
        parts = folder.split("-")
        if len(parts) < 3 or not parts[1].isdigit():
            continue
        if backup_id is not None and int(parts[1]) != backup_id:
            continue
        found = read(folder)
        if found is not None:
            return found
    return None
