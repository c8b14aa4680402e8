"""Signed events from providers about what happened after the autopilot stopped.

A provider's site tells Errand when the end user paid on the handoff page
(``payment_completed``), opened the takeover link a captcha/needs_login job left
(``human_takeover``), or let a hold lapse (``hold_expired``), with a Standard Webhooks
signature (:mod:`errand.kit.webhooks`) over the raw body under
``settings.provider_events_signing_secret()``.

:func:`receive` verifies the signature first (nothing is read or changed otherwise), keeps
each ``webhook-id`` once (a redelivery changes nothing and answers ``duplicate``), finds the
job the event concerns — by ``reference``, the checkout idempotency key the autopilot typed
into the provider's form and the executor stored with the job's checkout intent, else by the
provider's hold id in the job's result — and writes the job's audit event in the same
transaction as the receipt. A payment also puts the confirmation into the job's result; when
the job's result named another provider than the one paid (or none: the autopilot had given
up), the payment is counted for the paid provider as ``manual_override``.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from errand.jobs import events
from errand.kit import clock, webhooks
from errand.kit.core import Core
from errand.kit.errors import InvalidRequest, Unauthorized
from errand.kit.ids import new_id
from errand.kit.logging import get_logger
from errand.models import Job, ProviderEvent, ProviderOutcome

log = get_logger("errand.jobs")


class ProviderEventIn(BaseModel):
    # Only these fields are kept: a provider may name the guest in its events, and Errand
    # stores no personal data it has no use for (the payload is kept in clear).
    model_config = ConfigDict(extra="ignore")

    type: str = Field(min_length=1, max_length=40)
    provider_id: str = Field(min_length=1, max_length=60)
    hold_id: str | None = Field(default=None, max_length=120)
    reference: str | None = Field(default=None, max_length=255)
    confirmation: str | None = Field(default=None, max_length=120)
    occurred_at: datetime | None = None


@dataclass
class Receipt:
    event_id: str
    type: str
    duplicate: bool = False
    job_id: str | None = None


async def receive(core: Core, headers: Mapping[str, str], body: bytes) -> Receipt:
    """Verify, deduplicate and apply one provider event.

    Raises Unauthorized ``invalid_signature`` when the signature, its headers or its timestamp
    do not check out, and InvalidRequest when a well-signed body is not a provider event.
    """
    try:
        event_id = webhooks.verify(core.settings.provider_events_signing_secret(), headers, body)
    except webhooks.WebhookVerificationError as exc:
        raise Unauthorized("invalid_signature", f"The provider event's signature does not verify: {exc}.") from None
    try:
        event = ProviderEventIn.model_validate(json.loads(body))
    except (ValueError, UnicodeDecodeError, ValidationError) as exc:
        raise InvalidRequest(f"The body is not a provider event: {exc}", code="invalid_event") from None
    try:
        async with core.db.unit_of_work() as session:
            if await session.get(ProviderEvent, event_id) is not None:
                return Receipt(event_id, event.type, duplicate=True)
            job = await _job_for(session, event)
            session.add(ProviderEvent(
                id=event_id, provider_id=event.provider_id, type=event.type, payload=event.model_dump(mode="json"),
                organization_id=job.organization_id if job else None, job_id=job.id if job else None,
            ))
            await session.flush()
            if job is not None:
                await _apply(session, job, event)
    except IntegrityError:
        # The same webhook id, delivered twice at once: the other delivery applied it.
        return Receipt(event_id, event.type, duplicate=True)
    if job is None:
        log.warning("provider_event_unmatched", event_id=event_id, type=event.type, provider_id=event.provider_id)
    return Receipt(event_id, event.type, job_id=job.id if job else None)


async def _job_for(session: Any, event: ProviderEventIn) -> Job | None:
    if event.reference:
        found = (await session.execute(
            select(Job).where(Job.checkout_intent["key"].as_string() == event.reference).limit(1)
        )).scalar_one_or_none()
        if found is not None:
            return found
    if event.hold_id:
        return (await session.execute(
            select(Job).where(Job.provider_id == event.provider_id,
                              Job.result["holdId"].as_string() == event.hold_id).limit(1)
        )).scalar_one_or_none()
    return None


def _provider_of(job: Job) -> str | None:
    return (job.result or {}).get("providerId") or job.provider_id


async def _apply(session: Any, job: Job, event: ProviderEventIn) -> None:
    data = {"providerId": event.provider_id, "holdId": event.hold_id,
            "occurredAt": clock.iso(event.occurred_at) if event.occurred_at else None}
    actor = f"provider:{event.provider_id}"
    if event.type == "payment_completed":
        paid_elsewhere = _provider_of(job) != event.provider_id
        result = {**(job.result or {}), "confirmation": event.confirmation, "paidAt": clock.iso(clock.now()),
                  "paidProviderId": event.provider_id}
        if not (job.result or {}).get("providerId"):
            result.update(providerId=event.provider_id, holdId=event.hold_id)
        await session.execute(update(Job).where(Job.id == job.id).values(result=result, updated_at=clock.now()))
        await events.record(session, organization_id=job.organization_id, job_id=job.id, type="payment_completed",
                            message=f"The end user paid at {event.provider_id}: confirmation {event.confirmation}",
                            actor=actor, confirmation=event.confirmation, **data)
        if paid_elsewhere:
            session.add(ProviderOutcome(id=new_id("pout"), organization_id=job.organization_id,
                                        provider_id=event.provider_id, job_id=job.id, outcome="manual_override",
                                        reason="end_user_finished"))
    elif event.type == "human_takeover":
        await events.record(session, organization_id=job.organization_id, job_id=job.id, type="human_takeover",
                            message=f"The end user took over at {event.provider_id} through the session link",
                            actor=actor, **data)
    elif event.type == "hold_expired":
        if (job.result or {}).get("holdId") == event.hold_id:
            result = {**job.result, "holdStatus": "expired"}
            await session.execute(update(Job).where(Job.id == job.id).values(result=result, updated_at=clock.now()))
        await events.record(session, organization_id=job.organization_id, job_id=job.id, type="hold_expired",
                            message=f"The hold at {event.provider_id} expired unpaid", actor=actor, **data)
    else:
        log.info("provider_event_ignored", type=event.type, job_id=job.id)
