"""The backup storage named by BACKUP_STORAGE_URL: a local directory or an S3 bucket/prefix."""

from __future__ import annotations

import abc
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage

from backups.errors import BackupError


class StorageConfigError(BackupError, ValueError):
    """BACKUP_STORAGE_URL cannot be turned into a storage."""


def describe_storage_url(url: str | None = None) -> dict[str, str]:
    """Scheme, bucket/path and prefix of the backup storage URL (no credentials)."""
    parts = urlsplit(url or settings.BACKUP_STORAGE_URL)
    if parts.scheme == "file":
        return {"scheme": "file", "path": parts.path}
    if parts.scheme == "s3":
        return {"scheme": "s3", "bucket": parts.netloc, "prefix": parts.path.strip("/")}
    raise StorageConfigError(
        f"BACKUP_STORAGE_URL has the unknown scheme {parts.scheme!r}: "
        "use file:///absolute/path or s3://bucket/prefix"
    )


def backup_storage(url: str | None = None) -> Storage:
    info = describe_storage_url(url)
    if info["scheme"] == "file":
        location = Path(info["path"])
        location.mkdir(parents=True, exist_ok=True)
        return FileSystemStorage(
            location=str(location), file_permissions_mode=0o600, directory_permissions_mode=0o700
        )
    if not info["bucket"]:
        raise StorageConfigError("BACKUP_STORAGE_URL is s3:// without a bucket")
    from storages.backends.s3 import S3Storage

    return S3Storage(
        bucket_name=info["bucket"],
        location=info["prefix"],
        endpoint_url=settings.AWS_ENDPOINT_URL_S3 or None,
        region_name=settings.AWS_DEFAULT_REGION or None,
        access_key=settings.AWS_ACCESS_KEY_ID or None,
        secret_key=settings.AWS_SECRET_ACCESS_KEY or None,
        file_overwrite=False,
        default_acl=None,
    )


def local_path(url: str | None = None) -> Path | None:
    """The directory behind a file:// storage, for free-space figures; None for S3."""
    info = describe_storage_url(url)
    return Path(info["path"]) if info["scheme"] == "file" else None


# --- streaming reads and writes ------------------------------------------------------------
# Artifacts are streamed: a local file is written under a ".partial" name and renamed when
# complete; S3 gets a multipart upload that only becomes an object when completed. Neither
# ever holds a whole artifact in memory.

READ_CHUNK = 1024 * 1024
PARTIAL_SUFFIX = ".partial"


class ArtifactWriter(abc.ABC):
    """Write bytes under `name`; counts size and sha256 of what was stored."""

    def __init__(self) -> None:
        self.size = 0
        self._hash = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, data: bytes) -> None:
        if data:
            self._hash.update(data)
            self.size += len(data)
            self._write(data)

    @abc.abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def abort(self) -> None: ...


class LocalWriter(ArtifactWriter):
    def __init__(self, root: Path, name: str) -> None:
        super().__init__()
        self.path = root / name
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._fh = os.fdopen(fd, "wb", buffering=READ_CHUNK)

    def _write(self, data: bytes) -> None:
        self._fh.write(data)

    def commit(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self.partial.unlink(missing_ok=True)


class S3Writer(ArtifactWriter):
    """Multipart upload in parts of OPS_BACKUP_S3_PART_SIZE; small artifacts use one PUT."""

    def __init__(self, client: Any, bucket: str, key: str, part_size: int) -> None:
        super().__init__()
        self.client, self.bucket, self.key, self.part_size = client, bucket, key, part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def _flush_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)[
                "UploadId"
            ]
        number = len(self._parts) + 1
        body = bytes(self._buffer[: self.part_size])
        del self._buffer[: self.part_size]
        answer = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def _write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self.part_size:
            self._flush_part()

    @property
    def parts(self) -> int:
        return len(self._parts)

    def commit(self) -> None:
        if self._upload_id is None:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer))
        else:
            if self._buffer:
                self._flush_part()
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._buffer.clear()
        stored = self.client.head_object(Bucket=self.bucket, Key=self.key)["ContentLength"]
        if stored != self.size:
            raise OSError(f"S3 holds {stored} bytes for {self.key}, {self.size} were sent")

    def abort(self) -> None:
        self._buffer.clear()
        if self._upload_id is not None:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id
            )
            self._upload_id = None


def _s3(storage: Storage) -> tuple[Any, str]:
    return storage.connection.meta.client, storage.bucket_name  # type: ignore[attr-defined]


def _s3_key(storage: Storage, name: str) -> str:
    return storage._normalize_name(name)  # type: ignore[attr-defined]


def open_writer(name: str, *, storage: Storage | None = None) -> ArtifactWriter:
    storage = storage or backup_storage()
    if isinstance(storage, FileSystemStorage):
        return LocalWriter(Path(storage.location), name)
    client, bucket = _s3(storage)
    return S3Writer(client, bucket, _s3_key(storage, name), settings.OPS_BACKUP_S3_PART_SIZE)


def iter_artifact(name: str, *, storage: Storage | None = None) -> Iterator[bytes]:
    """The stored bytes of an artifact, in chunks of about 1 MiB."""
    storage = storage or backup_storage()
    if isinstance(storage, FileSystemStorage):
        with open(Path(storage.location) / name, "rb") as fh:
            while chunk := fh.read(READ_CHUNK):
                yield chunk
        return
    client, bucket = _s3(storage)
    body = client.get_object(Bucket=bucket, Key=_s3_key(storage, name))["Body"]
    try:
        yield from body.iter_chunks(READ_CHUNK)
    finally:
        body.close()


def artifact_exists(name: str, *, storage: Storage | None = None) -> bool:
    storage = storage or backup_storage()
    return bool(storage.exists(name))


def delete_folder(folder: str, *, storage: Storage | None = None) -> int:
    """Delete every object under `folder/` (finished, partial or an open multipart upload)."""
    storage = storage or backup_storage()
    folder = folder.strip("/")
    if not folder:
        raise ValueError("refusing to delete the storage root")
    if isinstance(storage, FileSystemStorage):
        path = Path(storage.location) / folder
        if not path.exists():
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count
    client, bucket = _s3(storage)
    prefix = _s3_key(storage, folder) + "/"
    count = 0
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            count += len(keys)
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    for upload in uploads:
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        count += 1
    return count
