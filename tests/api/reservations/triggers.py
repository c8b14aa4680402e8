"""Database triggers that make chosen writes fail, on SQLite and PostgreSQL: a database that
refuses a write at the worst moment, without touching Errand's code."""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text

from tests.conftest import Server


@asynccontextmanager
async def failing_writes(server: Server, table: str, event: str, when: str,
                         times: int | None = None) -> AsyncIterator[None]:
    """While inside, each ``event`` (INSERT or UPDATE) on ``table`` whose new row meets the SQL
    condition ``when`` (over ``NEW``) fails, every time or only the first ``times`` times
    (PostgreSQL only: a sequence counts the failures across rolled-back transactions; SQLite
    has nothing that survives a rollback, so the test is skipped there)."""
    name = f"fail_{secrets.token_hex(4)}"
    if server.backend == "sqlite":
        if times is not None:
            pytest.skip("SQLite cannot count failures across rolled-back transactions")
        create = [f"CREATE TRIGGER {name} BEFORE {event} ON {table} WHEN {when} "
                  "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"]
        drop = [f"DROP TRIGGER {name}"]
    else:
        fail = "TRUE" if times is None else f"nextval('{name}_count') <= {times}"
        create = [f"CREATE SEQUENCE {name}_count",
                  f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                  f"$$ BEGIN IF {fail} THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$",
                  f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW WHEN ({when}) "
                  f"EXECUTE FUNCTION {name}()"]
        drop = [f"DROP TRIGGER {name} ON {table}", f"DROP FUNCTION {name}()", f"DROP SEQUENCE {name}_count"]
    async with server.db.unit_of_work() as session:
        for statement in create:
            await session.execute(text(statement))
    try:
        yield
    finally:
        async with server.db.unit_of_work() as session:
            for statement in drop:
                await session.execute(text(statement))
