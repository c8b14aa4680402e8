"""Signed events from providers about what happened after the autopilot stopped.

A provider's site tells Errand when the end user paid on the handoff page
(``payment_completed``), opened the takeover link a captcha/needs_login job left
(``human_takeover``), or let a hold lapse (``hold_expired``), with a Standard Webhooks
signature (:mod:`errand.kit.webhooks`) over the raw body under that provider's own secret,
``settings.provider_events_signing_secret(provider_id)``; the ``errand-provider-id`` header
names the provider, and the body's ``provider_id`` must be the same.

:func:`verify` checks the headers' shape and the signature first, outside any unit of work
(nothing is read or changed otherwise); :func:`receive`, in the caller's unit of work, keeps each ``webhook-id`` once (a redelivery changes nothing and answers
``duplicate``), and keeps one payment (or lapsed hold) per provider, type and reference
(the same report under another ``webhook-id`` is a ``duplicate`` too). It finds the job the
event concerns by provider AND reference — the checkout idempotency key the autopilot typed
into that provider's form, stored with the job's checkout intent — else by the provider's
hold id in the job's result; a reference that names a job which checked out at another
provider is 409 ``provider_mismatch`` and changes nothing. It writes the job's audit event in
the same transaction as the receipt. A payment or a lapsed hold changes the job's payment
(:mod:`errand.jobs.payments`: paid moves the job to ``completed`` with the confirmation; a
hold that Errand's own sweep already expired, or a payment already recorded, changes nothing);
when the job's result named another provider than the one paid (or none: the autopilot had
given up), the payment is counted for the paid provider as ``manual_override``.
"""

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from errand.jobs import journal, payments
from errand.jobs.errors import InvalidEvent, InvalidSignature
from errand.providers.errors import ProviderMismatch
from errand.jobs.schemas import (
    MAX_SIGNATURE_LENGTH, MAX_TIMESTAMP_LENGTH, PROVIDER_ID, WEBHOOK_ID, ProviderEventIn, Receipt, VerifiedEvent,
)
from errand.kit import clock, crypto, inputs, webhooks
from errand.kit.config import Settings
from errand.kit.errors import InvalidRequest
from errand.kit.ids import new_id
from errand.kit.logging import get_logger
from errand.models import Job, ProviderEvent, ProviderOutcome

log = get_logger("errand.jobs")

# Events about one hold: the same report under another webhook-id is the same fact.
DEDUPED_TYPES = ("payment_completed", "hold_expired")


def _checked_headers(headers: Mapping[str, str]) -> str:
    """The signing provider's id, once every header the receiver reads is within its limits.

    Raises InvalidRequest ``invalid_request`` for an over-long or malformed header, and
    InvalidSignature ``invalid_signature`` when no provider is named.
    """
    msg_id = headers.get("webhook-id")
    if msg_id and not WEBHOOK_ID.fullmatch(msg_id):
        raise InvalidRequest("webhook-id must be 1 to 120 printable ASCII characters without spaces.")
    if len(headers.get("webhook-timestamp") or "") > MAX_TIMESTAMP_LENGTH:
        raise InvalidRequest(f"webhook-timestamp must be a Unix timestamp of at most {MAX_TIMESTAMP_LENGTH} digits.")
    if len(headers.get("webhook-signature") or "") > MAX_SIGNATURE_LENGTH:
        raise InvalidRequest(f"webhook-signature must be at most {MAX_SIGNATURE_LENGTH} characters.")
    provider_id = headers.get(webhooks.PROVIDER_HEADER) or ""
    if not provider_id:
        raise InvalidSignature(f"The {webhooks.PROVIDER_HEADER} header must name the signing provider.")
    if not PROVIDER_ID.fullmatch(provider_id):
        raise InvalidRequest(f"{webhooks.PROVIDER_HEADER} must be a provider id: 1 to 60 lower-case letters, "
                             "digits, dots, dashes or underscores.")
    return provider_id


def _parse(body: bytes) -> ProviderEventIn:
    """The event in ``body``, through the one input boundary (:func:`errand.kit.inputs.parse_json`).

    Raises InvalidRequest ``invalid_json`` for what is not safe JSON, InvalidEvent with one
    ``{path, message}`` per field for JSON that is not a provider event."""
    data = inputs.parse_json(body)
    try:
        return ProviderEventIn.model_validate(data)
    except ValidationError as exc:
        details = inputs.issues(exc)
        raise InvalidEvent(f"The body is not a provider event: {inputs.summarize(details)}.",
                           details=details) from None


def _dedupe_key(event: ProviderEventIn) -> str | None:
    subject = event.reference or (f"hold:{event.hold_id}" if event.hold_id else None)
    if event.type not in DEDUPED_TYPES or subject is None:
        return None
    return crypto.sha256_hex(f"{event.provider_id}\n{event.type}\n{subject}")


def verify(settings: Settings, headers: Mapping[str, str], body: bytes) -> VerifiedEvent:
    """The event in ``body``, once its headers and signature check out; reads and changes nothing.

    Raises InvalidRequest ``invalid_request`` when a header is over-long or malformed;
    InvalidSignature ``invalid_signature`` when no provider is named, or the signature, its
    headers or its timestamp do not check out under that provider's secret, or the body
    names another provider than the one that signed it; InvalidEvent ``invalid_event``
    when a well-signed body is not a provider event.
    """
    provider_id = _checked_headers(headers)
    try:
        event_id = webhooks.verify(settings.provider_events_signing_secret(provider_id), headers, body)
    except webhooks.WebhookVerificationError as exc:
        raise InvalidSignature(f"The provider event's signature does not verify: {exc}.") from None
    event = _parse(body)
    if event.provider_id != provider_id:
        raise InvalidSignature(f"The event names another provider than the one that signed it "
                               f"({provider_id}): a provider speaks only for itself.")
    return VerifiedEvent(event_id, event)


async def receive(session: AsyncSession, verified: VerifiedEvent) -> Receipt:
    """Deduplicate and apply one verified provider event (:func:`verify`), in ``session``'s transaction.

    Raises ProviderMismatch ``provider_mismatch`` when its reference names a job that checked out
    at another provider (nothing is recorded).
    """
    event_id, event = verified.event_id, verified.event
    if await session.get(ProviderEvent, event_id) is not None:
        return Receipt(event_id, event.type, duplicate=True)
    dedupe_key = _dedupe_key(event)
    if dedupe_key is not None:
        same = (await session.execute(
            select(ProviderEvent).where(ProviderEvent.dedupe_key == dedupe_key))).scalar_one_or_none()
        if same is not None:
            return Receipt(event_id, event.type, duplicate=True, job_id=same.job_id)
    job = await _job_for(session, event)
    try:
        async with session.begin_nested():
            session.add(ProviderEvent(
                id=event_id, provider_id=event.provider_id, type=event.type, payload=event.model_dump(mode="json"),
                organization_id=job.organization_id if job else None, job_id=job.id if job else None,
                dedupe_key=dedupe_key,
            ))
    except IntegrityError:
        # The same webhook id or the same report, delivered twice at once: the other delivery applied it.
        return Receipt(event_id, event.type, duplicate=True)
    if job is None:
        log.warning("provider_event_unmatched", event_id=event_id, type=event.type, provider_id=event.provider_id)
        return Receipt(event_id, event.type)
    await _apply(session, job, event)
    return Receipt(event_id, event.type, job_id=job.id)


def _reference_is(reference: str) -> Any:
    return Job.checkout_intent["key"].as_string() == reference


async def _job_for(session: AsyncSession, event: ProviderEventIn) -> Job | None:
    """The job of the event's provider with its reference, else with its hold; raises ProviderMismatch (see receive)."""
    if event.reference:
        found = (await session.execute(
            select(Job).where(_reference_is(event.reference),
                              Job.checkout_intent[("offer", "provider_id")].as_string() == event.provider_id)
            .limit(1)
        )).scalar_one_or_none()
        if found is not None:
            return found
    if event.hold_id:
        found = (await session.execute(
            select(Job).where(Job.provider_id == event.provider_id,
                              Job.result["holdId"].as_string() == event.hold_id).limit(1)
        )).scalar_one_or_none()
        if found is not None:
            return found
    if event.reference and (await session.execute(
        select(Job.id).where(_reference_is(event.reference)).limit(1)
    )).scalar_one_or_none() is not None:
        raise ProviderMismatch("The event's reference names a job that did not check out at "
                               f"{event.provider_id}; nothing was recorded.")
    return None


def _provider_of(job: Job) -> str | None:
    return (job.result or {}).get("providerId") or job.provider_id


async def _apply(session: AsyncSession, job: Job, event: ProviderEventIn) -> None:
    """Apply a matched event to its job: the payment's state (errand.jobs.payments) and its audit event."""
    data = {"occurredAt": clock.iso(event.occurred_at) if event.occurred_at else None}
    actor = f"provider:{event.provider_id}"
    if event.type == "payment_completed":
        paid_elsewhere = _provider_of(job) != event.provider_id
        recorded = await payments.record_paid(session, job, provider_id=event.provider_id, hold_id=event.hold_id,
                                              confirmation=event.confirmation, actor=actor, **data)
        if recorded and paid_elsewhere:
            session.add(ProviderOutcome(id=new_id("pout"), organization_id=job.organization_id,
                                        provider_id=event.provider_id, job_id=job.id, outcome="manual_override",
                                        reason="end_user_finished"))
    elif event.type == "human_takeover":
        await journal.record(session, organization_id=job.organization_id, job_id=job.id, type="human_takeover",
                            message=f"The end user took over at {event.provider_id} through the session link",
                            actor=actor, providerId=event.provider_id, holdId=event.hold_id, **data)
    elif event.type == "hold_expired":
        # Only the job's own hold; the first report of it (Errand's sweep or this one) is the one recorded.
        if event.hold_id in (None, (job.result or {}).get("holdId")):
            await payments.record_expired(session, job, actor=actor, holdId=event.hold_id, **data,
                                          message=f"The hold at {event.provider_id} expired unpaid (reported by "
                                                  "the provider); the handoff link no longer works")
    else:
        log.info("provider_event_ignored", type=event.type, job_id=job.id)
