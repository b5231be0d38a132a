"""Fixtures for the backups tests: a private storage directory and a real S3-compatible
server on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def backup_dirs(tmp_path: Path, settings: Any) -> dict[str, Path]:
    """Storage, MEDIA_ROOT and one OPS_BACKUP_PATHS entry, all private to the test."""
    store = tmp_path / "store"
    media = tmp_path / "media"
    extra = tmp_path / "extra"
    for folder in (store, media, extra):
        folder.mkdir()
    settings.BACKUP_STORAGE_URL = f"file://{store}"
    settings.MEDIA_ROOT = media
    settings.OPS_BACKUP_PATHS = [str(extra)]
    settings.OPS_BACKUP_ENCRYPTION_KEY = ""
    settings.OPS_BACKUP_TMP_DIR = str(tmp_path)
    return {"store": store, "media": media, "extra": extra, "tmp": tmp_path}


@pytest.fixture
def s3_server(settings: Any, backup_dirs: dict[str, Path]) -> Iterator[dict[str, Any]]:
    """moto's standalone S3 server on loopback, with a bucket; storage points at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    # moto keeps one in-memory backend per process: a bucket per test keeps tests apart.
    bucket = f"ops-backups-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    settings.BACKUP_STORAGE_URL = f"s3://{bucket}/console"
    settings.AWS_ENDPOINT_URL_S3 = endpoint
    settings.AWS_ACCESS_KEY_ID = "testing"
    settings.AWS_SECRET_ACCESS_KEY = "testing"
    settings.AWS_DEFAULT_REGION = "us-east-1"
    settings.OPS_BACKUP_S3_PART_SIZE = 5 * 1024 * 1024
    try:
        yield {"client": client, "bucket": bucket, "endpoint": endpoint}
    finally:
        server.stop()
