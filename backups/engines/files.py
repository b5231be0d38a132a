"""Files: a gzip-compressed tar of MEDIA_ROOT and OPS_BACKUP_PATHS, streamed to storage.

Each root is stored under a label ("media", "path1", ...); the manifest maps labels back to
absolute paths. Restore extracts into a staging directory beside each root (with tarfile's
"data" filter: no absolute paths, no escaping links, no devices), then swaps directories.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings

from backups.errors import BackupError


def roots() -> dict[str, Path]:
    found: dict[str, Path] = {}
    media = Path(settings.MEDIA_ROOT)
    if media.is_dir():
        found["media"] = media.resolve()
    for index, raw in enumerate(settings.OPS_BACKUP_PATHS, start=1):
        path = Path(raw)
        if not path.is_dir():
            raise BackupError(
                f"OPS_BACKUP_PATHS names {raw}, which is not a directory: fix the setting"
            )
        found[f"path{index}"] = path.resolve()
    return found


def archive(out: BinaryIO) -> dict[str, Any]:
    """Write the tar.gz of every root to `out` (a write-only stream)."""
    summary: dict[str, Any] = {"roots": {}, "files": 0, "bytes": 0}
    with (
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for label, root in roots().items():
            files = 0
            for folder, dirs, names in os.walk(root):
                dirs.sort()
                base = Path(folder)
                rel = base.relative_to(root)
                tar.add(base, arcname=str(Path(label) / rel), recursive=False)
                for name in sorted(names):
                    path = base / name
                    info = tar.gettarinfo(path, arcname=str(Path(label) / rel / name))
                    if info.isreg():
                        with open(path, "rb") as fh:
                            tar.addfile(info, fh)
                        summary["bytes"] += info.size
                    elif info.issym():
                        tar.addfile(info)
                    else:
                        continue  # sockets, fifos and devices are not backed up
                    files += 1
            summary["roots"][label] = {"path": str(root), "files": files}
            summary["files"] += files
    return summary


def count_members(path: Path) -> int:
    files = 0
    with tarfile.open(path, mode="r|gz") as tar:
        for member in tar:
            if not member.isdir():
                files += 1
    return files


def restore(path: Path, manifest: dict[str, Any]) -> dict[str, int]:
    """Extract the archive at `path` over the roots listed in the manifest."""
    targets = {
        label: Path(info["path"])
        for label, info in (manifest.get("files") or {}).get("roots", {}).items()
    }
    if not targets:
        raise BackupError(f"backup {manifest.get('id')} holds no files to restore")
    stamp = f"restore-{int(time.time() * 1000)}"
    staging = {label: root.parent / f".{root.name}.{stamp}" for label, root in targets.items()}
    restored = {label: 0 for label in targets}
    try:
        for stage in staging.values():
            stage.mkdir(parents=True, mode=0o700)
        with tarfile.open(path, mode="r|gz") as tar:
            for member in tar:
                label, _, rest = member.name.partition("/")
                if label not in staging:
                    raise BackupError(f"the archive holds {member.name!r}, outside its roots")
                if not rest:
                    continue
                member.name = rest
                tar.extract(member, staging[label], filter="data")
                if not member.isdir():
                    restored[label] += 1
        for label, root in targets.items():
            old = root.parent / f".{root.name}.old-{stamp}"
            if root.exists():
                os.replace(root, old)
            os.replace(staging[label], root)
            shutil.rmtree(old, ignore_errors=True)
    except tarfile.TarError as exc:
        raise BackupError(f"the files archive cannot be extracted: {exc}") from None
    finally:
        for stage in staging.values():
            shutil.rmtree(stage, ignore_errors=True)
    return restored
