"""Chat through Slack's Web API shape (``ERRAND_CHAT_URL``, ``ERRAND_CHAT_TOKEN``):

``POST {url}/api/chat.postMessage`` with ``Authorization: Bearer <token>`` and JSON
``{"channel", "text"}``. Slack answers 200 ``{"ok": true, "ts": "…"}``, or 200 ``{"ok": false,
"error": "channel_not_found"}`` on failure: the error code decides (``ratelimited`` and
Slack's server-side errors are retried, the rest are permanent). A 5xx or 429 is retried.
Unset URL and token lead to the sandbox's fake chat API (``{sandbox}/chat``).
"""

import re

from errand.kit.config import Settings
from errand.notify.channels.base import DeliveryFailed, OutgoingMessage, is_retriable_status, post
from errand.notify.errors import InvalidRecipient

# "#ops" (a channel name as Slack allows it) or a conversation id ("C0123ABCD", "G…", "D…").
_NAME = re.compile(r"^#[a-z0-9][a-z0-9._\-]{0,79}$")
_ID = re.compile(r"^[CGD][A-Z0-9]{6,20}$")
RETRIABLE_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error",
                              "service_unavailable", "request_timeout"})
MAX_TEXT = 40_000


def address(value: str) -> str:
    """A chat channel, ``#ops`` or a conversation id like ``C0123ABCD``, else InvalidRecipient."""
    value = value.strip()
    if not (_NAME.match(value) or _ID.match(value)):
        raise InvalidRecipient("A chat recipient must be a channel such as #ops or a channel id such as C0123ABCD.")
    return value


def configured(settings: Settings) -> bool:
    return True


async def send(settings: Settings, message: OutgoingMessage) -> str | None:
    """Post the message; returns Slack's ``ts``. Raises DeliveryFailed."""
    text = f"*{message.subject}*\n{message.body}" if message.subject else message.body
    response = await post(f"{settings.effective_chat_url}/api/chat.postMessage", "chat API",
                          json={"channel": message.recipient, "text": text[:MAX_TEXT]},
                          headers={"Authorization": f"Bearer {settings.effective_chat_token()}"})
    if response.status_code != 200:
        raise DeliveryFailed(f"chat API {response.status_code}", retriable=is_retriable_status(response.status_code))
    try:
        answer = response.json()
    except ValueError:
        raise DeliveryFailed("chat API 200 without a JSON body", retriable=True) from None
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        error = answer.get("error") if isinstance(answer, dict) else None
        code = error if isinstance(error, str) and re.fullmatch(r"[a-z_]{1,60}", error) else "unknown_error"
        raise DeliveryFailed(f"chat API error {code}", retriable=code in RETRIABLE_ERRORS)
    ts = answer.get("ts")
    return str(ts) if ts else None
