"""The backup encryption key never reaches an error report: sentry-sdk with local variables on
records every frame's locals, and our frames only hold the key in a redacted holder."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from backups import crypto, services
from backups.errors import BackupError
from tests.backups_support import write_tree

KEY = "correct-horse-battery-staple-4711"


class Recorder(Transport):
    """Keeps every envelope the SDK would send, as the bytes it would send."""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.sent: list[bytes] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.sent.append(envelope.serialize())


@pytest.fixture
def captured() -> Iterator[Recorder]:
    recorder = Recorder()
    sentry_sdk.init(
        transport=recorder,
        include_local_variables=True,
        default_integrations=False,
        auto_session_tracking=False,
    )
    yield recorder
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.init()


def report(recorder: Recorder, exc: BaseException) -> str:
    sentry_sdk.capture_exception(exc)
    sentry_sdk.flush(timeout=5)
    (sent,) = recorder.sent
    text = sent.decode()
    assert '"vars"' in text, "local variables were captured"
    return text


def derived(key: str, salt: bytes) -> bytes:
    return hashlib.scrypt(key.encode(), salt=salt, n=2**14, r=8, p=1, dklen=64)


def assert_no_key_material(text: str, key: str, material: bytes) -> None:
    # The key, and each half of what it derives, as a repr of them reads inside the JSON sent.
    for secret in (key, material[:32], material[32:]):
        shown = secret if isinstance(secret, str) else repr(secret)[2:-1]
        for form in (json.dumps(shown)[1:-1], shown):
            assert form not in text
        if isinstance(secret, bytes):
            assert secret.hex() not in text


def test_a_failed_decryption_report_holds_no_key_material(captured: Recorder) -> None:
    enc = crypto.Encryptor(crypto.SecretKey("the key the backup was made with"))
    sealed = enc.feed(b"payload") + enc.finish()
    salt = sealed[len(crypto.MAGIC) + 1 : len(crypto.MAGIC) + 1 + 16]
    dec = crypto.Decryptor(crypto.SecretKey(KEY))
    with pytest.raises(crypto.EncryptionError, match="wrong encryption key") as raised:
        dec.feed(sealed)
    text = report(captured, raised.value)
    assert '"function":"_open_header"' in text
    assert_no_key_material(text, KEY, derived(KEY, salt))


def test_a_backup_failing_inside_encryption_reports_no_key(
    captured: Recorder, backup_dirs: dict[str, Path], db: Any, settings: Any
) -> None:
    # A key that is not UTF-8 (raw bytes in the environment) fails inside the key derivation.
    # (No local of this test holds it either: this frame is in the report too.)
    settings.OPS_BACKUP_ENCRYPTION_KEY = KEY + "-\udcff"
    write_tree(backup_dirs["media"], {"a.txt": b"a"})
    with pytest.raises(BackupError, match="OPS_BACKUP_ENCRYPTION_KEY is not valid UTF-8") as raised:
        services.create_backup("files")
    text = report(captured, raised.value)
    assert '"function":"_cipher"' in text
    assert KEY not in text and json.dumps(KEY)[1:-1] not in text


def test_the_key_holder_never_shows_the_key() -> None:
    held = crypto.SecretKey(KEY)
    assert KEY not in repr(held) and KEY not in str(held) and KEY not in f"{held!r} {held}"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(held)
