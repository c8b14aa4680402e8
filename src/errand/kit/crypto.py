"""Hashing and encryption of secrets and personal data.

API keys are stored only as SHA-256 digests. Personal data (names, e-mail addresses,
phone numbers, passport details) is stored Fernet-encrypted through :class:`EncryptedJSON`,
so a database dump or a backup shows ciphertext only.
"""

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

_fernet: Fernet | None = None


def sha256_hex(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def canonical_json(value: Any) -> str:
    """Sorted keys and no whitespace, so equal requests hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def load_or_create_key(secret_key: str | None, data_dir: Path) -> str:
    if secret_key:
        return secret_key
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value stored as Fernet ciphertext."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return _cipher().encrypt(json.dumps(value).encode()).decode()

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        if value is None:
            return None
        try:
            return json.loads(_cipher().decrypt(value.encode()))
        except InvalidToken as exc:
            raise RuntimeError("personal data cannot be decrypted: wrong ERRAND_SECRET_KEY?") from exc
