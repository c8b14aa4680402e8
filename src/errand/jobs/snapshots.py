"""Screenshots of the autopilot's work on a job: kept per step, listed and served per organization.

The executor hands providers a :data:`~errand.providers.base.snapshot_sink` for the job it
runs (:func:`collecting`); a browser provider calls it after each page load or action, and
each call stores one PNG as a :class:`~errand.models.JobSnapshot` row in a unit of work of
its own, so what was on screen survives even if the job then fails. A failing store is
logged and never fails the job.

Screenshots of booking forms show personal data, so both ends guard it: the browser
provider masks every form field before the screenshot (``errand.providers.browser.site``),
and the PNG is stored Fernet-encrypted (the model's :class:`~errand.kit.crypto.EncryptedBytes`
column), decrypted only by :func:`snapshot_image`, which the API serves.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import undefer

from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit.core import Core
from errand.kit.errors import NotFound
from errand.kit.ids import new_id
from errand.kit.logging import get_logger
from errand.models import Job, JobSnapshot
from errand.providers.base import SnapshotSink, snapshot_sink

log = get_logger("errand.jobs")

# A page screenshot is tens of kilobytes; anything far larger is not one.
MAX_PNG_BYTES = 8 * 1024 * 1024


@dataclass
class SnapshotInfo:
    id: str
    step: str
    url: str
    created_at: datetime


async def _require_job(session: Any, principal: Principal, job_id: str) -> None:
    """The caller's organization and mode (else NotFound) and one of its scenarios (else Forbidden)."""
    scenario = (await session.execute(select(Job.scenario).where(
        Job.id == job_id, Job.organization_id == principal.organization_id,
        Job.key_env == principal.env))).scalar_one_or_none()
    if scenario is None:
        raise NotFound("job_not_found", f"Job {job_id} not found.")
    identity_service.require_scenario(principal, scenario)


def sink_for(core: Core, job: Job) -> SnapshotSink:
    async def keep(step: str, url: str, png: bytes) -> None:
        if not png.startswith(b"\x89PNG") or len(png) > MAX_PNG_BYTES:
            log.warning("snapshot_refused", job_id=job.id, step=step, size=len(png))
            return
        try:
            async with core.db.unit_of_work() as session:
                session.add(JobSnapshot(id=new_id("snap"), organization_id=job.organization_id, job_id=job.id,
                                        step=step[:80], url=url, png=png))
        except Exception as exc:  # noqa: BLE001 - a screenshot is never worth a job
            log.warning("snapshot_not_stored", job_id=job.id, step=step, error=type(exc).__name__)

    return keep


@contextmanager
def collecting(core: Core, job: Job) -> Iterator[None]:
    """Within this block, providers called for ``job`` store their screenshots as its snapshots."""
    token = snapshot_sink.set(sink_for(core, job))
    try:
        yield
    finally:
        snapshot_sink.reset(token)


async def list_snapshots(core: Core, principal: Principal, job_id: str) -> list[SnapshotInfo]:
    """The job's snapshots, oldest first, without their images. Another organization's job is NotFound."""
    async with core.db.unit_of_work(read_only=True) as session:
        await _require_job(session, principal, job_id)
        rows = (await session.execute(
            select(JobSnapshot.id, JobSnapshot.step, JobSnapshot.url, JobSnapshot.created_at)
            .where(JobSnapshot.organization_id == principal.organization_id, JobSnapshot.job_id == job_id)
            .order_by(JobSnapshot.created_at, JobSnapshot.id)
        )).all()
    return [SnapshotInfo(id=r.id, step=r.step, url=r.url, created_at=r.created_at) for r in rows]


async def snapshot_image(core: Core, principal: Principal, job_id: str, snapshot_id: str) -> bytes:
    """One snapshot's PNG, decrypted.

    Another organization's job is ``job_not_found``; an unknown id ``snapshot_not_found``.

    Raises :class:`RuntimeError` when the configured key cannot decrypt it (ERRAND_SECRET_KEY changed).
    """
    async with core.db.unit_of_work(read_only=True) as session:
        await _require_job(session, principal, job_id)
        png = (await session.execute(
            select(JobSnapshot).options(undefer(JobSnapshot.png))
            .where(JobSnapshot.id == snapshot_id, JobSnapshot.job_id == job_id,
                   JobSnapshot.organization_id == principal.organization_id)
        )).scalar_one_or_none()
        if png is None:
            raise NotFound("snapshot_not_found", f"Job {job_id} has no snapshot {snapshot_id}.")
        return png.png
