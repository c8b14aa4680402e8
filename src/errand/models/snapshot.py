from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from errand.kit import clock
from errand.kit.crypto import EncryptedBytes
from errand.models.base import Base


class JobSnapshot(Base):
    """One screenshot of a provider's web site, taken while the autopilot worked on a job.

    ``step`` names what was on screen (``web-tables/results``); the PNG is loaded only when
    asked for, so listing a job's snapshots does not read the images. A screenshot of a
    filled-in form shows personal data even with its fields masked (what the page echoes
    back), so the PNG is stored Fernet-encrypted and decrypted only to be served.
    """

    __tablename__ = "job_snapshots"
    __table_args__ = (Index("ix_job_snapshots_job", "organization_id", "job_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(80))
    url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    png: Mapped[bytes] = mapped_column(EncryptedBytes, deferred=True)
