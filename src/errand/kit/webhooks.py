"""Standard Webhooks signatures (https://www.standardwebhooks.com), signing and verifying.

A message is signed as ``HMAC-SHA256(key, f"{webhook-id}.{webhook-timestamp}.{body}")``,
base64-encoded and sent as ``webhook-signature: v1,<signature>`` (several space-separated
signatures are allowed, during a key rotation). The key is the secret's base64 part after
``whsec_``. Verification works on the raw request bytes, never on re-serialised JSON, and
refuses timestamps more than 5 minutes away from now (replays).

The ``standardwebhooks`` package does the cryptography; this module is the thin edge Errand
calls, for three reasons the package leaves to its callers: it sets the three headers (the
package returns the signature only), it hands the package a UTC-aware timestamp (the
package reads any datetime's wall clock as UTC, so a naive or non-UTC one signs the wrong
instant, silently), and it turns every way a hostile message can trip the package (a body
that is not UTF-8, a signature without its ``v1,``, bad base64) into
:class:`WebhookVerificationError`, never a crash. It never parses the body: callers do,
within their own limits.
"""

import binascii
from collections.abc import Mapping
from datetime import UTC, datetime

import standardwebhooks

# Errand's addition to the scheme for provider events: which provider (and so which of the
# per-provider secrets) signed the message.
PROVIDER_HEADER = "errand-provider-id"


class WebhookVerificationError(Exception):
    """The message's headers are missing or malformed, its timestamp is too old, or no signature matches."""


def signature(secret: str, msg_id: str, at: datetime, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message sent at ``at`` (timezone-aware); ``secret`` is ``whsec_…``."""
    if at.tzinfo is None:
        raise ValueError("a webhook timestamp must be timezone-aware")
    return standardwebhooks.Webhook(secret).sign(msg_id, at.astimezone(UTC), body.decode())


def sign_headers(secret: str, msg_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """The three headers a sender adds to a message; ``at`` must be timezone-aware (default now)."""
    at = at or datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature(secret, msg_id, at, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """Check a received message; returns its ``webhook-id``. Raises :class:`WebhookVerificationError`."""
    wanted = {name: headers.get(name) or "" for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    try:
        standardwebhooks.Webhook(secret).verify(body, wanted, json_parse=False)
    except standardwebhooks.WebhookVerificationError as exc:
        raise WebhookVerificationError(str(exc).lower()) from None
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise WebhookVerificationError("malformed webhook-signature header or body") from None
    return wanted["webhook-id"]
