"""The sandbox marketplace alone, served over real HTTP, on each database backend.

Each test module gets a fresh database (a SQLite file, or a PostgreSQL database created
for it and dropped afterwards) and the sandbox app under uvicorn on a free port, mounted
at ``/sandbox`` as the composition root mounts it. Tests talk to it through the provider
adapters, as Errand's core does (or with the providers' credentials, tests/sandbox/api_support.py),
and isolate themselves by booking on dates no other test of their module uses.
"""

import asyncio
import base64
import os
import secrets
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI, Request
from sqlalchemy.engine import make_url

from errand.kit import crypto
from errand.kit.config import Settings
from errand.kit.db import Database
from errand.models.base import Base
from errand.models.sandbox_booking import SandboxBooking, SandboxSlot
from errand.models.sandbox_web_session import SandboxWebSession
from errand.providers.sandbox import (
    SandboxAir,
    SandboxApiProvider,
    SandboxDine,
    SandboxFares,
    SandboxRooms,
    SandboxStays,
    SandboxTables,
    SandboxTickets,
)
from errand.sandbox.app import build_sandbox_app
from tests.sandbox.api_support import credentials
from tests.sandbox.web_support import Visitor

PG_URL_ENV = "ERRAND_TEST_POSTGRES_URL"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sandbox') / 'sandbox.db'}"
        return
    server_url = os.environ.get(PG_URL_ENV)
    if not server_url:
        pytest.skip(f"{PG_URL_ENV} is not set")
    url = make_url(server_url)
    admin_dsn = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    name = f"errand_t_{secrets.token_hex(5)}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture(scope="module")
async def db(database_url: str) -> AsyncIterator[Database]:
    # The Fernet key is process-global and a full Errand server from another fixture may be
    # alive in this process: give it back its key when this module is done.
    previous = crypto._fernet  # noqa: SLF001
    crypto.configure(Fernet.generate_key().decode())
    database = Database(database_url)
    async with database.engine.begin() as conn:
        tables = [SandboxSlot.__table__, SandboxBooking.__table__, SandboxWebSession.__table__]
        await conn.run_sync(Base.metadata.create_all, tables=tables)
    try:
        yield database
    finally:
        await database.dispose()
        crypto._fernet = previous  # noqa: SLF001


# Provider events in these tests are signed with secrets derived from this one (never the
# data dir's key), and the APIs' tokens from SANDBOX_KEY: SETTINGS is what Errand would hold.
EVENTS_SECRET = "whsec_" + base64.b64encode(b"sandbox-tests-provider-events-32").decode()
# A constant, not a random key: test modules import this conftest under its own name too.
SANDBOX_KEY = base64.urlsafe_b64encode(b"sandbox-tests-api-tokens-key-32b").decode()
SETTINGS = Settings(secret_key=SANDBOX_KEY, provider_events_secret=EVENTS_SECRET, provider_timeout_seconds=30)


def events_secret(provider_id: str) -> str:
    """The secret with which ``provider_id`` signs its events in these tests."""
    return SETTINGS.provider_events_signing_secret(provider_id)


@dataclass
class Received:
    """A provider event as Errand's endpoint received it: raw headers and body bytes."""

    headers: dict[str, str]
    body: bytes


@asynccontextmanager
async def serving(
    db: Database, faults: Mapping[str, Mapping[str, Any]] | None = None, *,
    settings: Settings | None = None, inbox: list[Received] | None = None,
) -> AsyncIterator[str]:
    """The sandbox over ``db`` (with ``faults``) under uvicorn on a free port; yields its root URL.

    Like Errand's server, the root app also answers ``POST /api/v1/provider-events``: what
    the sandbox tells Errand lands in ``inbox``. ``settings`` (default :data:`SETTINGS`) get
    the port, so the sandbox's public URL and the events' destination are this server's.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    root = FastAPI()
    settings = (settings or SETTINGS).model_copy(update={"port": port})
    sandbox = build_sandbox_app(db, faults, settings)
    root.mount("/sandbox", sandbox)

    @root.post("/api/v1/provider-events", status_code=204)
    async def provider_events(request: Request) -> None:
        if inbox is not None:
            inbox.append(Received(dict(request.headers), await request.body()))

    server = uvicorn.Server(uvicorn.Config(root, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/sandbox"
    finally:
        await asyncio.wait_for(sandbox.state.provider_events.drain(), timeout=15)
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture(scope="module")
async def sandbox_url(db: Database) -> AsyncIterator[str]:
    async with serving(db) as url:
        yield url


@pytest.fixture(scope="module")
def inbox(db: Database) -> list[Received]:
    """The provider events the module's sandbox sent to Errand, in arrival order (one per database)."""
    return []


@pytest.fixture(scope="module")
async def web_url(db: Database, inbox: list[Received]) -> AsyncIterator[str]:
    """The module's sandbox with an events inbox, for the web sites and the events they send."""
    async with serving(db, inbox=inbox) as url:
        yield url


@pytest.fixture
def serve_with_faults(db: Database) -> Any:
    """Another sandbox app over this module's database, misbehaving as configured: ``async with f(faults) as url``."""
    return lambda faults: serving(db, faults)


@pytest.fixture
async def tables(sandbox_url: str) -> AsyncIterator[SandboxTables]:
    provider = SandboxTables(SETTINGS.model_copy(update={"sandbox_url": sandbox_url}))
    try:
        yield provider
    finally:
        await provider.aclose()


@pytest.fixture
async def http(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A plain client on the provider's API root, for what the adapter does not expose."""
    async with httpx.AsyncClient(base_url=f"{sandbox_url}/api/sandbox-tables", timeout=30,
                                 auth=credentials(SETTINGS)) as client:
        yield client


@pytest.fixture
async def providers(sandbox_url: str) -> AsyncIterator[dict[str, SandboxApiProvider]]:
    """Every sandbox adapter, by provider id, pointed at this module's sandbox."""
    settings = SETTINGS.model_copy(update={"sandbox_url": sandbox_url})
    adapters = [cls(settings) for cls in (
        SandboxTables, SandboxDine, SandboxStays, SandboxRooms, SandboxAir, SandboxFares, SandboxTickets,
    )]
    try:
        yield {adapter.id: adapter for adapter in adapters}
    finally:
        for adapter in adapters:
            await adapter.aclose()


@pytest.fixture
async def sandbox(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A plain client on the sandbox's root, for the job API's raw answers (as Errand) and the checkout page."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30, auth=credentials(SETTINGS)) as client:
        yield client


@pytest.fixture
async def visitor(web_url: str) -> AsyncIterator[Visitor]:
    """A visitor's browser on the sandbox sites: its own cookies, following redirects."""
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as client:
        yield Visitor(client, web_url)
