"""An agent made and activated over HTTP runs when a product's event is ingested: a branch, a
wait, an approval gate decided over HTTP, and a branch on the decision, to completion on the
server's own runner (the executions are read from the database: their API is built elsewhere)."""

import asyncio
from typing import Any

from sqlalchemy import select

from errand.models import Execution, ExecutionStep
from tests.api.automations.support import AGENTS, create
from tests.conftest import Org, Server

INGEST = "/api/events/ingest"
POLL_SECONDS = 60


async def executions_of(server: Server, agent_id: str) -> list[Execution]:
    async with server.db.unit_of_work(read_only=True) as session:
        return list((await session.execute(select(Execution).where(Execution.agent_id == agent_id))).scalars())


async def until(server: Server, agent_id: str, status: str) -> Execution:
    """The agent's one execution once it reaches ``status`` (polled; fails after POLL_SECONDS)."""
    for _ in range(POLL_SECONDS * 10):
        rows = await executions_of(server, agent_id)
        if rows and rows[0].status == status:
            return rows[0]
        assert not rows or rows[0].status not in {"completed", "failed", "cancelled"} - {status}, (
            rows[0].status, rows[0].reason, rows[0].error)
        await asyncio.sleep(0.1)
    raise AssertionError(f"the execution never became {status}")


async def receipts(server: Server, execution_id: str) -> dict[str, Any]:
    async with server.db.unit_of_work(read_only=True) as session:
        rows = (await session.execute(select(ExecutionStep).where(ExecutionStep.execution_id == execution_id)))
        return {r.step_id: (r.status, r.output) for r in rows.scalars()}


STEPS = [
    {"type": "branch", "id": "is_p1", "condition": 'event_payload.priority == "p1"', "if_false": "end"},
    {"type": "wait", "id": "breathe", "duration": "1s"},
    {"type": "approval_gate", "id": "gate", "message": "Page the on-call for {{ event_payload.ticket_id }}?",
     "timeout_minutes": 60},
    {"type": "branch", "id": "approved", "condition": 'steps.gate.output.decision == "approved"'},
]


async def test_an_ingested_event_runs_an_agent_through_its_gate(server: Server, org: Org) -> None:
    event_type = f"ticket.escalated_{id(org)}"
    agent = await create(org.admin, steps=STEPS, trigger={
        "type": "bus_event", "source_product": "psa", "event_type": event_type,
        "filters": [{"field": "priority", "operator": "in", "value": ["p1", "p2"]}]})
    activated = await org.admin.put(f"{AGENTS}/{agent['id']}", json={"status": "active"})
    assert activated.status_code == 200, activated.text

    ignored = await org.admin.post(INGEST, json={"event_type": event_type, "source_product": "psa",
                                                 "payload": {"ticket_id": "T-0", "priority": "p4"}})
    sent = await org.admin.post(INGEST, json={"id": "psa-1", "event_type": event_type, "source_product": "psa",
                                              "client_id": "acme", "payload": {"ticket_id": "T-7", "priority": "p1"}})
    assert ignored.status_code == sent.status_code == 202

    waiting = await until(server, agent["id"], "waiting_approval")
    assert waiting.event_key == "psa-1" and [s["id"] for s in waiting.definition["steps"]] == [s["id"] for s in STEPS]
    pending = (await org.admin.get("/api/approvals", params={"status": "pending"})).json()["approvals"]
    gate = next(a for a in pending if a["execution_id"] == waiting.id)
    assert gate["message"] == "Page the on-call for T-7?" and gate["action"]["step_id"] == "gate"

    decided = await org.admin.post(f"/api/approvals/{gate['id']}/decision", json={"decision": "approved",
                                                                                  "note": "yes"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved" and decided.json()["execution_status"] == "running"
    done = await until(server, agent["id"], "completed")
    trace = await receipts(server, done.id)
    assert trace["is_p1"] == ("completed", {"result": True, "next": "breathe"})
    assert trace["breathe"][0] == "completed" and trace["gate"][0] == "completed"
    assert trace["gate"][1]["decision"] == "approved" and trace["gate"][1]["note"] == "yes"
    assert trace["approved"] == ("completed", {"result": True, "next": "end"})
    assert len(await executions_of(server, agent["id"])) == 1  # the p4 event matched no filter

    again = await org.admin.post(f"/api/approvals/{gate['id']}/decision", json={"decision": "denied"})
    assert again.status_code == 409 and again.json()["error"] == "invalid_state"
