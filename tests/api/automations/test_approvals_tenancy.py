"""Listing approvals changes nothing of another organization's.

A due approval is expired by the periodic task, or when its own organization lists its
approvals; a request of one organization never expires another's. The server here runs
without background work (``worker`` off) on a database of its own, so the only thing that
could expire the approval is the request under test.
"""

import secrets
from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from errand.kit import clock
from errand.kit.db import Database
from errand.kit.migrations import upgrade_to_head
from errand.models import Approval
from tests.conftest import PG_URL, Server, create_pg_database, drop_pg_database, free_port, mint_key, running

APPROVALS = "/api/approvals"


@pytest.fixture(scope="module")
async def quiet(server: Server, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """A server of ``server``'s backend with no periodic work, on a fresh database of its own."""
    data_dir = tmp_path_factory.mktemp("quiet")
    pg_name = None
    if server.backend == "postgres":
        assert PG_URL
        db_url, pg_name = await create_pg_database(PG_URL)
    else:
        db_url = f"sqlite+aiosqlite:///{data_dir / 'errand.db'}"
    settings = server.settings.model_copy(update={
        "port": free_port(), "database_url": db_url, "data_dir": data_dir, "worker": False,
    })
    await upgrade_to_head(db_url)
    db = Database(db_url)
    try:
        async with running(settings) as base_url:
            yield Server(backend=server.backend, base_url=base_url, settings=settings, db=db)
    finally:
        await db.dispose()
        if pg_name and PG_URL:
            await drop_pg_database(PG_URL, pg_name)


async def approval_status(server: Server, approval_id: str) -> str:
    async with server.db.unit_of_work(read_only=True) as session:
        return (await session.execute(select(Approval.status).where(Approval.id == approval_id))).scalar_one()


async def test_listing_approvals_leaves_another_organizations_due_approval_pending(quiet: Server, day: date) -> None:
    org_a, org_b = f"Org A {secrets.token_hex(4)}", f"Org B {secrets.token_hex(4)}"
    admin_a = await mint_key(quiet, org_a, role="admin")
    admin_b = await mint_key(quiet, org_b, role="admin")
    agent_b = await mint_key(quiet, org_b)
    async with httpx.AsyncClient(base_url=quiet.base_url, timeout=30) as client:
        policy = await client.post("/api/v1/policies", headers={"Authorization": f"Bearer {admin_b}"}, json={
            "name": "Ask always", "type": "APPROVAL_REQUIRED", "config": {"threshold": 1}})
        assert policy.status_code == 201, policy.text
        pending = await client.post("/api/v1/agent/restaurant/book", headers={"Authorization": f"Bearer {agent_b}"},
                                    json={"restaurantName": "Le Bernardin", "city": "New York", "partySize": 2,
                                          "datetime": f"{day.isoformat()}T19:00:00",
                                          "customer": {"name": "Jane Doe"}})
        assert pending.status_code == 202, pending.text
        approval_id = pending.json()["approval"]["approvalId"]
        async with quiet.db.unit_of_work() as session:  # its deadline passes
            await session.execute(update(Approval).where(Approval.id == approval_id)
                                  .values(expires_at=clock.now() - timedelta(minutes=1)))

        listed_a = await client.get(APPROVALS, headers={"X-Integration-Key": admin_a})
        assert listed_a.status_code == 200, listed_a.text
        assert listed_a.json()["approvals"] == []
        assert await approval_status(quiet, approval_id) == "pending"

        listed_b = await client.get(APPROVALS, headers={"X-Integration-Key": admin_b})
        assert listed_b.status_code == 200, listed_b.text
        assert [(a["id"], a["status"]) for a in listed_b.json()["approvals"]] == [(approval_id, "expired")]
        assert await approval_status(quiet, approval_id) == "expired"
        txn = await client.get(f"/api/v1/transactions/{pending.json()['transactionId']}",
                               headers={"Authorization": f"Bearer {agent_b}"})
        assert txn.json()["status"] == "expired"
