"""The backup storage named by BACKUP_STORAGE_URL: a local directory or an S3 bucket/prefix."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage


class StorageConfigError(ValueError):
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
