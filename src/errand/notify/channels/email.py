"""E-mail over SMTP with aiosmtplib: ``ERRAND_SMTP_HOST`` (unset: not configured), ``_PORT``,
``_USERNAME``, ``_PASSWORD``, ``_STARTTLS``, ``_TLS``, ``_FROM``.

The message is built with the standard library's :class:`email.message.EmailMessage` (which
refuses a header value carrying CR or LF: no header injection), its ``Message-ID`` derived from
the notification id (``<ntf_…@sender-domain>``), so a resent message is recognisably the same.
A 4xx SMTP reply or a lost connection is retried; a 5xx reply (refused recipient, refused
login) is permanent.
"""

import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr

import aiosmtplib

from errand.kit.config import Settings
from errand.notify.channels.base import DeliveryFailed, OutgoingMessage
from errand.notify.errors import InvalidRecipient

TIMEOUT_SECONDS = 10.0
_SHAPE = re.compile(r"^[^@\s\"<>(),;:\\\[\]]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")
DEFAULT_SUBJECT = "Notification from Errand"


def address(value: str) -> str:
    """A bare e-mail address (``name@example.com``, at most 254 characters), else InvalidRecipient."""
    value = value.strip()
    if len(value) > 254 or not _SHAPE.match(value):
        raise InvalidRecipient("An e-mail recipient must be an address such as ops@example.com.")
    try:
        Address(addr_spec=value)
    except (ValueError, IndexError):
        raise InvalidRecipient("An e-mail recipient must be an address such as ops@example.com.") from None
    return value


def configured(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def build(settings: Settings, message: OutgoingMessage) -> EmailMessage:
    """The e-mail for ``message``: From ``smtp_from``, To the recipient, the subject (a default when
    none), a plain-text body and a Message-ID derived from the notification id."""
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = message.recipient
    mail["Subject"] = message.subject or DEFAULT_SUBJECT
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "errand.invalid"
    mail["Message-ID"] = f"<{message.id}@{domain}>"
    mail.set_content(message.body)
    return mail


async def send(settings: Settings, message: OutgoingMessage) -> str | None:
    """Send over SMTP; returns the Message-ID. Raises DeliveryFailed (retriable: connection lost,
    timeout, a 4xx reply; permanent: a 5xx reply)."""
    mail = build(settings, message)
    try:
        await aiosmtplib.send(
            mail, hostname=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls and not settings.smtp_tls, use_tls=settings.smtp_tls,
            timeout=TIMEOUT_SECONDS,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = sorted({error.code for error in exc.recipients})
        raise DeliveryFailed(f"SMTP recipient refused ({', '.join(map(str, codes))})",
                             retriable=all(400 <= code < 500 for code in codes)) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryFailed(f"SMTP {exc.code} reply", retriable=400 <= exc.code < 500) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise DeliveryFailed(f"SMTP server unreachable ({type(exc).__name__})", retriable=True) from None
    return str(mail["Message-ID"])
