"""The notification outbox: an automation's ``notification`` step queues messages here, in its own
transaction, and the runner delivers them (issue 12, "Steps": notification; docs/notifications.md).

- :func:`queue` resolves the recipients, writes one row per (execution, step, recipient index)
  (unique: a re-run step never queues twice) and enqueues ``errand.notify.deliver`` for each
  new row, sent after the caller's commit.
- :func:`deliver` sends one due row: it claims the row with a conditional UPDATE (moving
  ``next_attempt_at`` past the send's time limit, a lease), so two processes never send it at
  once, sends outside any transaction, then records the outcome. A retriable failure (network,
  5xx, 429, SMTP 4xx) waits :data:`BACKOFF_SECONDS` before the next attempt, and the row fails
  after the last; a permanent one (another 4xx, SMTP 5xx) fails the row at once. Delivery is
  at least once (a crash after the send and before the record sends again); every channel
  carries the notification id for the receiver to drop a duplicate.
- :func:`deliver_due` is the sweep (every 2 s): rows whose ``next_attempt_at`` is due, which
  covers a delivery call lost to a crash, a lapsed lease and every retry.
"""

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit import clock, logging
from errand.kit.config import Settings
from errand.kit.db import Database
from errand.kit.ids import new_id
from errand.kit.inputs import CONTROL_CHARACTERS, UNSAFE_CHARACTERS
from errand.kit.tasks import enqueue
from errand.models import Notification
from errand.notify import contacts
from errand.notify.channels import CHANNELS, DeliveryFailed, OutgoingMessage
from errand.notify.errors import ChannelNotConfigured, InvalidChannel, InvalidRecipient
from errand.notify.schemas import DELIVER_TASK, ROLE_PREFIX, Contact, NotificationView

# Waits before attempts 2, 3, … after a retriable failure; the attempt after the last fails the row.
BACKOFF_SECONDS = (5, 30, 120, 600, 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
# How long a claimed row is held by its sender: past every channel's time limit (10 s), so a
# crashed sender's row is taken up again by the sweep afterwards.
LEASE_SECONDS = 60
MAX_RECIPIENTS = 50
NOT_CONFIGURED = ("E-mail is not configured on this server: set ERRAND_SMTP_HOST (and ERRAND_SMTP_FROM) to send "
                  "e-mail notifications.")
MAX_SUBJECT = 998
MAX_BODY = 100_000
# What a body never carries (errand.kit.inputs: C0 controls but tab and line breaks, DEL, C1
# controls, lone surrogates), and what a one-line subject turns into spaces (every control
# character and line separator).
_UNSAFE = re.compile(f"[{UNSAFE_CHARACTERS}\\ud800-\\udfff]")
_NOT_ONE_LINE = re.compile(f"[{CONTROL_CHARACTERS}\\u2028\\u2029\\ud800-\\udfff]+")

log = logging.get_logger(__name__)


async def queue(session: AsyncSession, *, organization_id: str, env: str, execution_id: str, step_id: str,
                channel: str, recipients: list[str], subject: str | None, body: str,
                event_payload: dict[str, Any], settings: Settings | None = None) -> list[str]:
    """Queue one message per recipient in the caller's transaction; returns the notification ids
    (``ntf_…``), in the order of ``recipients``.

    ``channel`` is email | sms | chat | webhook. A recipient is a literal address (an e-mail
    address; an E.164 phone number; a chat channel ``#ops`` or ``C0123ABCD``; an http(s) URL) or
    a role: ``role:traveler`` (the traveler of the job ``event_payload["job_id"]``, which must be
    the organization's and mode's), ``role:admins`` or ``role:finance`` (the organization's
    contacts, ``errand set-contact``); roles have e-mail and phone addresses only. The subject
    becomes one line (line breaks and control characters turn into spaces: no header
    injection); the body loses NUL and other control characters but newlines and tabs.

    ``settings`` (the process's, ``core.settings``), when given, refuses a channel this server
    cannot send on at once (ChannelNotConfigured, ``channel_not_configured``: e-mail without
    ``ERRAND_SMTP_HOST``), so the step fails clearly; without it such a row fails at delivery
    with that reason as its ``last_error``.

    Idempotent per (execution_id, step_id, recipient index): queueing again returns the same ids
    and queues nothing new. Each new row's delivery is enqueued (sent after commit). Raises
    InvalidChannel, ChannelNotConfigured, InvalidRecipient
    (``invalid_recipient``: a malformed literal, or none at all) or RecipientUnresolved
    (``recipient_unresolved``); nothing is written then.
    """
    if channel not in CHANNELS:
        raise InvalidChannel(f"The channel must be one of {', '.join(CHANNELS)}.")
    module = CHANNELS[channel]
    if settings is not None and not module.configured(settings):
        raise ChannelNotConfigured(NOT_CONFIGURED)
    if not recipients:
        raise InvalidRecipient("A notification needs at least one recipient.")
    if len(recipients) > MAX_RECIPIENTS:
        raise InvalidRecipient(f"A notification has at most {MAX_RECIPIENTS} recipients.")
    resolved: list[tuple[str | None, str]] = []
    for recipient in recipients:
        if not isinstance(recipient, str):
            raise InvalidRecipient("Each recipient must be a string.")
        if recipient.startswith(ROLE_PREFIX):
            role = recipient[len(ROLE_PREFIX):]
            resolved.append((recipient[:20], await contacts.resolve(session, organization_id, env, channel, role,
                                                                    event_payload)))
        else:
            resolved.append((None, module.address(recipient)))
    clean_subject = _one_line(subject)[:MAX_SUBJECT] if subject else None
    clean_body = _UNSAFE.sub("", body.replace("\r\n", "\n").replace("\r", "\n"))[:MAX_BODY]

    existing = await _ids_by_index(session, execution_id, step_id)
    now = clock.now()
    rows = [{
        "id": new_id("ntf"), "organization_id": organization_id, "env": env, "execution_id": execution_id,
        "step_id": step_id, "recipient_index": index, "channel": channel, "recipient_role": role,
        "recipient": address, "subject": clean_subject or None, "body": clean_body, "status": "pending",
        "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now,
    } for index, (role, address) in enumerate(resolved) if index not in existing]
    if rows:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        await session.execute(dialect.insert(Notification).values(rows).on_conflict_do_nothing(
            index_elements=["execution_id", "step_id", "recipient_index"]))
        written = await _ids_by_index(session, execution_id, step_id)
        for row in rows:
            if written.get(row["recipient_index"]) == row["id"]:
                enqueue(session, DELIVER_TASK, notification_id=row["id"])
        existing = written
    return [existing[index] for index in range(len(resolved)) if index in existing]


async def set_contact(session: AsyncSession, organization_name: str, role: str, *,
                      email: str | None = None, phone: str | None = None) -> Contact:
    """Set who ``role:<role>`` (admins | finance) reaches in an organization (``errand set-contact``).
    An address not given is kept. Raises InvalidRequest or InvalidRecipient."""
    return await contacts.set_contact(session, organization_name, role, email_address=email, phone=phone)


async def webhook_secret(session: AsyncSession, settings: Settings, organization_name: str) -> str:
    """The ``whsec_`` secret an organization's webhook notifications are signed with. InvalidRequest
    when no organization has that name."""
    org = await contacts.organization_named(session, organization_name)
    return settings.notify_webhook_signing_secret(org.id)


async def get_notifications(session: AsyncSession, *, execution_id: str, step_id: str | None = None,
                            organization_id: str | None = None) -> list[NotificationView]:
    """The notifications of an execution (and step), in recipient order, decrypted."""
    query = select(Notification).where(Notification.execution_id == execution_id)
    if step_id is not None:
        query = query.where(Notification.step_id == step_id)
    if organization_id is not None:
        query = query.where(Notification.organization_id == organization_id)
    rows = (await session.execute(query.order_by(Notification.step_id, Notification.recipient_index))).scalars()
    return [_view(row) for row in rows]


async def deliver(db: Database, settings: Settings, notification_id: str, *, now: datetime | None = None) -> str | None:
    """Send notification ``notification_id`` if it is pending and due at ``now`` (default: the
    clock); returns its status afterwards, or None when another sender holds it, it is not due,
    or it is already sent or failed (nothing was sent then).

    The claim, the send and the record are three steps: no transaction is open during the send."""
    now = now or clock.now()
    async with db.unit_of_work() as session:
        claimed = await session.execute(update(Notification).where(
            Notification.id == notification_id, Notification.status == "pending",
            Notification.next_attempt_at <= now,
        ).values(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS), attempts=Notification.attempts + 1,
                 updated_at=now).execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            return None
        row = (await session.execute(select(Notification).where(Notification.id == notification_id))).scalar_one()
        message = OutgoingMessage(id=row.id, organization_id=row.organization_id, execution_id=row.execution_id,
                                  step_id=row.step_id, recipient=row.recipient, subject=row.subject, body=row.body)
        channel, attempts = row.channel, row.attempts
    try:
        if not CHANNELS[channel].configured(settings):
            raise DeliveryFailed("email channel not configured (ERRAND_SMTP_HOST unset)", retriable=False)
        provider_id = await CHANNELS[channel].send(settings, message)
    except DeliveryFailed as failure:
        retry = failure.retriable and attempts < MAX_ATTEMPTS
        values: dict[str, Any] = {"last_error": failure.reason[:500], "updated_at": clock.now()}
        if retry:
            values["next_attempt_at"] = now + timedelta(seconds=BACKOFF_SECONDS[attempts - 1])
        else:
            values.update(status="failed", next_attempt_at=None)
        log.info("notification_failed", notification_id=notification_id, channel=channel, attempts=attempts,
                 retry=retry, error=failure.reason)
        status = "pending" if retry else "failed"
    else:
        values = {"status": "sent", "sent_at": clock.now(), "next_attempt_at": None, "last_error": None,
                  "provider_message_id": provider_id[:200] if provider_id else None, "updated_at": clock.now()}
        log.info("notification_sent", notification_id=notification_id, channel=channel, attempts=attempts)
        status = "sent"
    async with db.unit_of_work() as session:
        # Only the holder of this attempt records it (a sender whose lease lapsed meanwhile does not).
        await session.execute(update(Notification).where(
            Notification.id == notification_id, Notification.status == "pending",
            Notification.attempts == attempts).values(**values).execution_options(synchronize_session=False))
    return status


async def deliver_due(db: Database, settings: Settings, *, now: datetime | None = None, limit: int = 50,
                      concurrency: int = 8) -> int:
    """The sweep: deliver up to ``limit`` pending rows due at ``now``, ``concurrency`` at a time;
    returns how many were tried by this call."""
    now = now or clock.now()
    async with db.unit_of_work(read_only=True) as session:
        due = list((await session.execute(select(Notification.id).where(
            Notification.status == "pending", Notification.next_attempt_at <= now,
        ).order_by(Notification.next_attempt_at).limit(limit))).scalars())
    if not due:
        return 0
    gate = asyncio.Semaphore(concurrency)

    async def one(notification_id: str) -> str | None:
        async with gate:
            return await deliver(db, settings, notification_id, now=now)

    results = await asyncio.gather(*(one(i) for i in due))
    return sum(1 for result in results if result is not None)


# --- internals ----------------------------------------------------------------------------


def _one_line(value: str) -> str:
    return _NOT_ONE_LINE.sub(" ", value).strip()


async def _ids_by_index(session: AsyncSession, execution_id: str, step_id: str) -> dict[int, str]:
    rows = await session.execute(select(Notification.recipient_index, Notification.id).where(
        Notification.execution_id == execution_id, Notification.step_id == step_id))
    return {index: row_id for index, row_id in rows.all()}


def _view(row: Notification) -> NotificationView:
    return NotificationView(
        id=row.id, execution_id=row.execution_id, step_id=row.step_id, channel=row.channel, recipient=row.recipient,
        recipient_role=row.recipient_role, subject=row.subject, body=row.body, status=row.status,
        attempts=row.attempts, next_attempt_at=row.next_attempt_at, last_error=row.last_error, sent_at=row.sent_at,
        provider_message_id=row.provider_message_id)
