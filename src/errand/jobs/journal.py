"""The job journal: the contract's job events, a log of lifecycle steps and autonomous decisions.

They live in the one append-only audit log, as events of subject ``job``; messages carry
ids, times and reasons, never the traveler's personal data.
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from errand.audit import service as audit_service
from errand.jobs.schemas import JobEvent
from errand.models import AuditEvent

SUBJECT = "job"
LIFECYCLE = ("job_created", "job_started", "step_started", "paused_payment", "job_completed", "job_failed",
             "job_aborted", "awaiting_approval")
# What providers report after the autopilot stopped (errand.jobs.provider_events).
AFTERWARDS = ("payment_completed", "human_takeover", "hold_expired")
DECISIONS = ("step_attempt", "action_allowed", "action_denied", "time_adjusted", "venue_switched",
             "provider_fallback")
# A job's GET shows its decisions and what became of its payment (errand.jobs.payments).
DECISION_LOG = DECISIONS + ("payment_completed", "hold_expired")


async def record(session: AsyncSession, *, organization_id: str, job_id: str, type: str, message: str,
                 actor: str, step_index: int = 0, **extra: Any) -> None:
    await audit_service.record(
        session, organization_id=organization_id, subject_type=SUBJECT, subject_id=job_id, type=type,
        actor=actor, reason=message, decision=extra.pop("decision", None),
        data={"stepIndex": step_index, **{k: v for k, v in extra.items() if v is not None}},
    )


def view(event: AuditEvent) -> JobEvent:
    data = dict(event.data or {})
    step = int(data.pop("stepIndex", 0))
    return JobEvent(job_id=event.subject_id, step_index=step, type=event.type, timestamp=event.created_at,
                    message=event.reason or "", extra=data)
