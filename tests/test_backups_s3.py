"""Backups to a real S3-compatible server (moto's standalone server on loopback)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from backups import services
from backups.errors import BackupError
from backups.models import Backup
from backups.restore import restore_backup
from tests.backups_support import query, read_tree, scratch_db, write_tree


def keys(s3: dict[str, Any]) -> list[str]:
    listing = s3["client"].list_objects_v2(Bucket=s3["bucket"], Prefix="console/")
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_it_streams_a_large_archive_to_s3_in_parts_and_restores_it(
    s3_server: dict[str, Any], backup_dirs: dict[str, Path], db: Any
) -> None:
    big = os.urandom(12 * 1024 * 1024)  # incompressible: the artifact stays above 10 MB
    write_tree(backup_dirs["media"], {"video.bin": big, "note.txt": b"hello"})
    backup = services.create_backup("files")
    art = backup.artifact("files")
    assert art is not None and art["size"] > 10 * 1024 * 1024
    head = s3_server["client"].head_object(Bucket=s3_server["bucket"], Key=f"console/{art['name']}")
    assert head["ContentLength"] == art["size"]
    assert head["ETag"].strip('"').endswith("-3"), "a multipart upload of three 5 MiB parts"
    assert f"console/{backup.name}/manifest.json" in keys(s3_server)
    (backup_dirs["media"] / "video.bin").write_bytes(b"damaged")
    restore_backup(backup.pk, database=False, files=True)
    assert read_tree(backup_dirs["media"]) == {"note.txt": b"hello", "video.bin": big}
    assert services.verify_backup(backup.pk).status == Backup.Status.VERIFIED


def test_a_failed_upload_leaves_no_object_and_no_open_upload(
    s3_server: dict[str, Any], backup_dirs: dict[str, Path], db: Any
) -> None:
    write_tree(backup_dirs["media"], {"video.bin": os.urandom(11 * 1024 * 1024)})

    def progress(phase: str, done: int, total: int | None) -> None:
        if done > 6 * 1024 * 1024:
            raise OSError("network cable pulled")

    with pytest.raises(BackupError, match="network cable pulled"):
        services.create_backup("files", progress=progress)
    backup = Backup.objects.get()
    assert backup.status == Backup.Status.FAILED
    assert keys(s3_server) == []
    uploads = s3_server["client"].list_multipart_uploads(Bucket=s3_server["bucket"])
    assert uploads.get("Uploads", []) == []
    assert not Backup.objects.restorable().exists()


@pytest.mark.postgres
def test_a_postgres_backup_round_trips_through_s3(
    s3_server: dict[str, Any], backup_dirs: dict[str, Path], transactional_db: Any
) -> None:
    from django.contrib.auth.models import User

    User.objects.create_user("s3-user", "s3@example.com")
    backup = services.create_backup("db")
    for target in scratch_db(f"{connection.settings_dict['NAME']}_bk_s3"):
        restore_backup(backup.pk, target_db=target)
        assert query(target, "SELECT username FROM auth_user") == [("s3-user",)]


def test_restore_works_from_storage_alone_when_the_console_database_is_lost(
    s3_server: dict[str, Any], backup_dirs: dict[str, Path], db: Any
) -> None:
    write_tree(backup_dirs["media"], {"a.txt": b"from storage"})
    backup = services.create_backup("files")
    Backup.objects.all().delete()
    (backup_dirs["media"] / "a.txt").unlink()
    with pytest.raises(BackupError, match=f"it would replace {backup_dirs['media']}"):
        restore_backup("latest", database=False, files=True)
    result = restore_backup("latest", database=False, files=True, trust_storage_paths=True)
    assert result["backup_id"] == backup.pk
    assert read_tree(backup_dirs["media"]) == {"a.txt": b"from storage"}


def test_a_killed_s3_backup_has_its_open_upload_aborted_by_cleanup(
    s3_server: dict[str, Any], backup_dirs: dict[str, Path], db: Any
) -> None:
    import socket
    import subprocess

    from django.utils import timezone

    from backups import storage

    dead = subprocess.Popen(["true"])
    dead.wait()
    backup = Backup.objects.create(
        kind="files",
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        hostname=socket.gethostname(),
        pid=dead.pid,
        name="20261126T020000Z-9-files",
    )
    writer = storage.open_writer(f"{backup.name}/files.tar.gz")
    writer.write(os.urandom(6 * 1024 * 1024))  # one part uploaded, then the process "dies"
    client, bucket = s3_server["client"], s3_server["bucket"]
    assert len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 1
    services.cleanup()
    backup.refresh_from_db()
    assert backup.status == Backup.Status.FAILED
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert keys(s3_server) == []
