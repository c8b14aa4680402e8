"""The PostgreSQL pool hands out no dead connection, without a round trip at checkout.

A backend the server terminates (as a restart or an idle timeout does) leaves a closed
connection in the pool; the next unit of work must get a fresh one and succeed. The
server itself is not restarted here (tests/runtime does that); only this test's own
backends in a database of its own are terminated.
"""

import asyncio
import os
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from errand.kit.db import Database
from tests.conftest import create_pg_database, drop_pg_database

PG_URL = os.environ.get("ERRAND_TEST_POSTGRES_URL")


@pytest.fixture
async def pg() -> AsyncIterator[tuple[Database, str]]:
    if not PG_URL:
        pytest.skip("ERRAND_TEST_POSTGRES_URL is not set")
    url, name = await create_pg_database(PG_URL)
    db = Database(url)
    try:
        yield db, url
    finally:
        await db.dispose()
        await drop_pg_database(PG_URL, name)


async def backend_pid(db: Database) -> int:
    async with db.unit_of_work(read_only=True) as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(url: str, pid: int) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_a_terminated_pooled_connection_is_replaced_and_the_next_unit_of_work_succeeds(
    pg: tuple[Database, str],
) -> None:
    db, url = pg
    first = await backend_pid(db)
    assert await backend_pid(db) == first  # the pool keeps and reuses the connection
    await terminate(url, first)
    await asyncio.sleep(0.2)  # the event loop reads the server's goodbye, as it does between requests
    second = await backend_pid(db)
    assert second != first
    async with db.unit_of_work() as session:
        assert (await session.execute(text("SELECT 1"))).scalar_one() == 1


async def test_every_pooled_connection_of_a_restarted_server_is_replaced(pg: tuple[Database, str]) -> None:
    db, url = pg
    async with db.unit_of_work(read_only=True) as a, db.unit_of_work(read_only=True) as b:
        pids = [int((await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()) for s in (a, b)]
    for pid in pids:
        await terminate(url, pid)
    await asyncio.sleep(0.2)
    async with db.unit_of_work(read_only=True) as a, db.unit_of_work(read_only=True) as b:
        fresh = [int((await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()) for s in (a, b)]
    assert not set(fresh) & set(pids)
