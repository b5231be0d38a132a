"""A restore tells the truth: every target is made ready before any is replaced, the previous
database and trees are kept until every swap has succeeded, and a restore that fails after a
swap says exactly what it replaced (on a real PostgreSQL server)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from backups import services
from backups.errors import PartialRestore
from backups.restore import restore_backup
from tests.backups_support import databases_like, query, read_tree, scratch_db, write_tree

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def target(transactional_db: Any) -> Any:
    yield from scratch_db(f"{connection.settings_dict['NAME']}_bk_truth")


@pytest.fixture
def roots(backup_dirs: dict[str, Path], settings: Any) -> dict[str, Path]:
    """MEDIA_ROOT, and an extra root one level down so the test can block where it lives."""
    extra = backup_dirs["tmp"] / "shelf" / "extra"
    extra.mkdir(parents=True)
    settings.OPS_BACKUP_PATHS = [str(extra)]
    return {**backup_dirs, "extra": extra}


def emails(dbname: str) -> list[tuple[Any, ...]]:
    return query(dbname, "SELECT username, email FROM auth_user ORDER BY id")


def a_restored_target(roots: dict[str, Path], target: str) -> int:
    """A full backup restored once into `target`, then the target, media and extra root
    changed, so that an unwanted restore would be visible everywhere."""
    for n in range(10):
        User.objects.create_user(f"user{n}", f"user{n}@example.com")
    write_tree(roots["media"], {"avatars/alice.png": b"old avatar"})
    write_tree(roots["extra"], {"config/app.ini": b"[app]\nname=old\n"})
    backup = services.create_backup("full")
    restore_backup(backup.pk, target_db=target)
    query(target, "UPDATE auth_user SET email = 'changed@example.com'")
    write_tree(roots["media"], {"avatars/alice.png": b"new avatar", "later.txt": b"later"})
    write_tree(roots["extra"], {"config/app.ini": b"[app]\nname=new\n"})
    return backup.pk


def test_a_file_root_that_cannot_be_written_leaves_the_database_and_other_roots_unchanged(
    roots: dict[str, Path], target: str
) -> None:
    backup_id = a_restored_target(roots, target)
    before_db, before_media = emails(target), read_tree(roots["media"])
    # Where the extra root lives is now a plain file: its staging directory cannot be made.
    shutil.rmtree(roots["tmp"] / "shelf")
    (roots["tmp"] / "shelf").write_text("not a directory")
    with pytest.raises(CommandError) as raised:
        call_command("restore", str(backup_id), "--files", "--target-db", target, "--yes", "--json")
    message = str(raised.value)
    assert message.startswith("restore failed, nothing was changed: cannot stage the files")
    assert "\n" not in message
    assert emails(target) == before_db
    assert read_tree(roots["media"]) == before_media
    assert databases_like(target) == [target], "the restored scratch database is dropped"
    staging = [p.name for p in roots["tmp"].iterdir() if ".restore-" in p.name]
    assert staging == [], "the media root's staging copy is removed"


def test_a_restore_stopped_after_the_database_swap_names_what_it_replaced(
    roots: dict[str, Path], target: str
) -> None:
    backup_id = a_restored_target(roots, target)
    before_extra = read_tree(roots["extra"])
    swaps: list[tuple[int, int | None]] = []

    def progress(phase: str, done: int, total: int | None) -> None:
        if phase == "swap":
            swaps.append((done, total))
            if done == 2:  # the database and media are in; Ctrl-C before the extra root
                raise KeyboardInterrupt

    with pytest.raises(PartialRestore) as raised:
        restore_backup(backup_id, target_db=target, files=True, progress=progress)
    message = str(raised.value)
    assert swaps == [(0, 3), (1, 3), (2, 3)]
    assert message.startswith(f"restore of backup {backup_id} failed after replacing ")
    assert f"the database {target} (the previous one is kept as {target}__old_" in message
    assert f"the files in {roots['media']} (the previous ones are kept in " in message
    assert f"not replaced: {roots['extra']}: interrupted" in message
    # What it says is what happened: the database and media are the backup's...
    assert {email for _, email in emails(target)} != {"changed@example.com"}
    assert read_tree(roots["media"]) == {"avatars/alice.png": b"old avatar"}
    # ...the extra root is untouched, and the previous database and media tree are kept.
    assert read_tree(roots["extra"]) == before_extra
    kept_db = [name for name in databases_like(target) if name != target]
    assert len(kept_db) == 1 and kept_db[0] in message
    assert {email for _, email in emails(kept_db[0])} == {"changed@example.com"}
    kept_media = next(p for p in roots["tmp"].iterdir() if p.name.startswith(".media.old-"))
    assert str(kept_media) in message
    assert read_tree(kept_media)["later.txt"] == b"later"
