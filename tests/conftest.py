"""A real Errand server per database backend, reached over real HTTP.

The server runs the real app (migrations, dialects, sandbox marketplace, in-process
runner) under uvicorn on a free port. Tests isolate themselves by working in an
organization of their own and on dates no other test uses, so nothing mutable is shared.
"""

import asyncio
import itertools
import json
import os
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet

from errand.identity import service as identity_service
from errand.kit import webhooks
from errand.kit.config import Settings
from errand.kit.db import Database
from errand.kit.migrations import upgrade_to_head
from errand.main import create_app

PG_URL = os.environ.get("ERRAND_TEST_POSTGRES_URL")
SECRET_KEY = Fernet.generate_key().decode()
BACKENDS = ["sqlite", "postgres"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def create_pg_database(server_url: str) -> tuple[str, str]:
    """A fresh database on the PostgreSQL server of ``server_url``: (its URL, its name)."""
    name = f"errand_t_{uuid.uuid4().hex[:10]}"
    base = server_url.rsplit("/", 1)[0]
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{base}/{name}", name


async def drop_pg_database(server_url: str, name: str) -> None:
    base = server_url.rsplit("/", 1)[0]
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class Server:
    backend: str
    base_url: str
    settings: Settings
    db: Database  # the test's own connection, for factories


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[str]:
    """Serve the real app for ``settings`` on its port; yields the base URL."""
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on")
    uv_server = uvicorn.Server(config)
    serving = asyncio.create_task(uv_server.serve())
    while not uv_server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        uv_server.should_exit = True
        await serving


@pytest.fixture(scope="session", params=BACKENDS)
async def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    backend = request.param
    data_dir: Path = tmp_path_factory.mktemp(f"errand-{backend}")
    pg_name = None
    if backend == "postgres":
        if not PG_URL:
            pytest.skip("ERRAND_TEST_POSTGRES_URL is not set")
        db_url, pg_name = await create_pg_database(PG_URL)
    else:
        db_url = f"sqlite+aiosqlite:///{data_dir / 'errand.db'}"
    port = free_port()
    settings = Settings(
        data_dir=data_dir, database_url=db_url, port=port, secret_key=SECRET_KEY,
        approval_ttl_minutes=120, idempotency_wait_seconds=5.0,
        # Outbound webhooks (tests/api/execution/test_webhooks*.py): receivers on 127.0.0.1 are
        # allowed (localhost is not: it shows a name resolving to loopback refused), and a failed
        # delivery is retried twice after 0.2 s, the endpoint disabled after 2 failed deliveries.
        webhook_allowed_hosts="127.0.0.1", webhook_retry_schedule="0.2,0.2", webhook_disable_after_failures=2,
    )
    await upgrade_to_head(db_url)
    db = Database(db_url)
    try:
        async with running(settings) as base_url:
            yield Server(backend=backend, base_url=base_url, settings=settings, db=db)
    finally:
        await db.dispose()
        if pg_name:
            await drop_pg_database(PG_URL, pg_name)


@dataclass
class Org:
    """One organization of a test's own, with an agent key, an admin key and clients for both."""

    name: str
    agent_key: str
    admin_key: str
    test_key: str
    agent: httpx.AsyncClient
    admin: httpx.AsyncClient


async def mint_key(server: Server, org: str, **kwargs: object) -> str:
    async with server.db.unit_of_work() as session:
        issued = await identity_service.create_api_key(session, organization_name=org, **{
            "env": "live", "scenarios": ["restaurant", "hotel", "flight", "activity"], "prefix": "ar", **kwargs,
        })
    return issued.plaintext


@pytest.fixture
async def org(server: Server) -> AsyncIterator[Org]:
    name = f"Org {secrets.token_hex(4)}"
    agent_key = await mint_key(server, name)
    admin_key = await mint_key(server, name, role="admin")
    test_key = await mint_key(server, name, env="test")
    async with (
        httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {agent_key}"}, timeout=30) as agent,
        httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {admin_key}",
                                                             "X-Integration-Key": admin_key}, timeout=30) as admin,
    ):
        yield Org(name, agent_key, admin_key, test_key, agent, admin)


@pytest.fixture
async def anon(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client


_days = itertools.count(1)


@pytest.fixture
def day() -> date:
    """A future date within the booking horizon that few other tests of this run book on: the
    next of 650 days from a month ahead, then around again (a run uses each date about twice, on
    different venues and times mostly, so capacity is as good as never shared)."""
    return date.today() + timedelta(days=30 + next(_days) % 650)


def signed_provider_event(server: Server, body: dict[str, Any], *, msg_id: str | None = None,
                          secret: str | None = None, signer: str | None = None) -> tuple[bytes, dict[str, str]]:
    """``body`` as a provider sends it to ``/api/v1/provider-events``: raw JSON and its headers,
    signed with ``signer``'s secret (default: the provider the body names) or ``secret``."""
    raw = json.dumps(body).encode()
    signer = signer or body["provider_id"]
    headers = webhooks.sign_headers(secret or server.settings.provider_events_signing_secret(signer),
                                    msg_id or f"msg_{uuid.uuid4().hex}", raw)
    return raw, {**headers, "content-type": "application/json", "errand-provider-id": signer}
