"""Approval subjects through their registry: the periodic work and a decision reach the
handler registered for the approval's subject type, whatever that subject is."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from errand.approvals import service as approvals_service
from errand.approvals.subjects import ApprovalSubjects
from errand.bookings import decisions as booking_decisions
from errand.guard import service as guard_service
from errand.identity.schemas import Principal
from errand.jobs import approvals as job_approvals
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.db import Database
from errand.kit.ids import new_id
from errand.models import Approval, Transaction


class FakeProvider:
    """Records what the booking subject asks of the provider."""

    def __init__(self) -> None:
        self.released: list[str] = []

    async def release_hold(self, hold_id: str) -> None:
        self.released.append(hold_id)


def core_on(database: Database, provider: FakeProvider, *handlers: Any) -> Core:
    return Core(settings=None, db=database, providers={"fake": provider}, rate_limits=None, authenticator=None,
                policy_cache=None, approval_subjects=ApprovalSubjects(*(handlers or (booking_decisions, job_approvals))))


async def gated_booking(database: Database, organization: str, *, expires_in: timedelta) -> tuple[str, str]:
    """A booking waiting on a pending approval (its hold ``hold-<txn>``): (transaction id, approval id)."""
    txn_id = new_id("txn")
    action = {"localStart": "2031-05-01T19:00:00", "partySize": 2}
    async with database.unit_of_work() as session:
        session.add(Transaction(
            id=txn_id, organization_id=organization, env="live", scenario="restaurant", status="requires_approval",
            provider_id="fake", venue_id="v1", venue_name="Fake Bistro", city="Lisbon", timezone="UTC", party_size=2,
            starts_at=clock.now() + timedelta(days=30), price_per_person_usd=Decimal("10"),
            amount_usd=Decimal("20"), customer={"name": "Ada"}))
        await session.flush()
        approval = await guard_service.approvals.request(
            session, organization_id=organization, env="live", scenario="restaurant", subject_type="transaction",
            subject_id=txn_id, action=action, amount_usd=Decimal("20"), message="Book?", policy_id=None,
            ttl=expires_in)
        txn = await session.get(Transaction, txn_id)
        txn.pending_action = {"approval_id": approval.id, "hold_id": f"hold-{txn_id}", "kind": "book",
                              "action": action}
    return txn_id, approval.id


def admin_of(organization: str) -> Principal:
    return Principal(organization_id=organization, organization_name="x", api_key_id="key_1", key_prefix="ar_x",
                     env="live", role="admin", scenarios=("restaurant",), rate_limit_per_day=1000)


async def statuses(database: Database, txn_id: str, approval_id: str) -> tuple[str, str]:
    async with database.unit_of_work(read_only=True) as session:
        txn = await session.get(Transaction, txn_id)
        approval = await session.get(Approval, approval_id)
        return txn.status, approval.status


async def test_a_decided_booking_approval_is_finished_by_its_subject(database: Database, organization: str) -> None:
    provider = FakeProvider()
    core = core_on(database, provider)
    txn_id, approval_id = await gated_booking(database, organization, expires_in=timedelta(hours=1))
    # The decision was recorded, then the process died before carrying it out.
    async with database.unit_of_work() as session:
        approval = await session.get(Approval, approval_id)
        await guard_service.approvals.transition(session, approval, "denied", decided_by="api_key:ar_x", note=None)

    assert await approvals_service.finish_decided_approvals(core) >= 1

    assert await statuses(database, txn_id, approval_id) == ("denied", "denied")
    assert provider.released == [f"hold-{txn_id}"]
    await approvals_service.finish_decided_approvals(core)  # finishing again does nothing more
    assert provider.released == [f"hold-{txn_id}"]


async def test_a_due_booking_approval_is_expired_through_the_registry(database: Database, organization: str) -> None:
    provider = FakeProvider()
    core = core_on(database, provider)
    txn_id, approval_id = await gated_booking(database, organization, expires_in=timedelta(seconds=-1))
    principal = admin_of(organization)

    assert await approvals_service.expire_due_approvals(core, principal) == 1

    assert await statuses(database, txn_id, approval_id) == ("expired", "expired")
    assert provider.released == [f"hold-{txn_id}"]


class Gate:
    """A subject of another kind (as an automation's execution step will be): one registration."""

    subject_type = "gate"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def decide(self, core: Core, principal: Principal, approval: Approval, decision: str,
                     note: str | None) -> str | None:
        async with core.db.unit_of_work() as session:
            approval = await guard_service.approvals.get(session, principal.organization_id, approval.id)
            await guard_service.approvals.transition(session, approval, decision, decided_by=principal.actor, note=note)
        self.calls.append(("decide", approval.id))
        return "resumed"

    async def expire(self, core: Core, approval: Approval) -> None:
        self.calls.append(("expire", approval.id))

    async def finish_decided(self, core: Core) -> int:
        self.calls.append(("finish", ""))
        return 0


async def test_a_new_subject_is_one_registration(database: Database, organization: str) -> None:
    gate = Gate()
    core = core_on(database, FakeProvider(), gate)
    async with database.unit_of_work() as session:
        approval = await guard_service.approvals.request(
            session, organization_id=organization, env="live", scenario="restaurant", subject_type="gate",
            subject_id="step_1", action={"step": 1}, amount_usd=Decimal("0"), message="Go on?", policy_id=None,
            ttl=timedelta(hours=1))
    principal = admin_of(organization)

    view, status = await approvals_service.decide_approval(core, principal, approval.id, "approved", "fine")

    assert (view.status, view.decided_by, status) == ("approved", "api_key:ar_x", "resumed")
    assert await approvals_service.finish_decided_approvals(core) == 0
    assert gate.calls == [("decide", approval.id), ("finish", "")]
