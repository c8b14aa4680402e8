"""Signed webhooks: POST to the recipient URL, signed with the Standard Webhooks scheme.

The body is ``{"type": "automation.notification", "timestamp": "<ISO 8601 UTC>", "data":
{"notification_id", "execution_id", "step_id", "subject", "body"}}``, with the headers
``webhook-id`` (the notification id, stable across retries: the receiver dedupes on it),
``webhook-timestamp`` and ``webhook-signature``, signed by the ``standardwebhooks`` library
under the organization's secret, ``Settings.notify_webhook_signing_secret(organization_id)``.
Only http and https URLs; a redirect is never followed (a 3xx is a permanent failure), a
2xx is delivered, a 5xx, 408 or 429 or a network error is retried, any other 4xx (410 Gone …)
is permanent.
"""

import json
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from errand.kit.config import Settings
from errand.notify.channels.base import DeliveryFailed, OutgoingMessage, is_retriable_status, post
from errand.notify.errors import InvalidRecipient

EVENT_TYPE = "automation.notification"
MAX_URL = 2000


def address(value: str) -> str:
    """An absolute http(s) URL with a host and no credentials, else InvalidRecipient."""
    value = value.strip()
    problem = "A webhook recipient must be an http or https URL, such as https://example.com/hooks/errand."
    if len(value) > MAX_URL or any(ord(c) < 0x21 or c == "\x7f" for c in value):
        raise InvalidRecipient(problem)
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError):
        raise InvalidRecipient(problem) from None
    if url.scheme not in ("http", "https") or not url.host or url.userinfo:
        raise InvalidRecipient(problem)
    return value


def configured(settings: Settings) -> bool:
    return True


def payload(message: OutgoingMessage, at: datetime) -> bytes:
    """The JSON body for ``message`` sent at ``at``."""
    return json.dumps({
        "type": EVENT_TYPE,
        "timestamp": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {"notification_id": message.id, "execution_id": message.execution_id, "step_id": message.step_id,
                 "subject": message.subject, "body": message.body},
    }, ensure_ascii=False).encode()


async def send(settings: Settings, message: OutgoingMessage) -> str | None:
    """POST the signed message; returns None (a webhook receiver gives no message id). Raises DeliveryFailed."""
    address(message.recipient)  # refused again at send time: never a non-http(s) URL
    at = datetime.now(UTC)
    body = payload(message, at)
    signature = Webhook(settings.notify_webhook_signing_secret(message.organization_id)).sign(
        message.id, at, body.decode())
    response = await post(message.recipient, "webhook", content=body, headers={
        "content-type": "application/json", "webhook-id": message.id,
        "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature,
    })
    if 200 <= response.status_code < 300:
        return None
    if 300 <= response.status_code < 400:
        raise DeliveryFailed(f"webhook answered {response.status_code}: redirects are not followed", retriable=False)
    raise DeliveryFailed(f"webhook answered {response.status_code}", retriable=is_retriable_status(response.status_code))
