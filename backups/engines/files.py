"""Files: a gzip-compressed tar of MEDIA_ROOT and OPS_BACKUP_PATHS, streamed to storage.

Each root is stored under a label ("media", "path1", ...); the manifest maps labels back to
absolute paths. Restore extracts every root into a staging directory beside it (each member
checked like tarfile's "data" filter refuses: no absolute paths, no `..`, no escaping links, no
devices; the filter itself is used too where the Python has it), then swaps directories.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings

from backups.errors import BackupError


def roots() -> dict[str, Path]:
    found: dict[str, Path] = {}
    # Django's default MEDIA_ROOT is "" (a project without uploads), not the working directory.
    media = Path(settings.MEDIA_ROOT) if settings.MEDIA_ROOT else None
    if media is not None and media.is_dir():
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


# tarfile's extraction filters arrived in 3.11.4 (PEP 706); Debian 12's Python is 3.11.2.
HAS_DATA_FILTER = hasattr(tarfile, "data_filter")


def check_member(member: tarfile.TarInfo, dest: Path) -> None:
    """Refuse a member that the 'data' filter would refuse, on any Python.

    No absolute names, nothing that lands outside `dest` (`..`, or through a symlink already
    extracted), no absolute or escaping link targets, no devices or fifos. The 'data' filter
    strips a leading "/" from names; we refuse those instead (our archives never hold them).
    """
    name = member.name
    if not name or name.startswith(("/", os.sep)) or os.path.isabs(name):
        raise UnsafeMember(f"{name!r} is an absolute path")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeMember(f"{name!r} is a device, fifo or other special file")
    root = os.path.realpath(dest)
    target = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([target, root]) != root:
        raise UnsafeMember(f"{name!r} would be written outside its root")
    if member.issym() or member.islnk():
        if os.path.isabs(member.linkname):
            raise UnsafeMember(f"{name!r} links to the absolute path {member.linkname!r}")
        base = os.path.join(root, os.path.dirname(name)) if member.issym() else root
        pointed = os.path.realpath(os.path.join(base, member.linkname))
        if os.path.commonpath([pointed, root]) != root:
            raise UnsafeMember(f"{name!r} links outside its root ({member.linkname!r})")


def _tame(member: tarfile.TarInfo) -> None:
    """What the 'data' filter changes, for Pythons without it: no owner from the archive, no
    setuid/setgid/sticky bits, no group/other write; files stay readable by their owner."""
    member.uid, member.gid = os.geteuid(), os.getegid()
    member.uname = member.gname = ""
    mode = member.mode & 0o755
    if member.isreg() or member.islnk():
        if not mode & 0o100:
            mode &= ~0o111
        mode |= 0o600
    elif member.isdir():
        mode |= 0o700
    member.mode = mode


def extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    check_member(member, dest)
    if HAS_DATA_FILTER:
        tar.extract(member, dest, filter="data")
    elif hasattr(tarfile, "fully_trusted_filter"):  # the check above stands in for the filter
        _tame(member)
        tar.extract(member, dest, filter="fully_trusted")
    else:
        _tame(member)
        tar.extract(member, dest)


class UnsafeMember(BackupError):  # noqa: N818 - reads as "the archive holds an unsafe member"
    def __init__(self, detail: str) -> None:
        super().__init__(f"the files archive cannot be extracted: {detail}")


@dataclass
class Staged:
    """Every root of a files archive, extracted beside its target and not yet swapped in."""

    targets: dict[str, Path]
    staging: dict[str, Path]
    counts: dict[str, int]
    replaced: list[str] = field(default_factory=list)
    kept: dict[str, Path] = field(default_factory=dict)

    def swap_in(self, before_each: Callable[[str, Path], None] | None = None) -> None:
        """Replace each root by its staged copy; the old trees stay aside (see `kept`) until
        finish() so a failure midway leaves them to recover from."""
        for label, root in self.targets.items():
            if before_each is not None:
                before_each(label, root)
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
            if root.exists():
                os.replace(root, old)  # a directory replaces the empty one mkdtemp made
                self.kept[label] = old
            else:
                old.rmdir()
            try:
                os.replace(self.staging[label], root)
            except BaseException:
                if label in self.kept:  # put the live tree back: this root is not replaced
                    os.replace(self.kept.pop(label), root)
                raise
            self.replaced.append(label)

    def finish(self) -> None:
        for old in self.kept.values():
            shutil.rmtree(old, ignore_errors=True)
        self.kept.clear()

    def discard(self) -> None:
        """Remove what was staged and not swapped in (the roots themselves are untouched)."""
        for label, stage in self.staging.items():
            if label not in self.replaced:
                shutil.rmtree(stage, ignore_errors=True)


def stage(path: Path, manifest: dict[str, Any]) -> Staged:
    """Extract every root of the archive at `path` into a new directory beside that root (same
    filesystem, so the swap is a rename). Nothing live is touched; on failure nothing is left."""
    targets = {
        label: Path(info["path"])
        for label, info in (manifest.get("files") or {}).get("roots", {}).items()
    }
    if not targets:
        raise BackupError(f"backup {manifest.get('id')} holds no files to restore")
    staged = Staged(targets=targets, staging={}, counts={label: 0 for label in targets})
    try:
        for label, root in targets.items():
            try:
                root.parent.mkdir(parents=True, exist_ok=True)
                staged.staging[label] = Path(
                    tempfile.mkdtemp(prefix=f".{root.name}.restore-", dir=root.parent)
                )
                if root.is_dir():  # the restored root keeps the live one's permissions
                    os.chmod(staged.staging[label], root.stat().st_mode & 0o7777)
            except OSError as exc:
                raise BackupError(
                    f"cannot stage the files of {root} beside it ({exc.strerror}: "
                    f"{exc.filename}): make {root.parent} a writable directory"
                ) from None
        with tarfile.open(path, mode="r|gz") as tar:
            for member in tar:
                label, _, rest = member.name.partition("/")
                if label not in staged.staging:
                    raise UnsafeMember(f"{member.name!r} is outside its roots")
                if not rest:
                    continue
                member.name = rest
                if member.islnk():
                    link_label, _, link_rest = member.linkname.partition("/")
                    if link_label != label:
                        raise UnsafeMember(f"{rest!r} links into another root")
                    member.linkname = link_rest
                extract_member(tar, member, staged.staging[label])
                if not member.isdir():
                    staged.counts[label] += 1
    except tarfile.TarError as exc:
        staged.discard()
        raise BackupError(f"the files archive cannot be extracted: {exc}") from None
    except BaseException:
        staged.discard()
        raise
    return staged
