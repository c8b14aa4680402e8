"""The payment after a handoff: what a job says about it, and how it changes.

A job that stops at the payment page (``paused_payment``) waits for the end user to pay
there: its payment is ``awaiting`` until the hold's expiry the provider gave at checkout
(recorded at pause time, :func:`awaiting`). From there it moves once:

- to ``paid`` when the provider reports the payment (:func:`record_paid`, from a
  ``payment_completed`` provider event): the job becomes ``completed`` with the confirmation in
  its ``summary`` and ``result``, ``completedAt`` is the time of payment, the handoff link is
  gone (the booking is made) and the decision log gets ``payment_completed``. The provider's word
  is trusted over Errand's clock: a payment reported for a hold Errand had already seen expire
  is recorded as paid too. A job the autopilot had given up on (no_availability, needs_login,
  captcha, error) that the end user finished at a provider (through its session link) becomes
  ``completed`` the same way; an active or cancelled job keeps its status and shows the payment.
- to ``expired`` when the hold lapses unpaid (:func:`record_expired`): whichever comes first of
  Errand's own sweep of due holds (:func:`expire_due`, run periodically, so it does not depend on
  the provider telling us) and the provider's ``hold_expired`` event. The status stays
  ``paused_payment`` — terminal in the execution contract, so a client that stopped there stays
  correct — the handoff link is no longer shown (it would open a dead page), the summary says the
  hold lapsed, and the decision log gets ``hold_expired``. The second report changes nothing.

Each change is one conditional UPDATE on the payment's current state, in the caller's
transaction with its audit event, so two reports racing apply once.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.jobs import journal, publishing
from errand.jobs.schemas import Payment
from errand.kit import clock
from errand.kit.logging import get_logger
from errand.models import Job

log = get_logger("errand.jobs")

AWAITING, PAID, EXPIRED = "awaiting", "paid", "expired"
# Statuses a reported payment turns into ``completed``: the job said "not booked (yet)", the provider says booked.
COMPLETED_BY_PAYMENT = ("paused_payment", "no_availability", "needs_login", "captcha", "error")
# How many due handoffs one sweep expires; the next sweep takes the rest.
SWEEP_BATCH = 200
ACTOR = "errand"


def awaiting(result: dict[str, Any] | None) -> dict[str, Any]:
    """The payment columns of a job that just paused at payment, from its checkout ``result``."""
    expires = (result or {}).get("holdExpiresAt")
    return {"payment_status": AWAITING, "payment_expires_at": _parse(expires), "paid_at": None}


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return clock.as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def view(job: Job, now: datetime | None = None) -> Payment | None:
    """The job's payment as its GET shows it; None before a handoff.

    A hold past its expiry shows ``expired`` even in the seconds before the sweep records it.
    """
    if job.payment_status is None:
        return None
    status = job.payment_status
    expires = clock.as_utc(job.payment_expires_at) if job.payment_expires_at else None
    if status == AWAITING and expires is not None and expires <= (now or clock.now()):
        status = EXPIRED
    result = job.result or {}
    return Payment(status=status, expires_at=expires, paid_at=job.paid_at if status == PAID else None,
                   confirmation=result.get("confirmation") if status == PAID else None)


def handoff_url(job: Job, payment: Payment | None) -> str | None:
    """The handoff link while the end user can still pay there; None once paid or expired."""
    if payment is not None and payment.status != AWAITING:
        return None
    return job.handoff_url


def _what(job: Job, provider_id: str) -> str:
    result = job.result or {}
    venue = result.get("venueName")
    when = str(result.get("start") or "").replace("T", " ")
    return f"{venue} ({when}) at {provider_id}" if venue and when else f"the booking at {provider_id}"


async def record_paid(session: AsyncSession, job: Job, *, provider_id: str, hold_id: str | None,
                      confirmation: str | None, actor: str, **audit: Any) -> bool:
    """Record the end user's payment at ``provider_id``; False (nothing changed) when it was recorded before.

    Puts the confirmation, the time and the paid provider into the job's result (and the
    provider and hold when the autopilot had given up), moves a paused or failed job to
    ``completed`` (see the module's docstring) and writes ``payment_completed``.
    """
    now = clock.now()
    result = {**(job.result or {}), "confirmation": confirmation, "paidAt": clock.iso(now),
              "paidProviderId": provider_id}
    if not (job.result or {}).get("providerId"):
        result.update(providerId=provider_id, holdId=hold_id)
    # Decided in the UPDATE itself, on the status the row has then (a runner may be finishing it).
    completes = Job.status.in_(COMPLETED_BY_PAYMENT)
    summary = f"Booked {_what(job, provider_id)}: the end user paid, confirmation {confirmation}"
    changed = await session.execute(
        update(Job).where(Job.id == job.id, (Job.payment_status.is_(None)) | (Job.payment_status != PAID))
        .values(payment_status=PAID, paid_at=now, result=result, handoff_url=None, updated_at=now,
                status=case((completes, "completed"), else_=Job.status),
                completed_at=case((completes, now), else_=Job.completed_at),
                summary=case((completes, summary), else_=Job.summary),
                error=case((completes, None), else_=Job.error))
        # Whether this payment completed the job: only then is completed_at the payment's time.
        .returning(Job.status, Job.completed_at == Job.paid_at)
        .execution_options(synchronize_session=False))
    row = changed.first()
    if row is None:
        return False
    status, completed = row[0], bool(row[1])
    details = publishing.about(result, provider_id)
    await publishing.publish_for(session, job, "job.payment_completed", status, **details)
    if completed:
        await publishing.publish_for(session, job, "job.completed", status, **details)
    await journal.record(session, organization_id=job.organization_id, job_id=job.id, type="payment_completed",
                        message=f"The end user paid at {provider_id}: confirmation {confirmation}", actor=actor,
                        providerId=provider_id, holdId=hold_id, confirmation=confirmation, **audit)
    return True


async def record_expired(session: AsyncSession, job: Job, *, actor: str, message: str, **audit: Any) -> bool:
    """Record that the job's hold lapsed unpaid; False (nothing changed) unless the payment was awaited.

    The status stays ``paused_payment``; the handoff link goes, the summary says why, the
    decision log gets ``hold_expired`` with ``message``.
    """
    now = clock.now()
    provider_id = (job.result or {}).get("providerId") or job.provider_id or "the provider"
    expires = clock.iso(job.payment_expires_at) if job.payment_expires_at else None
    result = {**(job.result or {}), "holdStatus": EXPIRED}
    changed = await session.execute(
        update(Job).where(Job.id == job.id, Job.payment_status == AWAITING).values(
            payment_status=EXPIRED, handoff_url=None, result=result, updated_at=now,
            summary=f"The hold for {_what(job, provider_id)} expired unpaid; nothing was booked",
        ))
    if changed.rowcount != 1:
        return False
    await publishing.publish_for(session, job, "job.hold_expired", job.status, hold_status=EXPIRED,
                             **publishing.about(result))
    await journal.record(session, organization_id=job.organization_id, job_id=job.id, type="hold_expired",
                        message=message, actor=actor,
                        **{"providerId": provider_id, "holdId": result.get("holdId"), "expiresAt": expires, **audit})
    return True


async def expire_due(session: AsyncSession) -> int:
    """Expire every awaited payment whose recorded hold expiry has passed; returns how many.

    Errand's own clock against the expiry it recorded at pause time, for every kind of
    provider: nobody needs to open the handoff page, and no provider needs to report it.
    Safe to run in several processes at once (each payment flips once).
    """
    now = clock.now()
    due = (await session.execute(
        select(Job).where(Job.payment_status == AWAITING, Job.payment_expires_at <= now)
        .order_by(Job.payment_expires_at).limit(SWEEP_BATCH)
    )).scalars().all()
    expired = 0
    for job in due:
        at = clock.iso(job.payment_expires_at)
        if await record_expired(session, job, actor=ACTOR,
                                message=f"The hold expired unpaid at {at}; the handoff link no longer works"):
            expired += 1
    if expired:
        log.info("handoffs_expired", count=expired)
    return expired
