"""A job's state changes as Errand's own events (:mod:`errand.outbox`): the one place that names
them and builds their payload.

Each caller records its event in the transaction of the conditional UPDATE that made the
change, and only when that UPDATE changed the row, so a transition is reported exactly once
and a lost race reports nothing. The payload carries ids, statuses, the provider, the venue's
name and the amount — never the traveler's profile, the request's free text or an error text
(which may quote an approver's note).
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from errand.jobs.journal import SUBJECT
from errand.models import Job
from errand.outbox import service as outbox_service
from errand.outbox.schemas import JOB_FAILURES

# The event a run's outcome (errand.jobs.tasks._finish) reports, by the job's new status.
BY_STATUS = {"awaiting_approval": "job.awaiting_approval", "paused_payment": "job.paused_payment",
             "completed": "job.completed", "cancelled": "job.cancelled",
             **{failure: "job.failed" for failure in JOB_FAILURES}}


def about(result: dict[str, Any] | None, provider_id: str | None = None) -> dict[str, Any]:
    """What a job's checkout result (or a pending action's offer) says about the booking, for a
    payload: its provider (``provider_id`` when given), venue name and amount."""
    result = result or {}
    offer = result.get("offer") or {}
    return {"provider_id": provider_id or result.get("providerId") or offer.get("provider_id"),
            "venue_name": result.get("venueName") or offer.get("venue_name"),
            "amount_usd": result.get("totalPriceUsd") or offer.get("total_price_usd")}


async def publish(session: AsyncSession, *, organization_id: str, env: str, job_id: str, scenario: str,
                  event_type: str, status: str, **details: Any) -> None:
    """Record ``event_type`` about job ``job_id`` (now ``status``) in ``session``'s transaction.

    ``details`` go into the payload (None values are left out); a ``job.failed`` names its
    terminal status as ``reason``."""
    payload = {"job_id": job_id, "scenario": scenario, "status": status, **details}
    if event_type == "job.failed":
        payload["reason"] = status
    await outbox_service.record(session, organization_id=organization_id, env=env, event_type=event_type,
                                subject_type=SUBJECT, subject_id=job_id, payload=payload)


async def publish_for(session: AsyncSession, job: Job, event_type: str, status: str, **details: Any) -> None:
    """:func:`publish` for a loaded ``job`` (its id, organization, mode and scenario)."""
    await publish(session, organization_id=job.organization_id, env=job.key_env, job_id=job.id,
                  scenario=job.scenario, event_type=event_type, status=status, **details)
