"""Screenshots of the autopilot's work on a job: kept per step, listed and served per organization.

The executor hands providers a :data:`~errand.providers.base.snapshot_sink` for the job it
runs (:func:`collecting`); a browser provider calls it after each page load or action, and
each call stores one PNG as a :class:`~errand.models.JobSnapshot` row in a unit of work of
its own, so what was on screen survives even if the job then fails. A failing store is
logged and never fails the job.

Screenshots of booking forms show personal data, so both ends guard it: the browser
provider masks every form field before the screenshot (``errand.providers.browser.site``),
and the PNG is stored Fernet-encrypted (the model's :class:`~errand.kit.crypto.EncryptedBytes`
column), decrypted only when the API serves it (:func:`errand.jobs.service.snapshot_png`).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from errand.kit.core import Core
from errand.kit.ids import new_id
from errand.kit.logging import get_logger
from errand.models import Job, JobSnapshot
from errand.providers.base import SnapshotSink, snapshot_sink

log = get_logger("errand.jobs")

# A page screenshot is tens of kilobytes; anything far larger is not one.
MAX_PNG_BYTES = 8 * 1024 * 1024


def sink_for(core: Core, job: Job) -> SnapshotSink:
    """Where the providers called for ``job`` hand their screenshots: each stored in a unit of work of its own."""

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
