"""Database engine and units of work, identical on SQLite and PostgreSQL.

Services flush; only the edge that opened a unit of work commits it. On SQLite every
unit of work starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then
writes cannot wait for a busy writer and fails instead, which would turn concurrency
into errors rather than into queueing.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from errand.kit.errors import Unavailable


def create_engine(url: str, *, read_only: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Readers never upgrade to writers, so a deferred BEGIN lets them run beside a writer (WAL).
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


# Driver messages that mean "cannot reach the database", as opposed to a bad statement.
_UNREACHABLE = ("unable to open", "connection", "connect", "terminat", "shutdown", "disk i/o", "server closed")


class Database:
    """The process's engine and session factory, created once by the composition root."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = create_engine(url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # On PostgreSQL readers and writers share one engine; SQLite needs a non-locking BEGIN for reads.
        self.read_engine = create_engine(url, read_only=True) if self.is_sqlite else self.engine
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)


    @asynccontextmanager
    async def unit_of_work(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """One transaction: committed if the block succeeds, rolled back otherwise.

        ``read_only`` work must not write; on SQLite it then does not take the write lock.

        A database that cannot be reached surfaces as :class:`Unavailable`, so callers
        fail closed with a 503 rather than a 500.
        """
        try:
            maker = self.read_sessionmaker if read_only else self.sessionmaker
            async with maker() as session, session.begin():
                yield session
        except (OSError, ConnectionError) as exc:
            raise Unavailable("database_unavailable", "The database cannot be reached.") from exc
        except DBAPIError as exc:
            text = str(exc.orig).lower()
            if "locked" in text or "busy" in text:
                raise Unavailable("database_busy", "The database is busy; retry shortly.") from exc
            if exc.connection_invalidated or isinstance(exc, InterfaceError) or isinstance(exc.orig, OSError) or (
                isinstance(exc, OperationalError) and any(m in text for m in _UNREACHABLE)
            ):
                raise Unavailable("database_unavailable", "The database cannot be reached.") from exc
            raise

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
