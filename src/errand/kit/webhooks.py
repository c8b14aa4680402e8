"""Standard Webhooks signatures (https://www.standardwebhooks.com), signing and verifying.

A message is signed as ``HMAC-SHA256(key, f"{webhook-id}.{webhook-timestamp}.{body}")``,
base64-encoded and sent as ``webhook-signature: v1,<signature>`` (several space-separated
signatures are allowed, during a key rotation). The key is the secret's base64 part after
``whsec_``; a secret without that prefix is used as its UTF-8 bytes. Verification works on
the raw request bytes, never on re-serialised JSON, and refuses timestamps more than
``tolerance`` seconds away from now (replays).

The ``standardwebhooks`` package does the same; this module exists so that neither side of
Errand's own provider events needs it.
"""

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import datetime

TOLERANCE_SECONDS = 5 * 60
# Errand's addition to the scheme for provider events: which provider (and so which of the
# per-provider secrets) signed the message.
PROVIDER_HEADER = "errand-provider-id"


class WebhookVerificationError(Exception):
    """The message's headers are missing or malformed, its timestamp is too old, or no signature matches."""


def _key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_headers(secret: str, msg_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """The three headers a sender adds to a message; ``at`` must be timezone-aware (default now)."""
    if at is not None and at.tzinfo is None:
        raise ValueError("a webhook timestamp must be timezone-aware")
    timestamp = int(at.timestamp()) if at is not None else int(time.time())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, msg_id, timestamp, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance: int = TOLERANCE_SECONDS,
           now: float | None = None) -> str:
    """Check a received message; returns its ``webhook-id``. Raises :class:`WebhookVerificationError`.

    ``headers`` is looked up case-insensitively only if it is (a Starlette ``Headers`` is);
    pass the lower-case names otherwise.
    """
    msg_id = headers.get("webhook-id") or ""
    raw_timestamp = headers.get("webhook-timestamp") or ""
    raw_signatures = headers.get("webhook-signature") or ""
    if not msg_id or not raw_timestamp or not raw_signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a Unix timestamp") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is too far from now")
    expected = signature(secret, msg_id, timestamp, body).encode()
    for candidate in raw_signatures.split():
        if hmac.compare_digest(candidate.encode(), expected):
            return msg_id
    raise WebhookVerificationError("no signature matches")
