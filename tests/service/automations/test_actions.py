"""A ``product_action`` step's Errand operations (errand.automations.actions), run as the engine runs
them: on a core, outside any transaction, inside ``outbox_service.acting_for(execution_id)``.

Bookings need the sandbox marketplace, so those tests build a core against the test server
(``server``: its database and its sandbox over HTTP) and compare with what REST answers; jobs,
approvals and validation run on a core of the service database (``database``), where no runner
picks a created job up, so its status stays as created.
"""

import secrets
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from errand.automations import actions
from errand.composition import build_core
from errand.identity import service as identity_service
from errand.kit.config import Settings
from errand.kit.core import Core
from errand.kit.db import Database
from errand.kit.errors import DomainError, Forbidden, InvalidRequest, InvalidState, RateLimited
from errand.kit.ids import new_id
from errand.models import AuditEvent, Job, Organization, OutboxEvent
from errand.outbox import service as outbox_service
from tests.conftest import SECRET_KEY, Org, Server

CUSTOMER = {"name": "Jane Doe", "email": "jane@example.com", "phone": "+15551234567"}


# --- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture
async def served(server: Server) -> AsyncIterator[Core]:
    """A core on the test server's database, whose providers reach its sandbox marketplace."""
    core = build_core(server.settings)
    try:
        yield core
    finally:
        await core.aclose()


def _core_on(database: Database, tmp_path: Path, **settings: Any) -> Core:
    return build_core(Settings(data_dir=tmp_path, database_url=database.url, secret_key=SECRET_KEY, **settings))


@pytest.fixture
async def core(database: Database, tmp_path: Path) -> AsyncIterator[Core]:
    """A core on the service database: no runner, no sandbox."""
    built = _core_on(database, tmp_path)
    try:
        yield built
    finally:
        await built.aclose()


async def org_id(server: Server, org: Org) -> str:
    async with server.db.unit_of_work(read_only=True) as session:
        return (await session.execute(select(Organization.id).where(Organization.name == org.name))).scalar_one()


async def act(core: Core, organization_id: str, operation: str, params: Any, *, execution_id: str,
              step_id: str = "act", agent_id: str = "agt_test", env: str = "live") -> dict[str, Any]:
    """The step as the engine runs it."""
    with outbox_service.acting_for(execution_id):
        return await actions.run(core, organization_id=organization_id, env=env, agent_id=agent_id,
                                 execution_id=execution_id, step_id=step_id, operation=operation, params=params)


def booking(day: date, time: str = "19:00", party_size: int = 2, **overrides: Any) -> dict[str, Any]:
    """A restaurant.book step's params, in the REST body's shape (snake_case, as templates often write)."""
    return {"restaurant_name": "Golden Gate Grill", "city": "San Francisco", "party_size": party_size,
            "datetime": f"{day.isoformat()}T{time}:00", "customer": dict(CUSTOMER), **overrides}


def job_request(day: date, **overrides: Any) -> dict[str, Any]:
    """An execution_job.create step's params: the ``POST /api/v1/jobs`` body."""
    return {"request": {"scenario": "restaurant", "params": {
                "restaurant_name": "Golden Gate Grill", "city": "San Francisco", "date": day.isoformat(),
                "time": "12:00", "covers": 2}},
            "profile": {"first_name": "Alex", "last_name": "Traveler", "email": "alex@example.com",
                        "phone": "+15551234567"}, **overrides}


async def add_policy(org: Org, type_: str, config: dict[str, Any]) -> None:
    created = await org.admin.post("/api/v1/policies", json={"type": type_, "config": config})
    assert created.status_code == 201, created.text


async def caught(awaitable: Any) -> DomainError:
    with pytest.raises(DomainError) as raised:
        await awaitable
    return raised.value


def paths(error: DomainError) -> set[str]:
    return {issue["path"] for issue in error.details}


# --- acting as the organization ---------------------------------------------------------------------


async def test_an_agent_acts_for_its_organization_with_every_scenario_and_may_approve_nothing(
    database: Database, organization: str
) -> None:
    async with database.unit_of_work(read_only=True) as session:
        principal = await identity_service.agent_principal(session, organization, "test", "agt_1",
                                                           rate_limit_per_day=50)
    assert (principal.organization_id, principal.env, principal.role) == (organization, "test", "agent")
    assert principal.scenarios == identity_service.SCENARIOS
    assert (principal.api_key_id, principal.actor, principal.rate_limit_per_day) == ("agent:agt_1", "agent:agt_1", 50)
    with pytest.raises(Forbidden):
        identity_service.require_admin(principal, "Approvals")


# --- restaurant.book / modify / cancel (the sandbox marketplace, through the test server) ------------


async def test_book_confirms_a_table_audited_as_the_agent_without_echoing_the_customer(
    served: Core, server: Server, org: Org, day: date
) -> None:
    organization = await org_id(server, org)
    out = await act(served, organization, "restaurant.book", booking(day), execution_id=new_id("exe"),
                    agent_id="agt_booker")
    assert out["status"] == "confirmed" and out["transaction_id"].startswith("txn_")
    assert out["confirmation_code"] and out["reservation_id"] and out["replayed"] is False
    assert (out["restaurant_name"], out["party_size"], out["amount_usd"] > 0) == ("Golden Gate Grill", 2, True)
    assert "customer" not in out and not {"jane@example.com", "Jane Doe", "+15551234567"} & set(map(str, out.values()))
    # The organization sees it as its own, made by the agent.
    detail = (await org.agent.get(f"/api/v1/transactions/{out['transaction_id']}")).json()
    assert detail["status"] == "confirmed"
    assert {e["actor"] for e in detail["events"]} == {"agent:agt_booker"}


async def test_the_same_step_books_once_and_another_step_books_again(
    served: Core, server: Server, org: Org, day: date
) -> None:
    organization, execution = await org_id(server, org), new_id("exe")
    first = await act(served, organization, "restaurant.book", booking(day), execution_id=execution, step_id="book")
    again = await act(served, organization, "restaurant.book", booking(day), execution_id=execution, step_id="book")
    assert again["transaction_id"] == first["transaction_id"] and again["replayed"] is True
    other = await act(served, organization, "restaurant.book", booking(day), execution_id=execution,
                      step_id="book_again")
    retried = await act(served, organization, "restaurant.book", booking(day), execution_id=new_id("exe"),
                        step_id="book")  # a retried execution is a new one: it books again
    assert len({first["transaction_id"], other["transaction_id"], retried["transaction_id"]}) == 3
    # The same step with other params is refused, as a reused Idempotency-Key is.
    changed = await caught(act(served, organization, "restaurant.book", booking(day, party_size=3),
                               execution_id=execution, step_id="book"))
    assert changed.code == "idempotency_conflict"


async def test_a_denying_policy_raises_what_the_route_answers(served: Core, server: Server, org: Org,
                                                              day: date) -> None:
    await add_policy(org, "SPENDING_LIMIT", {"maxAmountUsd": 1})
    denied = await caught(act(served, await org_id(server, org), "restaurant.book", booking(day),
                              execution_id=new_id("exe")))
    assert (denied.code, denied.kind) == ("policy_violation", "forbidden")
    rest = await org.agent.post("/api/v1/agent/restaurant/book", json={
        "restaurantName": "Golden Gate Grill", "city": "San Francisco", "partySize": 2,
        "datetime": f"{day.isoformat()}T19:00:00", "customer": CUSTOMER})
    assert rest.status_code == 403 and rest.json()["error"]["code"] == "POLICY_VIOLATION"


async def test_a_booking_needing_approval_answers_its_approval_which_the_agent_can_read(
    served: Core, server: Server, org: Org, day: date
) -> None:
    await add_policy(org, "APPROVAL_REQUIRED", {})
    organization = await org_id(server, org)
    out = await act(served, organization, "restaurant.book", booking(day), execution_id=new_id("exe"))
    assert out["status"] == "requires_approval" and out["approval_status"] == "pending"
    assert out["approval_id"].startswith("appr_") and out["approval_expires_at"].endswith("Z")
    seen = await act(served, organization, "approval.get", {"approval_id": out["approval_id"]},
                     execution_id=new_id("exe"), step_id="check_approval")
    assert seen == {"id": out["approval_id"], "status": "pending", "subject_type": "transaction",
                    "subject_id": out["transaction_id"], "amount_usd": out["amount_usd"],
                    "expires_at": out["approval_expires_at"]}
    # Another organization's agent does not find it; nor does the organization's other mode.
    async with server.db.unit_of_work() as session:
        other = await identity_service.get_or_create_organization(session, f"Other {secrets.token_hex(4)}")
    for organization_id, env in ((other.id, "live"), (organization, "test")):
        missing = await caught(act(served, organization_id, "approval.get", {"approvalId": out["approval_id"]},
                                   execution_id=new_id("exe"), env=env))
        assert missing.code == "approval_not_found"


async def test_modify_then_cancel_a_booking(served: Core, server: Server, org: Org, day: date) -> None:
    organization, execution = await org_id(server, org), new_id("exe")
    booked = await act(served, organization, "restaurant.book", booking(day), execution_id=execution, step_id="book")
    txn = booked["transaction_id"]
    modified = await act(served, organization, "restaurant.modify",
                         {"transaction_id": txn, "updates": {"party_size": 4, "customer": {"phone": None}}},
                         execution_id=execution, step_id="modify")
    assert (modified["transaction_id"], modified["status"], modified["party_size"]) == (txn, "modified", 4)
    cancelled = await act(served, organization, "restaurant.cancel", {"transactionId": txn, "reason": "plans changed"},
                          execution_id=execution, step_id="cancel")
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"].endswith("Z")
    assert "reason" not in cancelled and "cancel_reason" not in cancelled
    replayed = await act(served, organization, "restaurant.cancel", {"transactionId": txn, "reason": "plans changed"},
                         execution_id=execution, step_id="cancel")
    assert replayed["status"] == "cancelled" and replayed["replayed"] is True
    twice = await caught(act(served, organization, "restaurant.cancel", {"transaction_id": txn},
                             execution_id=execution, step_id="cancel_again"))
    assert isinstance(twice, InvalidState)
    detail = (await org.agent.get(f"/api/v1/transactions/{txn}")).json()
    assert (detail["status"], detail["reservation"]["partySize"], detail["cancelReason"]) == ("cancelled", 4, "plans changed")


async def test_events_of_a_steps_operations_name_its_execution(served: Core, server: Server, org: Org,
                                                               day: date) -> None:
    organization, execution = await org_id(server, org), new_id("exe")
    booked = await act(served, organization, "restaurant.book", booking(day), execution_id=execution)
    async with server.db.unit_of_work(read_only=True) as session:
        rows = (await session.execute(select(OutboxEvent).where(
            OutboxEvent.organization_id == organization, OutboxEvent.subject_id == booked["transaction_id"]))).scalars()
        events = {(row.event_type, row.execution_id) for row in rows}
    assert events == {("transaction.confirmed", execution)}


async def test_another_organizations_transaction_is_not_found(served: Core, server: Server, org: Org,
                                                              day: date) -> None:
    booked = await act(served, await org_id(server, org), "restaurant.book", booking(day), execution_id=new_id("exe"))
    async with server.db.unit_of_work() as session:
        other = await identity_service.get_or_create_organization(session, f"Other {secrets.token_hex(4)}")
    missing = await caught(act(served, other.id, "restaurant.cancel", {"transaction_id": booked["transaction_id"]},
                               execution_id=new_id("exe")))
    assert missing.code == "transaction_not_found"


# --- execution jobs, approvals, validation and limits (the service database) --------------------------


async def test_create_a_job_once_per_step_then_cancel_it(core: Core, database: Database, organization: str,
                                                         day: date) -> None:
    execution = new_id("exe")
    created = await act(core, organization, "execution_job.create", job_request(day), execution_id=execution,
                        step_id="start_job", agent_id="agt_jobs")
    assert (created["status"], created["scenario"], created["created"]) == ("pending", "restaurant", True)
    # The step's key replaces any the params give: a resumed step finds its job again.
    again = await act(core, organization, "execution_job.create",
                      job_request(day, clientMetadata={"idempotencyKey": "mine"}),
                      execution_id=execution, step_id="start_job", agent_id="agt_jobs")
    assert again["job_id"] == created["job_id"] and again["created"] is False
    async with database.unit_of_work(read_only=True) as session:
        job = (await session.execute(select(Job).where(Job.id == created["job_id"]))).scalar_one()
        events = (await session.execute(select(OutboxEvent.event_type, OutboxEvent.execution_id).where(
            OutboxEvent.subject_id == job.id))).all()
    assert (job.organization_id, job.api_key_id, job.key_env) == (organization, "agent:agt_jobs", "live")
    assert job.client_metadata == {"idempotencyKey": actions.idempotency_key(execution, "start_job")}
    assert [tuple(e) for e in events] == [("job.created", execution)]

    cancelled = await act(core, organization, "execution_job.cancel", {"job_id": created["job_id"]},
                          execution_id=execution, step_id="stop_job", agent_id="agt_jobs")
    assert (cancelled["job_id"], cancelled["status"], cancelled["replayed"]) == (created["job_id"], "cancelled", False)
    replayed = await act(core, organization, "execution_job.cancel", {"jobId": created["job_id"]},
                         execution_id=execution, step_id="stop_job", agent_id="agt_jobs")
    assert replayed["status"] == "cancelled" and replayed["replayed"] is True
    finished = await caught(act(core, organization, "execution_job.cancel", {"job_id": created["job_id"]},
                                execution_id=new_id("exe"), step_id="stop_job", agent_id="agt_jobs"))
    assert isinstance(finished, InvalidState)
    async with database.unit_of_work(read_only=True) as session:
        actors = set((await session.execute(select(AuditEvent.actor).where(AuditEvent.subject_id == job.id))).scalars())
    assert actors == {"agent:agt_jobs"}


async def test_another_organizations_job_is_not_found(core: Core, database: Database, organization: str,
                                                      day: date) -> None:
    created = await act(core, organization, "execution_job.create", job_request(day), execution_id=new_id("exe"))
    other = new_id("org")
    async with database.unit_of_work() as session:
        session.add(Organization(id=other, name=f"service-{other}"))
    missing = await caught(act(core, other, "execution_job.cancel", {"job_id": created["job_id"]},
                               execution_id=new_id("exe")))
    assert missing.code == "job_not_found"


@pytest.mark.parametrize(("operation", "params", "named"), [
    ("restaurant.book", {"restaurant_name": "Golden Gate Grill", "city": "San Francisco", "party_size": "four",
                         "datetime": "2027-03-20T19:00:00", "customer": CUSTOMER}, {"party_size"}),
    ("restaurant.book", {"restaurant_name": "Golden\x00Gate", "city": "San Francisco", "party_size": 2,
                         "datetime": "2027-03-20", "customer": {"name": "Jane", "email": "not-an-address"}},
     {"restaurant_name", "datetime", "customer.email"}),
    ("restaurant.book", {"restaurant_name": "Golden Gate Grill", "city": "San Francisco", "party_size": 2,
                         "datetime": "2027-03-20T19:00:00"}, {"customer"}),
    ("restaurant.book", {"restaurant_name": "Golden Gate Grill", "restaurantName": "Golden Gate Grill",
                         "city": "San Francisco", "party_size": 2, "datetime": "2027-03-20T19:00:00",
                         "customer": CUSTOMER}, None),
    ("restaurant.modify", {"transaction_id": 12, "updates": {"party_size": 0}}, {"transaction_id", "updates.party_size"}),
    ("restaurant.modify", {"transaction_id": "txn_1"}, {"updates"}),
    ("restaurant.cancel", {"reason": "x" * 501}, {"transaction_id", "reason"}),
    ("execution_job.create", {"request": {"scenario": "restaurant", "params": {"city": "Paris"}}},
     {"request.params.restaurant_name", "request.params.date", "request.params.time", "request.params.covers",
      "profile"}),
    ("execution_job.create", {"request": {"scenario": "spaceflight", "params": {}}, "profileId": True},
     {"request.scenario", "profileId"}),
    ("execution_job.cancel", {"jobId": "job\x00"}, {"jobId"}),
    ("approval.get", {}, {"approval_id"}),
    ("approval.get", {"approval_id": ["appr_1"]}, {"approval_id"}),
])
async def test_bad_params_are_invalid_request_naming_each_field(core: Core, organization: str, operation: str,
                                                                params: dict[str, Any], named: set[str] | None) -> None:
    error = await caught(act(core, organization, operation, params, execution_id=new_id("exe")))
    assert isinstance(error, InvalidRequest) and error.code == "invalid_request", error
    if named is not None:
        assert paths(error) == named, error.details
    for secret in ("jane@example.com", "Jane Doe", "not-an-address"):
        assert secret not in str(error) and secret not in str(error.details)


@pytest.mark.parametrize(("operation", "params", "path"), [
    ("restaurant.teleport", {}, "operation"),
    ("approval.get", ["appr_1"], ""),
    ("approval.get", None, ""),
])
async def test_an_unknown_operation_or_params_that_are_no_object_are_invalid(
    core: Core, organization: str, operation: str, params: Any, path: str
) -> None:
    error = await caught(act(core, organization, operation, params, execution_id=new_id("exe")))
    assert isinstance(error, InvalidRequest) and paths(error) == {path}


async def test_each_agent_has_the_organization_default_daily_limit_in_each_organization(
    database: Database, organization: str, tmp_path: Path
) -> None:
    limited = _core_on(database, tmp_path, default_rate_limit_per_day=2)
    other = new_id("org")
    async with database.unit_of_work() as session:
        session.add(Organization(id=other, name=f"service-{other}"))
    try:
        for _ in range(2):
            missing = await caught(act(limited, organization, "approval.get", {"approval_id": "appr_none"},
                                       execution_id=new_id("exe"), agent_id="agent_system_approval_escalation"))
            assert missing.code == "approval_not_found"
        over = await caught(act(limited, organization, "approval.get", {"approval_id": "appr_none"},
                                execution_id=new_id("exe"), agent_id="agent_system_approval_escalation"))
        assert isinstance(over, RateLimited) and over.retry_after and over.retry_after >= 1
        # The same system agent in another organization, and another agent here, count apart.
        for organization_id, agent_id in ((other, "agent_system_approval_escalation"), (organization, "agt_other")):
            elsewhere = await caught(act(limited, organization_id, "approval.get", {"approval_id": "appr_none"},
                                         execution_id=new_id("exe"), agent_id=agent_id))
            assert elsewhere.code == "approval_not_found"
    finally:
        await limited.aclose()


async def test_an_unknown_organization_is_not_found(core: Core) -> None:
    error = await caught(act(core, "org_missing", "approval.get", {"approval_id": "appr_1"},
                             execution_id=new_id("exe")))
    assert error.code == "not_found"


def test_every_product_operation_is_served() -> None:
    from errand.automations.schemas import PRODUCT_OPERATIONS

    assert set(actions._OPERATIONS) == set(PRODUCT_OPERATIONS)
