"""Database engine and units of work, identical on SQLite and PostgreSQL.

Services flush; only the edge that opened a unit of work commits it. On SQLite every
unit of work starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then
writes cannot wait for a busy writer and fails instead, which would turn concurrency
into errors rather than into queueing.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DataError, DBAPIError, IntegrityError, InterfaceError, InvalidatePoolError, ProgrammingError,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from errand.kit import files, tasks
from errand.kit.logging import get_logger
from errand.kit.errors import DatabaseBusy, DatabaseUnavailable, Unavailable

log = get_logger("errand.db")

# A read-only unit of work on PostgreSQL: one snapshot for all its statements.
_SNAPSHOT = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}

# What SQLite keeps beside a database file; each holds the database's data.
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for another database, ``:memory:`` or a ``file:`` URI."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def prepare_sqlite_file(url: str) -> None:
    """Make a SQLite database's file readable by its owner only, before SQLite first opens it.

    A missing directory is created 0700 and a missing file 0600 (SQLite gives its -wal and
    -shm files the database file's mode); an existing file, -wal, -shm or -journal is
    narrowed to its owner. Other URLs are left alone. Raises :class:`OSError` when the
    directory or file cannot be created.
    """
    path = sqlite_file(url)
    if path is None:
        return
    files.private_dir(path.parent)
    files.private_file(path)
    for suffix in _SQLITE_COMPANIONS:
        files.narrow(path.with_name(path.name + suffix))


def create_engine(url: str, *, read_only: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        # A writer's connection ends every transaction itself (unit_of_work commits or rolls back), so
        # the pool's rollback at check-in would only cost one more hop to aiosqlite's thread per
        # unit of work. A reader's connection keeps it: read_one's implicit BEGIN ends there.
        engine = create_async_engine(url, connect_args={"timeout": 30},
                                     pool_reset_on_return="rollback" if read_only else None)

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
    engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_recycle=POOL_RECYCLE_SECONDS)
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    return engine


# A pooled PostgreSQL connection is replaced after this long, so that one a proxy or firewall
# dropped silently is not kept for ever.
POOL_RECYCLE_SECONDS = 1800


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout on PostgreSQL: hand out no connection the driver already knows is closed.

    Instead of a ``SELECT 1`` round trip at every checkout (``pool_pre_ping``), ask asyncpg,
    which marks a connection closed as soon as the event loop reads the server's goodbye or
    EOF (a restart, an idle timeout, a terminated backend). Raising InvalidatePoolError
    makes the pool drop this connection and every one opened before it (they died with the
    same server) and check out a fresh one, transparently. A connection that dies without
    the driver noticing fails its first statement instead: that unit of work is
    :class:`Unavailable` (503, retry) and SQLAlchemy invalidates the pool then.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise InvalidatePoolError("the database closed this pooled connection")


# asyncpg query parameters that libpq does not know; they tune asyncpg's own behaviour only.
_ASYNCPG_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func", "server_settings",
                 "command_timeout", "statement_cache_size", "max_cached_statement_lifetime",
                 "max_cacheable_statement_size", "direct_tls")


def libpq_conninfo(url: str) -> str:
    """The libpq connection URI (what psycopg and procrastinate take) for a SQLAlchemy PostgreSQL URL.

    ``postgresql+asyncpg://user:pw@host:5432/db?ssl=require`` becomes
    ``postgresql://user:pw@host:5432/db?sslmode=require``: the driver suffix goes, asyncpg's
    ``ssl`` becomes libpq's ``sslmode`` and asyncpg-only tuning parameters are dropped.
    Raises :class:`ValueError` for a URL that is not PostgreSQL.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    query = {k: v for k, v in parsed.query.items() if k not in _ASYNCPG_ONLY}
    ssl = query.pop("ssl", None)
    if ssl is not None and "sslmode" not in query:
        ssl = ssl if isinstance(ssl, str) else ssl[-1]
        query["sslmode"] = "require" if ssl.lower() in ("true", "1", "on") else ssl
    return parsed.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


_in_write: ContextVar[bool] = ContextVar("errand_in_write_unit", default=False)

# Driver messages that mean "cannot reach the database", as opposed to a bad statement.
_UNREACHABLE = ("unable to open", "connection", "connect", "terminat", "shutdown", "shutting down", "disk i/o",
                "server closed", "starting up", "recovery mode")


def now_and_after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run ``action`` now and again when ``session``'s transaction commits: how a process-local
    cache forgets what a change makes stale, so that a read racing the change cannot put the old
    value back before the change is visible."""
    action()
    event.listen(session.sync_session, "after_commit", lambda *_args: action(), once=True)


@contextmanager
def _reachable() -> Iterator[None]:
    """Database failures a client cannot fix as :class:`Unavailable` (503): unreachable, or busy."""
    try:
        yield
    except (OSError, ConnectionError) as exc:
        raise DatabaseUnavailable("The database cannot be reached.") from exc
    except DBAPIError as exc:
        text = str(exc.orig).lower()
        if "locked" in text or "busy" in text:
            raise DatabaseBusy("The database is busy; retry shortly.") from exc
        if exc.connection_invalidated or isinstance(exc, InterfaceError) or isinstance(exc.orig, OSError) or (
            not isinstance(exc, IntegrityError | ProgrammingError | DataError)
            and any(m in text for m in _UNREACHABLE)
        ):
            raise DatabaseUnavailable("The database cannot be reached.") from exc
        raise


class Database:
    """The process's engine and session factory, created once by the composition root."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            prepare_sqlite_file(url)
        self._write_lock = asyncio.Lock()
        self.engine = create_engine(url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # On PostgreSQL readers and writers share one engine; SQLite needs a non-locking BEGIN for reads.
        self.read_engine = create_engine(url, read_only=True) if self.is_sqlite else self.engine
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)
        # Where committed task calls go (errand.kit.tasks): the in-process runner or the queue.
        self.task_sender: tasks.Sender | None = None


    @asynccontextmanager
    async def unit_of_work(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """One transaction: committed if the block succeeds, rolled back otherwise.

        ``read_only`` work must not write; on SQLite it then does not take the write lock. Its
        statements all read one snapshot: SQLite's read transaction (WAL) is one already, and on
        PostgreSQL it runs ``REPEATABLE READ READ ONLY`` (asyncpg starts it with those options, no
        extra round trip), so a job and its decision log, read by two statements, never disagree
        with a change committed between them (READ COMMITTED would let them).

        A database that cannot be reached surfaces as :class:`Unavailable`, so callers
        fail closed with a 503 rather than a 500.
        """
        with _reachable():
            if read_only:
                async with self.read_sessionmaker() as session, session.begin():
                    if not self.is_sqlite:
                        await session.connection(execution_options=_SNAPSHOT)
                    yield session
                return
            async with self._writer(), self.sessionmaker() as session:
                try:
                    async with session.begin():
                        yield session
                except BaseException:
                    tasks.take_enqueued(session)  # rolled back: what it enqueued never happened
                    raise
                enqueued = tasks.take_enqueued(session)
        if enqueued:
            await self.send_tasks(enqueued)

    async def send_tasks(self, calls: "list[tasks.TaskCall]") -> None:
        """Hand committed task calls to this process's runner (``task_sender``, set by the composition
        root). A process without a runner logs and drops them: every domain's recovery sweep
        finds the work again (e.g. a job left ``pending``)."""
        if self.task_sender is None:
            log.info("tasks_left_to_recovery", tasks=[call.name for call in calls])
            return
        await self.task_sender(calls)

    async def read_one(self, statement: Any, params: dict[str, Any]) -> Any:
        """The first row of one read-only ``statement`` (None when there is none), read on a bare
        connection: for a hot path's single look-up, without an ORM session's cost. Raises
        Unavailable as :meth:`unit_of_work` does."""
        with _reachable():
            async with self.read_engine.connect() as conn:
                return (await conn.execute(statement, params)).first()

    @asynccontextmanager
    async def _writer(self) -> AsyncIterator[None]:
        """On SQLite, queue this process's writers in order instead of letting them spin.

        SQLite has one writer at a time; a waiting connection polls with growing sleeps,
        which turns contention into long tails. Waiting on a lock wakes the next writer the
        moment the last one commits. Another process still meets the busy timeout.
        """
        if not self.is_sqlite:
            yield
            return
        if _in_write.get():
            raise RuntimeError("a write unit of work was opened inside another; it would wait on itself")
        token = _in_write.set(True)
        try:
            async with self._write_lock:
                yield
        finally:
            _in_write.reset(token)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
