"""Hashing and encryption of secrets and personal data.

API keys are stored only as SHA-256 digests. Personal data (names, e-mail addresses,
phone numbers, passport details) is stored Fernet-encrypted, so a database dump or a
backup shows ciphertext only:

- :class:`EncryptedJSON` for a value in a text column (profiles, transactions' customers,
  the sandbox providers' guests);
- :class:`SealedJSON` for a value in a JSON column that may carry personal data
  (cached idempotent responses): the ciphertext is stored as a JSON string, so the column
  keeps its type and needs no migration;
- :class:`EncryptedBytes` for binary data (job snapshots, screenshots of filled-in forms).

All three use the one key from :func:`configure` (``ERRAND_SECRET_KEY``, or the key file
:func:`load_or_create_key` keeps in the data dir, readable by its owner only).
"""

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import JSON, LargeBinary, Text
from sqlalchemy.types import TypeDecorator

from errand.kit import files

_fernet: Fernet | None = None
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sha256_hex(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def canonical_json(value: Any) -> str:
    """Sorted keys and no whitespace, so equal requests hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def load_or_create_key(secret_key: str | None, data_dir: Path) -> str:
    """``secret_key`` when given; else the key in ``data_dir/secret.key``, generated on first use.

    The key file is created with mode 0600 (a data dir created here gets 0700), and an
    existing key file others could read is narrowed to 0600.
    """
    if secret_key:
        return secret_key
    path = data_dir / "secret.key"
    if path.exists():
        files.narrow(path)
        return path.read_text().strip()
    files.private_dir(data_dir)
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, files.FILE_MODE)
    except FileExistsError:  # another process created it first: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def configure(key: str) -> None:
    global _fernet
    _fernet = Fernet(key.encode())


def _cipher() -> Fernet:
    if _fernet is None:
        raise RuntimeError("errand.kit.crypto.configure() must run before personal data is stored")
    return _fernet


def seal(data: bytes) -> bytes:
    """``data`` encrypted with the configured key (a Fernet token, URL-safe base64)."""
    return _cipher().encrypt(data)


def unseal(token: bytes) -> bytes:
    """The bytes :func:`seal` sealed. Raises :class:`RuntimeError` when the key does not open them."""
    try:
        return _cipher().decrypt(token)
    except InvalidToken as exc:
        raise RuntimeError("personal data cannot be decrypted: wrong ERRAND_SECRET_KEY?") from exc


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value stored as Fernet ciphertext."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return seal(json.dumps(value).encode()).decode()

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        if value is None:
            return None
        return json.loads(unseal(value.encode()))


class SealedJSON(TypeDecorator[Any]):
    """A JSON object or list stored in a JSON column as one JSON string: its Fernet ciphertext.

    A row written before the column was sealed holds the object itself; it is read back
    unchanged (so nothing stored earlier becomes unreadable), and sealed when next written.
    """

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return seal(json.dumps(value).encode()).decode()

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if not isinstance(value, str):
            return value  # None, or a value stored in clear before sealing
        return json.loads(unseal(value.encode()))


class EncryptedBytes(TypeDecorator[bytes]):
    """Binary data stored as Fernet ciphertext; a PNG stored in clear before sealing reads back as it is."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else seal(value)

    def process_result_value(self, value: bytes | None, dialect: Any) -> bytes | None:
        if value is None:
            return None
        data = bytes(value)  # memoryview on some drivers
        return data if data.startswith(_PNG_SIGNATURE) else unseal(data)
