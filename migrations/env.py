"""Alembic environment for Errand: async engines, batch mode on SQLite, Errand's metadata.

Run from code through :mod:`errand.kit.migrations` (``errand migrate``), or by developers
with ``.venv/bin/alembic`` and the repository's ``alembic.ini``; then the database URL
comes from ``ERRAND_DATABASE_URL`` (or the default SQLite file under ``./var``).
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.types import TypeDecorator

import errand.models  # noqa: F401  (registers every table on Base.metadata)
from errand.kit.migrations import ensure_sqlite_directory
from errand.models import Base

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

# Tables other software keeps in the same database (procrastinate's queue on PostgreSQL):
# autogenerate must neither create nor drop them.
FOREIGN_TABLE_PREFIXES = ("procrastinate_",)


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from errand.kit.config import get_settings

    return get_settings().effective_database_url


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table" and name and name.startswith(FOREIGN_TABLE_PREFIXES):
        return False
    return True


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render Errand's column types (UTCDateTime, EncryptedJSON) as the plain SQLAlchemy
    type they store, so revisions never import application code that may later change."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        impl = obj.impl_instance
        if type(impl).__module__.startswith("sqlalchemy."):
            return f"sa.{impl!r}"
    return False


def configure_options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
        "render_item": render_item,
        "include_object": include_object,
    }


def run_migrations_offline() -> None:
    """Emit the SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    url = database_url()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **configure_options(make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, **configure_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    url = database_url()
    ensure_sqlite_directory(url)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    # A caller may hand over its own (sync) connection, e.g. from AsyncConnection.run_sync.
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_async_migrations())
        return
    # Called synchronously from code that runs an event loop on this thread: asyncio.run
    # cannot nest, so the migrations get their own loop on a thread of their own.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="alembic") as executor:
        executor.submit(lambda: asyncio.run(run_async_migrations())).result()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
