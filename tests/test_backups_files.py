"""File backups (MEDIA_ROOT + OPS_BACKUP_PATHS) and encryption at rest."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from backups import crypto, services
from backups.errors import BackupError
from backups.models import Backup
from backups.restore import restore_backup
from tests.backups_support import read_tree, write_tree

FILES = {
    "avatars/alice.png": b"\x89PNG" + os.urandom(2000),
    "docs/report.txt": b"quarterly report\n" * 100,
    "empty.txt": b"",
}


def test_it_backs_up_and_restores_media_and_extra_paths(
    backup_dirs: dict[str, Path], db: Any
) -> None:
    write_tree(backup_dirs["media"], FILES)
    write_tree(backup_dirs["extra"], {"config/app.ini": b"[app]\nname=ops\n"})
    media, extra = read_tree(backup_dirs["media"]), read_tree(backup_dirs["extra"])
    backup = services.create_backup("files")
    assert backup.status == Backup.Status.COMPLETED
    art = backup.artifact("files")
    assert art and art["format"] == "tar_gz" and len(art["sha256"]) == 64
    (backup_dirs["media"] / "docs/report.txt").write_text("overwritten")
    (backup_dirs["media"] / "avatars/alice.png").unlink()
    (backup_dirs["media"] / "stray.tmp").write_text("created after the backup")
    (backup_dirs["extra"] / "config/app.ini").unlink()
    result = restore_backup(backup.pk, database=False, files=True)
    assert read_tree(backup_dirs["media"]) == media
    assert read_tree(backup_dirs["extra"]) == extra
    assert result["files"] == {"media": 3, "path1": 1}
    assert not [p for p in backup_dirs["tmp"].iterdir() if ".restore-" in p.name]


def test_it_refuses_a_files_archive_that_escapes_its_roots(
    backup_dirs: dict[str, Path], db: Any
) -> None:
    write_tree(backup_dirs["media"], {"a.txt": b"a"})
    backup = services.create_backup("files")
    # Replace the archive by one with a path traversal, keeping the checksum consistent.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("media/../../escaped.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    data = buf.getvalue()
    art = dict(backup.artifact("files") or {})
    (backup_dirs["store"] / art["name"]).write_bytes(data)
    import hashlib

    art.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    Backup.objects.filter(pk=backup.pk).update(artifacts=[art])
    with pytest.raises(BackupError, match="cannot be extracted"):
        restore_backup(backup.pk, database=False, files=True)
    assert not (backup_dirs["tmp"] / "escaped.txt").exists()
    assert read_tree(backup_dirs["media"]) == {"a.txt": b"a"}


def test_an_encrypted_backup_hides_the_data_and_restores_with_the_key(
    backup_dirs: dict[str, Path], db: Any, settings: Any
) -> None:
    settings.OPS_BACKUP_ENCRYPTION_KEY = "correct horse battery staple"
    marker = b"PLAINTEXT-MARKER-" * 1000
    write_tree(backup_dirs["media"], {"secret.txt": marker})
    backup = services.create_backup("files")
    assert backup.encrypted
    stored = (backup_dirs["store"] / backup.artifact("files")["name"]).read_bytes()  # type: ignore[index]
    assert stored.startswith(crypto.MAGIC)
    assert b"PLAINTEXT-MARKER" not in stored
    (backup_dirs["media"] / "secret.txt").unlink()
    restore_backup(backup.pk, database=False, files=True)
    assert (backup_dirs["media"] / "secret.txt").read_bytes() == marker


def test_a_wrong_or_missing_key_is_a_clear_error(
    backup_dirs: dict[str, Path], db: Any, settings: Any
) -> None:
    settings.OPS_BACKUP_ENCRYPTION_KEY = "the right key"
    write_tree(backup_dirs["media"], {"a.txt": b"a"})
    backup = services.create_backup("files")
    settings.OPS_BACKUP_ENCRYPTION_KEY = "a wrong key"
    with pytest.raises(BackupError, match="wrong encryption key"):
        restore_backup(backup.pk, database=False, files=True)
    settings.OPS_BACKUP_ENCRYPTION_KEY = ""
    with pytest.raises(BackupError, match="set OPS_BACKUP_ENCRYPTION_KEY"):
        restore_backup(backup.pk, database=False, files=True)
    assert read_tree(backup_dirs["media"]) == {"a.txt": b"a"}


def _seal(plain: bytes, key: str = "k") -> bytes:
    enc = crypto.Encryptor(crypto.SecretKey(key))
    out = b""
    for i in range(0, len(plain), 300_000):
        out += enc.feed(plain[i : i + 300_000])
    return out + enc.finish()


def _open(sealed: bytes, key: str = "k") -> bytes:
    dec = crypto.Decryptor(crypto.SecretKey(key))
    out = b""
    for i in range(0, len(sealed), 70_000):
        out += dec.feed(sealed[i : i + 70_000])
    return out + dec.finish()


@pytest.mark.parametrize("size", [0, 1, crypto.CHUNK - 1, crypto.CHUNK, 3 * crypto.CHUNK + 5])
def test_encryption_round_trips_any_length(size: int) -> None:
    plain = os.urandom(size)
    assert _open(_seal(plain)) == plain


def test_encryption_detects_truncation_at_a_chunk_boundary() -> None:
    sealed = _seal(os.urandom(2 * crypto.CHUNK + 10))
    cut = crypto.HEADER_SIZE + crypto.CHUNK + crypto.TAG
    with pytest.raises(crypto.EncryptionError, match="damaged or truncated"):
        _open(sealed[:cut])


def test_encryption_detects_a_flipped_bit() -> None:
    sealed = bytearray(_seal(b"x" * 5000))
    sealed[-20] ^= 0x04
    with pytest.raises(crypto.EncryptionError, match="failed authentication"):
        _open(bytes(sealed))
