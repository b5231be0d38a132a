"""Moving artifact bytes between a producer, optional encryption and the storage, in chunks."""

from __future__ import annotations

import contextlib
import hashlib
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from backups import storage
from backups.crypto import Decryptor, EncryptionError, Encryptor, SecretKey

Progress = Callable[[str, int, int | None], None]


class ChecksumMismatch(Exception):
    """The stored artifact is not byte for byte what the backup wrote."""


def encryption_key() -> SecretKey:
    return SecretKey(str(settings.OPS_BACKUP_ENCRYPTION_KEY or ""))


class Sink:
    """A write-only file object: plaintext in, (encrypted) bytes out to the storage."""

    def __init__(self, name: str, *, role: str, fmt: str, progress: Progress | None = None) -> None:
        self.name, self.role, self.format = name, role, fmt
        key = encryption_key()
        self.encrypted = bool(key)
        self._encryptor = Encryptor(key) if key else None
        self._writer = storage.open_writer(name)
        self._progress = progress
        self._plain = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._plain += len(data)
        out = self._encryptor.feed(data) if self._encryptor else data
        self._writer.write(out)
        if self._progress:
            self._progress(self.role, self._plain, None)
        return len(data)

    def flush(self) -> None:
        """File-object API for tarfile/gzip; bytes are pushed to storage as they come."""

    def commit(self) -> dict[str, Any]:
        if self._encryptor:
            self._writer.write(self._encryptor.finish())
        self._writer.commit()
        self.closed = True
        return {
            "name": self.name,
            "role": self.role,
            "format": self.format,
            "size": self._writer.size,
            "sha256": self._writer.sha256,
            "encrypted": self.encrypted,
            "plain_size": self._plain,
        }

    def abort(self) -> None:
        self.closed = True
        # The storage may be what failed; the whole folder is removed afterwards anyway.
        with contextlib.suppress(Exception):
            self._writer.abort()


def fetch(
    artifact: dict[str, Any],
    dest: Path,
    *,
    gunzip: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Download an artifact to `dest`, decrypting (and gunzipping) on the way.

    The sha256 and size of the stored bytes are checked against the record before the caller
    gets the file; on any mismatch `dest` is removed and ChecksumMismatch raised.
    """
    digest = hashlib.sha256()
    size = 0
    decryptor = Decryptor(encryption_key()) if artifact.get("encrypted") else None
    inflater = zlib.decompressobj(wbits=31) if gunzip else None
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb", buffering=storage.READ_CHUNK) as out:
            failure: Exception | None = None
            for chunk in storage.iter_artifact(artifact["name"]):
                digest.update(chunk)
                size += len(chunk)
                if failure is None:
                    # Keep hashing after a decryption error: a damaged archive is reported as
                    # such, a wrong key as a wrong key.
                    try:
                        data = decryptor.feed(chunk) if decryptor else chunk
                        if inflater is not None:
                            data = inflater.decompress(data)
                    except (EncryptionError, zlib.error) as exc:
                        failure = exc
                        continue
                    out.write(data)
                if progress:
                    progress("download", size, artifact.get("size"))
            if size != artifact.get("size") or digest.hexdigest() != artifact.get("sha256"):
                raise ChecksumMismatch(
                    f"{artifact['name']} fails its checksum (sha256 {digest.hexdigest()[:12]}... "
                    f"of {size} bytes, expected {str(artifact.get('sha256'))[:12]}... of "
                    f"{artifact.get('size')}): the archive is damaged; restore another backup"
                )
            if failure is not None:
                raise failure
            if decryptor:
                data = decryptor.finish()
                out.write(inflater.decompress(data) if inflater is not None else data)
            if inflater is not None:
                out.write(inflater.flush())
                if not inflater.eof:
                    raise ChecksumMismatch(f"{artifact['name']} ends before its compressed data")
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def gzip_compressor() -> Any:
    return zlib.compressobj(6, zlib.DEFLATED, 31)
