"""Schema migrations: Alembic driven from code, with no ``alembic.ini`` needed at run time.

The migration scripts live in the repository's top-level ``migrations/`` folder. A wheel
carries them inside the package as ``errand/migrations`` (a hatch ``force-include``); an
editable install reads them from the repository root. ``alembic.ini`` at the repository
root exists only for developers writing new revisions.
"""

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from errand.kit.db import prepare_sqlite_file

_HERE = Path(__file__).resolve().parent
# Installed wheel: errand/migrations; editable install: <repo>/migrations (src/errand/kit/../../..).
_CANDIDATES = (_HERE.parent / "migrations", _HERE.parents[2] / "migrations")


def migrations_dir() -> Path:
    """The folder holding ``env.py`` and ``versions/``.

    Raises :class:`FileNotFoundError` when neither the packaged nor the repository copy
    exists, which means a broken installation rather than anything a user can fix.
    """
    for candidate in _CANDIDATES:
        if (candidate / "env.py").is_file():
            return candidate
    searched = ", ".join(str(c) for c in _CANDIDATES)
    raise FileNotFoundError(f"Errand's migrations folder was not found (searched {searched})")


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the database at ``url`` (an async SQLAlchemy URL)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    # Config values go through ConfigParser interpolation: a literal % must be doubled
    # (percent-encoded passwords in URLs have them).
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def ensure_sqlite_directory(url: str) -> None:
    """Create a SQLite file database (and its directory) readable by its owner only, which SQLite will not do itself."""
    prepare_sqlite_file(url)


async def upgrade_to_head(url: str) -> None:
    """Bring the database at ``url`` to the newest schema revision.

    Alembic's ``env.py`` runs its own event loop, so the upgrade runs in a worker thread
    rather than on the caller's loop. A missing SQLite file is created first, owner-only.
    Errors from the database (unreachable, permission denied) propagate unchanged.
    """
    ensure_sqlite_directory(url)
    cfg = alembic_config(url)
    await asyncio.to_thread(command.upgrade, cfg, "head")


# Held while the queue schema is checked and applied, so two processes migrating at once
# do not both try to create it.
_QUEUE_SCHEMA_LOCK = 0x45_52_52_41_4E_44  # "ERRAND"


async def upgrade_queue_schema(url: str) -> bool:
    """Create procrastinate's tables (the job queue of ``ERRAND_RUNNER=procrastinate``) if missing.

    Only PostgreSQL has a queue; on SQLite this does nothing. Idempotent: when the tables
    already exist nothing is applied. Returns whether the schema was created. Errors from
    the database propagate unchanged.
    """
    if make_url(url).get_backend_name() != "postgresql":
        return False
    import procrastinate
    import psycopg

    from errand.kit.db import libpq_conninfo

    conninfo = libpq_conninfo(url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as lock:
        await lock.execute("SELECT pg_advisory_lock(%s)", (_QUEUE_SCHEMA_LOCK,))
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=1))
        async with app.open_async():
            if await app.check_connection_async():
                return False
            await app.schema_manager.apply_schema_async()
            return True


async def readiness(engine: Any, url: str, timeout: float, heads: set[str]) -> dict[str, dict[str, Any]]:
    """``/readyz``'s database checks: ``database`` (``SELECT 1`` answers within ``timeout`` s) and
    ``migrations`` (the schema's revision is ``heads``), each ``{"ok": bool, …}``."""
    from sqlalchemy import text

    checks: dict[str, dict[str, Any]] = {}
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            checks["database"] = {"ok": True}
            try:
                current = set((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())
            except Exception:  # noqa: BLE001 - no version table: never migrated
                current = set()
    except Exception as exc:  # noqa: BLE001 - any failure to answer in time is "unreachable"
        checks["database"] = {"ok": False, "error": "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__}
        checks["migrations"] = {"ok": False, "error": "database unreachable"}
        return checks
    checks["migrations"] = {"ok": current == heads, "current": sorted(current), "head": sorted(heads)}
    return checks
