from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from errand.models.base import Base, TimestampMixin


class Organization(TimestampMixin, Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Bumped in the transaction of every policy change: a process's cached policies are used only
    # while this matches the version they were read at (errand.guard.policy_cache).
    policies_version: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
