"""The outbox of Errand's own events: recorded with the change, dispatched after it.

A domain calls :func:`record` in the transaction that makes the change (a job completing, a
booking confirmed, an approval decided), so an event exists exactly when its change was
committed: a rollback records nothing, a crash after the commit loses nothing. The
vocabulary is :data:`errand.outbox.schemas.EVENT_TYPES` (RESOLUTIONS.md, "Errand's own event
types"); ``source_product`` is ``errand``.

:func:`dispatch_batch` hands undispatched events to every registered consumer
(:mod:`errand.outbox.consumers`) in one transaction with marking them dispatched, so each
consumer receives each event once (see :mod:`errand.outbox.tasks` for who calls it).
Every read a consumer makes (:func:`events_for`) is filtered by organization and mode.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit import clock
from errand.kit.tasks import enqueue_once
from errand.models import OutboxEvent
from errand.outbox.consumers import EventConsumers
from errand.outbox.schemas import EVENT_TYPES, PERSONAL_KEYS, Event

DISPATCH = "errand.outbox.dispatch"
_EXECUTION: ContextVar[str | None] = ContextVar("errand.outbox.execution_id", default=None)
ENVS = ("test", "live")
# Built once: recording is on every booking's path.
_APPEND = insert(OutboxEvent.__table__)


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return clock.iso(value)
    return value


async def record(session: AsyncSession, *, organization_id: str, env: str, event_type: str, subject_type: str,
                 subject_id: str, payload: dict[str, Any]) -> None:
    """Record one event in ``session``'s transaction and enqueue the dispatch (sent once it commits).

    ``payload``: JSON values (a Decimal becomes a number, a datetime ISO 8601 UTC; None values are
    left out). Raises ValueError — a programming error, never a client's — for an event type
    outside :data:`EVENT_TYPES`, a mode other than test/live, or a payload key that would carry
    personal data (:data:`errand.outbox.schemas.PERSONAL_KEYS`)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"{event_type!r} is not one of Errand's event types.")
    if env not in ENVS:
        raise ValueError(f"env must be test or live, not {env!r}.")
    personal = PERSONAL_KEYS.intersection(payload)
    if personal:
        raise ValueError(f"An event's payload carries no personal data: {sorted(personal)}.")
    conn = await session.connection()
    await conn.execute(_APPEND, {
        "organization_id": organization_id, "env": env, "event_type": event_type, "subject_type": subject_type,
        "subject_id": subject_id, "payload": {k: _json(v) for k, v in payload.items() if v is not None},
        "occurred_at": clock.now(), "dispatched_at": None, "execution_id": _EXECUTION.get(),
    })
    enqueue_once(session, DISPATCH)


@contextmanager
def acting_for(execution_id: str) -> Iterator[None]:
    """Within the block (and the tasks it starts), every event recorded is marked as caused by
    automation execution ``execution_id`` (a ``product_action`` step): automations take it with
    ``metadata.agent_triggered`` and no agent reacts to it (the loop guard, RESOLUTIONS.md)."""
    token = _EXECUTION.set(execution_id)
    try:
        yield
    finally:
        _EXECUTION.reset(token)


def view(row: OutboxEvent) -> Event:
    return Event(id=row.id, organization_id=row.organization_id, env=row.env, event_type=row.event_type,
                 subject_type=row.subject_type, subject_id=row.subject_id, payload=dict(row.payload or {}),
                 occurred_at=clock.as_utc(row.occurred_at), execution_id=row.execution_id)


async def events_for(session: AsyncSession, *, organization_id: str, env: str, after_id: int = 0,
                     event_types: tuple[str, ...] | None = None, subject_id: str | None = None,
                     limit: int = 100) -> list[Event]:
    """One organization's events in one mode, oldest first, after ``after_id`` (a keyset: pass the
    last id read), optionally only ``event_types`` or one subject's. Never another organization's
    or the other mode's."""
    query = select(OutboxEvent).where(OutboxEvent.organization_id == organization_id, OutboxEvent.env == env,
                                      OutboxEvent.id > after_id)
    if event_types is not None:
        query = query.where(OutboxEvent.event_type.in_(event_types))
    if subject_id is not None:
        query = query.where(OutboxEvent.subject_id == subject_id)
    rows = await session.execute(query.order_by(OutboxEvent.id).limit(max(1, min(limit, 500))))
    return [view(row) for row in rows.scalars()]


async def any_undispatched(session: AsyncSession) -> bool:
    """Whether any event waits for dispatch (a read, so an idle sweep never takes SQLite's writer lock)."""
    return (await session.execute(
        select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None)).limit(1))).first() is not None


async def dispatch_batch(session: AsyncSession, consumers: EventConsumers, limit: int = 100) -> int:
    """Hand up to ``limit`` undispatched events, oldest first, to every consumer, and mark them
    dispatched, in ``session``'s transaction; returns how many.

    On PostgreSQL the batch is taken ``FOR UPDATE SKIP LOCKED``: two dispatchers never take the
    same event, and each skips what another holds (so events of different batches may reach a
    consumer out of id order). On SQLite the writer lock serialises dispatchers. A consumer that
    raises propagates: the caller's transaction rolls back and the batch stays undispatched, for
    every consumer, until the next dispatch."""
    rows = list((await session.execute(
        select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None)).order_by(OutboxEvent.id).limit(limit)
        .with_for_update(skip_locked=True)
    )).scalars())
    if not rows:
        return 0
    for row in rows:
        event = view(row)
        for consumer in consumers:
            await consumer.accept(session, event)
    await session.execute(update(OutboxEvent).where(OutboxEvent.id.in_([row.id for row in rows]))
                          .values(dispatched_at=clock.now()).execution_options(synchronize_session=False))
    return len(rows)
