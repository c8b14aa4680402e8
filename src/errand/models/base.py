from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, MetaData, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from errand.kit import clock
from errand.kit.errors import DomainError

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else clock.as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else clock.as_utc(value)


RowT = TypeVar("RowT")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


async def get_owned(session: AsyncSession, model: type[RowT], row_id: str, not_found: DomainError, *,
                    lock: bool = False, **scope: Any) -> RowT:
    """The ``model`` row ``row_id`` whose columns equal ``scope`` (its ``organization_id``, and its
    mode as the model names it: ``env`` or ``key_env``), else raise ``not_found``.

    Another organization's or mode's row is not found, exactly as a missing one is (every read is
    filtered by the caller's organization and key scope). ``lock`` reads it ``FOR UPDATE`` (a no-op
    on SQLite, whose writer lock already serialises the transaction)."""
    query = select(model).where(model.id == row_id, *(getattr(model, column) == value  # type: ignore[attr-defined]
                                                       for column, value in scope.items()))
    row = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if row is None:
        raise not_found
    return row
