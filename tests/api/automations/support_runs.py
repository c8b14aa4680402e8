"""Helpers for tests that run agents over HTTP: send events, wait for executions, and servers of a
test's own (for settings the shared server does not have, and for restarts on the same data)."""

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from errand.identity import service as identity_service
from errand.kit.config import Settings
from errand.kit.db import Database
from errand.kit.migrations import upgrade_to_head
from tests.api.automations.support import AGENTS, definition
from tests.conftest import PG_URL, SECRET_KEY, create_pg_database, drop_pg_database, free_port

INGEST = "/api/events/ingest"
EXECUTIONS = "/api/executions"
TERMINAL = {"completed", "failed", "cancelled"}
DEADLINE_SECONDS = 60.0


def bus_trigger(event_type: str, source: str = "psa", **fields: Any) -> dict[str, Any]:
    return {"type": "bus_event", "source_product": source, "event_type": event_type, **fields}


async def activate(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """Create an agent from the contract's example with ``overrides`` and activate it."""
    created = await client.post(AGENTS, json=definition(**overrides))
    assert created.status_code == 201, created.text
    active = await client.put(f"{AGENTS}/{created.json()['id']}", json={"status": "active"})
    assert active.status_code == 200, active.text
    return active.json()


async def send(client: httpx.AsyncClient, event_type: str, payload: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    """Ingest one event (source ``psa`` unless ``envelope`` says otherwise); its 202 body."""
    body = {"event_type": event_type, "source_product": "psa", "payload": payload, **envelope}
    response = await client.post(INGEST, json=body)
    assert response.status_code == 202, response.text
    return response.json()


async def executions(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(EXECUTIONS, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["executions"])


async def run_of(client: httpx.AsyncClient, agent_id: str, status: str, *, count: int = 1,
                 deadline_seconds: float = DEADLINE_SECONDS) -> dict[str, Any]:
    """The detail of the agent's newest execution once ``count`` of its executions exist and the
    newest is ``status``; fails at once if the newest ends in another status, else after the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    while True:
        runs = await executions(client, agent_id=agent_id)
        if len(runs) >= count:
            newest = runs[0]
            if newest["status"] == status:
                detail = await client.get(f"{EXECUTIONS}/{newest['id']}")
                assert detail.status_code == 200, detail.text
                return dict(detail.json())
            if newest["status"] in TERMINAL:
                detail = (await client.get(f"{EXECUTIONS}/{newest['id']}")).json()
                raise AssertionError(f"the execution ended {newest['status']}, not {status}: {detail}")
        assert loop.time() < deadline, f"no {status} execution of {agent_id} after {deadline_seconds} s: {runs}"
        await asyncio.sleep(0.05)


def step(detail: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in detail["steps"] if s["step_id"] == step_id)


@dataclass
class OwnServer:
    """A server's settings and data of a test's own: ``serve()`` runs it (again, on the same data)."""

    settings: Settings
    db: Database

    async def key(self, organization: str, role: str = "agent") -> str:
        async with self.db.unit_of_work() as session:
            issued = await identity_service.create_api_key(
                session, organization_name=organization, env="live", role=role, prefix="ar",
                scenarios=["restaurant", "hotel", "flight", "activity"])
        return issued.plaintext


@asynccontextmanager
async def own_server(tmp_path: Path, backend: str, **fields: Any) -> AsyncIterator[OwnServer]:
    """Settings for a server on fresh data in ``backend`` (sqlite | postgres), migrated; serve it
    with ``tests.conftest.running(own.settings)`` as often as the test needs."""
    pg_name = None
    if backend == "postgres":
        if not PG_URL:
            pytest.skip("ERRAND_TEST_POSTGRES_URL is not set")
        db_url, pg_name = await create_pg_database(PG_URL)
    else:
        db_url = f"sqlite+aiosqlite:///{tmp_path / 'errand.db'}"
    settings = Settings(data_dir=tmp_path, database_url=db_url, port=free_port(), secret_key=SECRET_KEY, **fields)
    await upgrade_to_head(db_url)
    db = Database(db_url)
    try:
        yield OwnServer(settings, db)
    finally:
        await db.dispose()
        if pg_name:
            await drop_pg_database(PG_URL, pg_name)


def org_name() -> str:
    return f"Org {secrets.token_hex(4)}"


@asynccontextmanager
async def keyed(base_url: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, headers={"X-Integration-Key": key,
                                                             "Authorization": f"Bearer {key}"}, timeout=30) as client:
        yield client
