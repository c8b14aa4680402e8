"""The automations bus: events taken in from products, and Errand's own from the outbox.

Both become one :class:`~errand.models.AutomationEvent` row (payload encrypted at rest) and a
call of ``errand.automations.match_event`` sent after the transaction commits; matching never
happens while a request or the outbox dispatcher waits (:mod:`errand.automations.matching`).

- A product's event (``POST /api/events/ingest``, RESOLUTIONS.md "Automations dialect"): the
  envelope ``{id?, event_type, source_product, client_id?, payload, metadata?}``
  (:class:`EventEnvelope`), checked strictly; ``event_key`` is its ``id`` when given (agents
  de-duplicate on it) else the event's own id. ``source_product`` ``errand`` is Errand's own.
- Errand's own (:func:`accept`, an :class:`errand.outbox.consumers.EventConsumer`):
  ``source_product`` ``errand``, ``event_key`` ``errand:<outbox id>``, the outbox payload (ids,
  statuses, amounts: never personal data), and ``metadata`` ``{"agent_triggered": true,
  "execution_id": …}`` when an execution's step caused it (the loop guard). Only when some agent
  could match (an active agent of that organization and mode, or a system agent it has not
  paused, triggered by ``errand`` and that event type), so the booking path adds no rows when
  nobody listens.
"""

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.automations import system_agents
from errand.automations.schemas import MATCH_EVENT, Accepted, EventEnvelope
from errand.kit import clock, inputs
from errand.kit.errors import InvalidRequest
from errand.kit.ids import new_id
from errand.kit.tasks import enqueue
from errand.models import Agent, AgentStatus, AutomationEvent
from errand.outbox.schemas import SOURCE_PRODUCT, Event

def parse_envelope(body: Any) -> EventEnvelope:
    """``body`` (a parsed JSON body) as an :class:`EventEnvelope`; InvalidRequest
    (``invalid_request``) naming each bad field otherwise (``body`` when it is no object)."""
    if not isinstance(body, Mapping):
        message = "a JSON request body is required" if body is None else "must be a JSON object"
        raise InvalidRequest(f"body: {message}.", details=[{"path": "body", "message": message}])
    try:
        return EventEnvelope.model_validate(body)
    except ValidationError as exc:
        found = inputs.issues(exc)
        raise InvalidRequest(f"The event is invalid: {inputs.summarize(found)}.", details=found) from None


async def store(session: AsyncSession, *, organization_id: str, env: str, envelope: EventEnvelope) -> Accepted:
    """Write one ingested event and enqueue its matching (sent once ``session`` commits)."""
    event_id = new_id("evt")
    row = AutomationEvent(id=event_id, event_key=envelope.id or event_id, organization_id=organization_id, env=env,
                          source_product=envelope.source_product, event_type=envelope.event_type,
                          client_id=envelope.client_id, payload=envelope.payload,
                          event_metadata=envelope.metadata, received_at=clock.now())
    session.add(row)
    await session.flush()
    enqueue(session, MATCH_EVENT, event_id=event_id)
    return Accepted(id=event_id, event_key=row.event_key, received_at=row.received_at)


# --- Errand's own events (the outbox consumer) ---------------------------------------------

_SYSTEM_BY_TYPE: dict[str, tuple[str, ...]] = {}
for _agent in system_agents.SYSTEM_AGENTS:
    _trigger = _agent["trigger"]
    if _trigger["source_product"] == SOURCE_PRODUCT:
        _SYSTEM_BY_TYPE[_trigger["event_type"]] = (*_SYSTEM_BY_TYPE.get(_trigger["event_type"], ()), _agent["id"])


async def could_match(session: AsyncSession, *, organization_id: str, env: str, source_product: str,
                      event_type: str) -> bool:
    """Whether any agent of ``organization_id`` in ``env`` (its active ones, or a system agent it
    has not paused) is triggered by ``source_product`` and ``event_type``: two indexed reads at most."""
    system = _SYSTEM_BY_TYPE.get(event_type, ()) if source_product == SOURCE_PRODUCT else ()
    if system:
        paused = set((await session.execute(select(AgentStatus.agent_id).where(
            AgentStatus.organization_id == organization_id, AgentStatus.env == env,
            AgentStatus.agent_id.in_(system), AgentStatus.status == "paused"))).scalars())
        if set(system) - paused:
            return True
    triggers = (await session.execute(select(Agent.trigger).where(
        Agent.organization_id == organization_id, Agent.env == env, Agent.status == "active"))).scalars()
    return any(isinstance(t, Mapping) and t.get("source_product") == source_product
               and t.get("event_type") == event_type for t in triggers)


async def accept(session: AsyncSession, event: Event) -> None:
    """Take one of Errand's own events onto the bus when some agent could match it (the outbox
    consumer; in the dispatcher's transaction: no network, no commit)."""
    if not await could_match(session, organization_id=event.organization_id, env=event.env,
                             source_product=SOURCE_PRODUCT, event_type=event.event_type):
        return
    metadata: dict[str, Any] = {}
    if event.execution_id is not None:
        metadata = {"agent_triggered": True, "execution_id": event.execution_id}
    event_id = new_id("evt")
    session.add(AutomationEvent(id=event_id, event_key=f"errand:{event.id}", organization_id=event.organization_id,
                                env=event.env, source_product=SOURCE_PRODUCT, event_type=event.event_type,
                                client_id=None, payload=dict(event.payload), event_metadata=metadata,
                                received_at=clock.now()))
    await session.flush()
    enqueue(session, MATCH_EVENT, event_id=event_id)


class BusConsumer:
    """:func:`accept` as an :class:`errand.outbox.consumers.EventConsumer` object."""

    async def accept(self, session: AsyncSession, event: Event) -> None:
        await accept(session, event)
