"""Hostile members in a files archive are refused on every supported Python: with tarfile's
'data' filter where it exists (3.11.4+) and with our own equivalent check where it does not
(Debian 12's 3.11.2). Each case runs both ways on a Python that has the filter."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backups import services
from backups.engines import files as files_engine
from backups.errors import BackupError
from backups.models import Backup
from backups.restore import restore_backup
from tests.backups_support import read_tree, write_tree

WAYS = [
    pytest.param(True, id="tarfile-data-filter"),
    pytest.param(False, id="own-check"),
]


@pytest.fixture(params=WAYS)
def extraction(request: Any, monkeypatch: Any) -> bool:
    native: bool = request.param
    if native and not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile 'data' filter (3.11.4+)")
    # Without the filter, the check of our own is all there is (as on Python 3.11.0-3.11.3).
    monkeypatch.setattr(files_engine, "HAS_DATA_FILTER", native)
    return native


def _swap_archive(store: Path, backup: Backup, members: list[tarfile.TarInfo]) -> None:
    """Put a crafted archive where the backup's files archive was, with matching checksums (as
    an attacker with write access to storage and the console's record would)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"evil") if info.isreg() else None)
    data = buf.getvalue()
    art = dict(backup.artifact("files") or {})
    (store / art["name"]).write_bytes(data)
    art.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    Backup.objects.filter(pk=backup.pk).update(artifacts=[art])


def _reg(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 4
    return info


def _sym(name: str, to: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, to
    return info


def _hard(name: str, to: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, to
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


HOSTILE: dict[str, tuple[Callable[[Path], list[tarfile.TarInfo]], str]] = {
    "absolute-path": (lambda tmp: [_reg(f"media/{tmp}/escaped.txt")], "absolute path"),
    "dot-dot": (lambda tmp: [_reg("media/../../escaped.txt")], "outside its root"),
    "dot-dot-inside-a-folder": (
        lambda tmp: [_reg("media/docs/../../../escaped.txt")],
        "outside its root",
    ),
    "symlink-escaping": (lambda tmp: [_sym("media/link", "../../..")], "links outside"),
    "absolute-symlink": (lambda tmp: [_sym("media/link", str(tmp))], "absolute path"),
    "file-through-a-symlink": (
        lambda tmp: [_sym("media/link", "."), _reg("media/link/../../escaped.txt")],
        "outside its root",
    ),
    "hardlink-to-another-root": (lambda tmp: [_hard("media/x", "path1/y")], "another root"),
    "device": (lambda tmp: [_device("media/null")], "device"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_it_refuses_a_hostile_member_and_leaves_the_roots_alone(
    case: str, extraction: bool, backup_dirs: dict[str, Path], db: Any
) -> None:
    write_tree(backup_dirs["media"], {"a.txt": b"a"})
    write_tree(backup_dirs["extra"], {"b.txt": b"b"})
    backup = services.create_backup("files")
    build, reason = HOSTILE[case]
    _swap_archive(backup_dirs["store"], backup, build(backup_dirs["tmp"]))
    with pytest.raises(BackupError, match=f"cannot be extracted: .*{reason}"):
        restore_backup(backup.pk, database=False, files=True)
    assert read_tree(backup_dirs["media"]) == {"a.txt": b"a"}
    assert read_tree(backup_dirs["extra"]) == {"b.txt": b"b"}
    assert not (backup_dirs["tmp"] / "escaped.txt").exists()
    assert not list(backup_dirs["tmp"].glob("**/escaped.txt"))
    leftovers = [p.name for p in backup_dirs["tmp"].iterdir() if ".restore-" in p.name]
    assert leftovers == [], "staging directories are removed"


def test_it_restores_links_and_modes_that_stay_inside_the_root(
    extraction: bool, backup_dirs: dict[str, Path], db: Any
) -> None:
    write_tree(backup_dirs["media"], {"docs/report.txt": b"report", "run.sh": b"#!/bin/sh\n"})
    (backup_dirs["media"] / "run.sh").chmod(0o4777)  # setuid and world-writable
    (backup_dirs["media"] / "latest").symlink_to("docs/report.txt")
    backup = services.create_backup("files")
    (backup_dirs["media"] / "latest").unlink()
    (backup_dirs["media"] / "run.sh").unlink()
    result = restore_backup(backup.pk, database=False, files=True)
    assert result["files"]["media"] == 3
    link = backup_dirs["media"] / "latest"
    assert link.is_symlink() and link.read_bytes() == b"report"
    # Like the 'data' filter: no setuid bit, no group/other write.
    assert (backup_dirs["media"] / "run.sh").stat().st_mode & 0o7777 == 0o755
