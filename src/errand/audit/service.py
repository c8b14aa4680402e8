"""The append-only audit log every module writes through.

An event is written in the same transaction as the change it describes, so the log and
the state can never disagree. Messages hold ids and decisions, never personal data.
"""

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit import clock
from errand.kit.ids import new_id
from errand.models import AuditEvent

# Built once: appending is on every booking's path.
_APPEND = insert(AuditEvent.__table__)


def event(
    *,
    organization_id: str,
    subject_type: str,
    subject_id: str,
    type: str,
    actor: str,
    decision: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One event's row (column → value), for :func:`record_all`."""
    return {
        "id": new_id("evt"), "organization_id": organization_id, "subject_type": subject_type,
        "subject_id": subject_id, "type": type, "actor": actor, "decision": decision, "reason": reason,
        "data": data or {}, "created_at": clock.now(),
    }


async def record_all(session: AsyncSession, events: list[dict[str, Any]]) -> None:
    """Append ``events`` (rows made by :func:`event`) in one INSERT, in ``session``'s transaction."""
    if events:
        conn = await session.connection()
        await conn.execute(_APPEND, events)


async def record(session: AsyncSession, **fields: Any) -> None:
    """Append one event; ``fields`` are :func:`event`'s."""
    await record_all(session, [event(**fields)])


async def events_for(
    session: AsyncSession, *, organization_id: str, subject_type: str, subject_id: str, limit: int = 500
) -> list[AuditEvent]:
    rows = await session.execute(
        select(AuditEvent)
        .where(
            AuditEvent.organization_id == organization_id,
            AuditEvent.subject_type == subject_type,
            AuditEvent.subject_id == subject_id,
        )
        .order_by(AuditEvent.created_at, AuditEvent.id)
        .limit(limit)
    )
    return list(rows.scalars())
