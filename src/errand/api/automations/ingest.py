"""Taking a product's event onto the automations bus: ``POST /api/events/ingest``.

The route only translates: the envelope's rules live in :func:`errand.automations.service.ingest_event`.
Matching happens later on the runner, so the answer is 202 as soon as the event is stored.
"""

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from errand.api import openapi as doc
from errand.api.automations import bodies
from errand.api.automations.auth import Caller
from errand.api.common import JSONBody, core_of
from errand.automations import service as automations_service
from errand.automations.schemas import Accepted, EventEnvelope
from errand.kit import clock, inputs
from errand.kit.boundary import PARSED_BODY

router = APIRouter()

ENVELOPE = doc.model_schema(EventEnvelope, bodies.COMPONENTS)


class IngestedEvent(BaseModel):
    """An event accepted onto the bus; agents are matched against it shortly after."""

    id: str = Field(description="The event's id on the bus (`evt_…`).")
    event_key: str = Field(description="What agents de-duplicate on: your `id`, else the event's own id.")
    status: str = Field(description="Always `accepted`.")
    received_at: str


def accepted_body(accepted: Accepted) -> dict[str, Any]:
    return {"id": accepted.id, "event_key": accepted.event_key, "status": "accepted",
            "received_at": clock.iso(accepted.received_at)}


async def _json(request: Request) -> Any:
    state = request.scope.get("state") or {}
    if PARSED_BODY in state:
        return state[PARSED_BODY]
    raw = await request.body()
    return inputs.parse_json(raw) if raw else None


@router.post("/events/ingest", status_code=202, summary="Send an event", openapi_extra=doc.json_body(
    ENVELOPE, "The event: `event_type`, `source_product` and a `payload` object; `id` (your own, for "
              "de-duplication), `client_id` and `metadata` are optional."),
    **doc.describe(IngestedEvent, status=202))
async def ingest_event(request: Request, caller: Caller) -> JSONBody:
    """Put one of your product's events on the bus; every active agent whose trigger, filters, conditions
    and client scope take it runs, shortly after this answer. Any key of your organization may send events;
    `source_product` `errand` is reserved for Errand's own events. An event with
    `metadata.agent_triggered: true` triggers no agent (the loop guard)."""
    body = await _json(request)
    async with core_of(request).db.unit_of_work() as session:
        accepted = await automations_service.ingest_event(session, caller, body)
    return JSONBody(accepted_body(accepted), status_code=202)
