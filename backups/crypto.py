"""Streaming authenticated encryption for backup artifacts (AES-256-GCM in 1 MiB chunks).

Layout: header (magic, version, salt, nonce prefix, key check), then chunks. Each chunk is
sealed with a nonce of prefix + counter + a final flag, so reordering, truncation and
appending are all detected. The key comes from OPS_BACKUP_ENCRYPTION_KEY; a key check value
in the header tells a wrong key apart from a damaged archive.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"OPSBKENC"
VERSION = 1
CHUNK = 1024 * 1024
TAG = 16
_SALT = 16
_PREFIX = 7
_CHECK = 16
HEADER_SIZE = len(MAGIC) + 1 + _SALT + _PREFIX + _CHECK


class EncryptionError(Exception):
    """An encrypted artifact cannot be opened: wrong or missing key, or damaged data."""


class SecretKey:
    """The encryption key, held so that no repr, str or error report can show it.

    Error capture (sentry-sdk with local variables on) records every frame's locals by repr:
    our frames only ever hold this object, and the derived key lives only inside the cipher.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "SecretKey('[redacted]')" if self._value else "SecretKey('')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("the encryption key cannot be pickled")

    def encoded(self) -> bytes:
        try:
            return self._value.encode()
        except UnicodeEncodeError:
            raise EncryptionError(
                "OPS_BACKUP_ENCRYPTION_KEY is not valid UTF-8 text: set it to a printable key"
            ) from None


def _cipher(key: SecretKey, salt: bytes) -> tuple[AESGCM, bytes]:
    """The AES-GCM cipher and the key check value for `key` and `salt`. The derived bytes are
    never bound to a name, so no frame's locals hold them."""
    if not key:
        raise EncryptionError(
            "this backup is encrypted: set OPS_BACKUP_ENCRYPTION_KEY to the key it was made with"
        )
    halves = _Halves(hashlib.scrypt(key.encoded(), salt=salt, n=2**14, r=8, p=1, dklen=64))
    return AESGCM(halves.first()), halves.check()


class _Halves:
    """Derived key material: the first half keys the cipher, the second the key check."""

    __slots__ = ("_material",)

    def __init__(self, material: bytes) -> None:
        self._material = material

    def __repr__(self) -> str:
        return "_Halves('[redacted]')"

    def first(self) -> bytes:
        return self._material[:32]

    def check(self) -> bytes:
        mac = hmac.new(self._material[32:], b"ops-backup-key-check", hashlib.sha256)
        return mac.digest()[:_CHECK]


def _nonce(prefix: bytes, counter: int, final: bool) -> bytes:
    return prefix + struct.pack(">IB", counter, 1 if final else 0)


class Encryptor:
    """feed() plaintext, get ciphertext back; finish() seals the last chunk."""

    def __init__(self, key: SecretKey) -> None:
        salt = os.urandom(_SALT)
        self._prefix = os.urandom(_PREFIX)
        self._aead, check = _cipher(key, salt)
        self._counter = 0
        self._buffer = bytearray()
        self._header: bytes | None = MAGIC + bytes([VERSION]) + salt + self._prefix + check

    def _seal(self, data: bytes, final: bool) -> bytes:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._counter, final), data, None)
        self._counter += 1
        return sealed

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        if self._header is not None:
            out += self._header
            self._header = None
        self._buffer += data
        # Strictly more than a chunk: the final chunk is always sealed by finish().
        while len(self._buffer) > CHUNK:
            out += self._seal(bytes(self._buffer[:CHUNK]), final=False)
            del self._buffer[:CHUNK]
        return bytes(out)

    def finish(self) -> bytes:
        out = self.feed(b"")
        last = self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()
        return out + last


class Decryptor:
    """feed() ciphertext, get plaintext back; finish() checks the stream ended where it should."""

    def __init__(self, key: SecretKey) -> None:
        self._key = key
        self._aead: AESGCM | None = None
        self._prefix = b""
        self._counter = 0
        self._buffer = bytearray()

    def _open_header(self) -> None:
        header = bytes(self._buffer[:HEADER_SIZE])
        if not header.startswith(MAGIC) or header[len(MAGIC)] != VERSION:
            raise EncryptionError("the artifact is not an Ops Console encrypted backup")
        pos = len(MAGIC) + 1
        salt = header[pos : pos + _SALT]
        self._prefix = header[pos + _SALT : pos + _SALT + _PREFIX]
        expected = header[pos + _SALT + _PREFIX :]
        aead, check = _cipher(self._key, salt)
        if not hmac.compare_digest(check, expected):
            raise EncryptionError(
                "wrong encryption key: OPS_BACKUP_ENCRYPTION_KEY is not the key this backup "
                "was made with"
            )
        self._aead = aead
        del self._buffer[:HEADER_SIZE]

    def _open(self, data: bytes, final: bool) -> bytes:
        assert self._aead is not None
        try:
            plain = self._aead.decrypt(_nonce(self._prefix, self._counter, final), data, None)
        except InvalidTag:
            raise EncryptionError(
                f"encrypted chunk {self._counter} failed authentication: the archive is damaged "
                "or truncated"
            ) from None
        self._counter += 1
        return plain

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        if self._aead is None:
            if len(self._buffer) < HEADER_SIZE:
                return b""
            self._open_header()
        out = bytearray()
        sealed = CHUNK + TAG
        while len(self._buffer) > sealed:
            out += self._open(bytes(self._buffer[:sealed]), final=False)
            del self._buffer[:sealed]
        return bytes(out)

    def finish(self) -> bytes:
        if self._aead is None:
            raise EncryptionError("the encrypted artifact is truncated (no complete header)")
        last = self._open(bytes(self._buffer), final=True)
        self._buffer.clear()
        return last


def is_encrypted_header(data: bytes) -> bool:
    return data.startswith(MAGIC)
