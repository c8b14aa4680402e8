"""Helpers for the engine's service-level tests: a core on the test database, agents and events."""

from typing import Any

from errand.approvals.subjects import ApprovalSubjects
from errand.automations import bus, gates
from errand.automations.schemas import EventEnvelope
from errand.bookings import decisions as booking_decisions
from errand.identity.schemas import Principal
from errand.jobs import approvals as job_approvals
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.db import Database
from errand.kit.ids import new_id
from errand.kit.tasks import TaskCall
from errand.models import Agent
from errand.outbox.consumers import EventConsumers


class Sent:
    """A task sender that keeps what it is handed (the tests run the tasks themselves)."""

    def __init__(self) -> None:
        self.calls: list[TaskCall] = []

    async def __call__(self, calls: list[TaskCall]) -> None:
        self.calls.extend(calls)

    def of(self, name: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.name == name]


def core_on(database: Database) -> Core:
    return Core(settings=None, db=database, providers={}, rate_limits=None,  # type: ignore[arg-type]
                authenticator=None, policy_cache=None,
                approval_subjects=ApprovalSubjects(booking_decisions, job_approvals, gates),
                event_consumers=EventConsumers(bus.BusConsumer()))


def admin_of(organization: str, env: str = "live") -> Principal:
    return Principal(organization_id=organization, organization_name="x", api_key_id="key_1", key_prefix="ar_x",
                     env=env, role="admin", scenarios=("restaurant",), rate_limit_per_day=1000)


def trigger(event_type: str = "ticket.escalated", source: str = "psa",
            filters: list[Any] | None = None) -> dict[str, Any]:
    return {"type": "bus_event", "source_product": source, "event_type": event_type, "filters": filters or []}


async def add_agent(database: Database, organization: str, *, steps: list[dict[str, Any]], env: str = "live",
                    status: str = "active", **fields: Any) -> str:
    agent_id = new_id("agent")
    now = clock.now()
    async with database.unit_of_work() as session:
        session.add(Agent(**{
            "id": agent_id, "organization_id": organization, "env": env, "name": f"Agent {agent_id[-4:]}",
            "description": "", "type": "custom", "status": status, "category": None, "trigger": trigger(),
            "conditions": [], "steps": steps, "conflict_behavior": "additive", "client_scope": "all",
            "execution_limit": None, "created_at": now, "updated_at": now, **fields}))
    return agent_id


async def ingest(database: Database, organization: str, *, env: str = "live", **envelope: Any) -> str:
    body = {"event_type": "ticket.escalated", "source_product": "psa", "payload": {"ticket_id": "T-1"}, **envelope}
    async with database.unit_of_work() as session:
        accepted = await bus.store(session, organization_id=organization, env=env,
                                   envelope=EventEnvelope.model_validate(body))
    return accepted.id
