"""SMS through an HTTP API in Twilio's shape (``ERRAND_SMS_URL``, ``_ACCOUNT``, ``_TOKEN``, ``_FROM``):

``POST {url}/2010-04-01/Accounts/{account}/Messages.json``, form-encoded ``To``, ``From`` and
``Body``, HTTP basic auth ``account:token``; 201 with the message's ``sid``. A 5xx or 429 is
retried; another 4xx (Twilio's ``{"code": 21211, …}``) is permanent. Unset URL and token lead
to the sandbox's fake provider (``{sandbox}/sms``).
"""

import re
from urllib.parse import quote

import httpx

from errand.kit.config import Settings
from errand.notify.channels.base import DeliveryFailed, OutgoingMessage, is_retriable_status, post
from errand.notify.errors import InvalidRecipient

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_SEPARATORS = re.compile(r"[\s().\-]")
# Twilio's limit for one message's body (it splits longer ones into segments itself).
MAX_BODY = 1600


def normalize(value: str) -> str | None:
    """``value`` as E.164 (``+15551234567``) once spaces, dots, dashes and brackets are dropped; None if it is not one."""
    compact = _SEPARATORS.sub("", value.strip())
    return compact if E164.match(compact) else None


def address(value: str) -> str:
    """An E.164 phone number, else InvalidRecipient."""
    number = normalize(value) if len(value) <= 40 else None
    if number is None:
        raise InvalidRecipient("An SMS recipient must be a phone number in E.164 form, such as +15551234567.")
    return number


def configured(settings: Settings) -> bool:
    return True


async def send(settings: Settings, message: OutgoingMessage) -> str | None:
    """Post the SMS; returns the provider's ``sid``. Raises DeliveryFailed."""
    url = f"{settings.effective_sms_url}/2010-04-01/Accounts/{quote(settings.sms_account, safe='')}/Messages.json"
    body = message.body if len(message.body) <= MAX_BODY else message.body[: MAX_BODY - 1] + "…"
    response = await post(url, "SMS API", data={"To": message.recipient, "From": settings.sms_from, "Body": body},
                          auth=httpx.BasicAuth(settings.sms_account, settings.effective_sms_token()),
                          headers={"I-Twilio-Idempotency-Token": message.id})
    if response.status_code in (200, 201):
        try:
            sid = response.json().get("sid")
        except ValueError:
            sid = None
        return str(sid) if sid else None
    code = None
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        pass
    detail = f" (code {code})" if isinstance(code, int) else ""
    raise DeliveryFailed(f"SMS API {response.status_code}{detail}", retriable=is_retriable_status(response.status_code))
