"""Service-level tests: the core's functions called directly on a migrated database, no server.

For step logic and tasks, where a black-box contract test would be slow or could not reach
the case (a crash between a decision and its carrying-out). ``database`` is one migrated
database per test run and backend (SQLite always; PostgreSQL when
``ERRAND_TEST_POSTGRES_URL`` is set); ``session`` is a unit of work on it, committed when the
test ends; ``organization`` is an organization of the test's own, so tests share nothing mutable.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit import crypto
from errand.kit.db import Database
from errand.kit.ids import new_id
from errand.kit.migrations import upgrade_to_head
from errand.models import Organization
from tests.conftest import BACKENDS, PG_URL, SECRET_KEY, create_pg_database, drop_pg_database


@pytest.fixture(scope="session", params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    pg_name = None
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("ERRAND_TEST_POSTGRES_URL is not set")
        url, pg_name = await create_pg_database(PG_URL)
    else:
        data_dir: Path = tmp_path_factory.mktemp("errand-service")
        url = f"sqlite+aiosqlite:///{data_dir / 'errand.db'}"
    await upgrade_to_head(url)
    crypto.configure(SECRET_KEY)  # sealed columns (a transaction's customer, a job's profile)
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()
        if pg_name:
            await drop_pg_database(PG_URL, pg_name)


@pytest.fixture
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    """A unit of work on ``database``, committed when the test ends (rolled back if it raises)."""
    async with database.unit_of_work() as session:
        yield session


@pytest.fixture
async def organization(database: Database) -> str:
    """The id of a new organization of the test's own."""
    org_id = new_id("org")
    async with database.unit_of_work() as session:
        session.add(Organization(id=org_id, name=f"service-{org_id}"))
    return org_id
