"""Running jobs: claim, heartbeat, execute, finish; and recovering jobs whose runner died.

``run_job`` is what every runner calls (the in-process runner and the procrastinate
worker alike). A job is claimed with a conditional update from ``pending`` to ``running``
under a fresh token, so it never runs twice at once; a heartbeat proves the run is alive;
finishing is conditional on the token, so a run that lost its claim (recovered elsewhere,
or cancelled) cannot overwrite the result.
"""

import asyncio
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from errand.jobs import journal, payments, publishing
from errand.jobs.executor import Outcome, Run, execute
from errand.jobs.schemas import RUN_JOB
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import DomainError, Unavailable
from errand.kit.logging import get_logger
from errand.kit.tasks import Periodic, Retry, Task, enqueue
from errand.models import Job

log = get_logger("errand.jobs")
HEARTBEAT_SECONDS = 5.0
# A running job whose heartbeat is older than this has lost its runner.
STALE_SECONDS = 30.0
# A job that lost its runner this many times is ended as an error rather than run again.
MAX_RUNS = 3
FINISH_ATTEMPTS = 6


async def _claim(core: Core, job_id: str) -> tuple[Job, str] | None:
    token = secrets.token_hex(16)
    now = clock.now()
    async with core.db.unit_of_work() as session:
        job = (await session.execute(select(Job).where(Job.id == job_id))).scalar_one_or_none()
        if job is None or job.status != "pending":
            return None
        claimed = await session.execute(
            update(Job).where(Job.id == job_id, Job.status == "pending")
            .values(status="running", run_token=token, heartbeat_at=now, run_count=Job.run_count + 1,
                    started_at=job.started_at or now, updated_at=now)
        )
        if claimed.rowcount != 1:
            return None
        await session.refresh(job)
    return job, token


async def _heartbeat(core: Core, job_id: str, token: str) -> None:
    """Beat until cancelled; a failed beat (database blip) is retried at the next beat, not fatal."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            async with core.db.unit_of_work() as session:
                await session.execute(update(Job).where(Job.id == job_id, Job.run_token == token,
                                                        Job.status == "running").values(heartbeat_at=clock.now()))
        except Unavailable:
            log.warning("job_heartbeat_failed", job_id=job_id)


async def _finish(core: Core, run: Run, token: str, outcome: Outcome) -> None:
    job = run.job
    now = clock.now()
    terminal = outcome.status not in ("awaiting_approval",)
    # A handoff starts the payment's wait until the hold's expiry the provider gave (errand.jobs.payments).
    payment = payments.awaiting(outcome.result) if outcome.status == "paused_payment" else {}
    async with core.db.unit_of_work() as session:
        finished = await session.execute(
            update(Job).where(Job.id == job.id, Job.run_token == token, Job.status == "running").values(
                status=outcome.status, summary=outcome.summary, handoff_url=outcome.handoff_url,
                session_url=outcome.session_url, error=outcome.error, provider_id=outcome.provider_id,
                result=outcome.result, attempt_count=run.attempts, used_fallback=run.used_fallback,
                pending_action=outcome.pending_action, updated_at=now, heartbeat_at=None,
                completed_at=now if terminal else None, **payment,
            )
        )
        if finished.rowcount != 1:
            return  # cancelled meanwhile, or the claim was recovered by another runner
        if outcome.status in publishing.BY_STATUS:
            await publishing.publish_for(session, job, publishing.BY_STATUS[outcome.status], outcome.status,
                                     approval_id=(outcome.pending_action or {}).get("approval_id"),
                                     **publishing.about(outcome.result or outcome.pending_action, outcome.provider_id))
        if outcome.status in ("no_availability", "needs_login", "captcha", "error"):
            await journal.record(session, organization_id=job.organization_id, job_id=job.id, type="job_failed",
                                message=f"{outcome.status}: {outcome.error or outcome.summary}", actor="executor",
                                step_index=run.step, status=outcome.status)


async def run_job(core: Core, job_id: str) -> None:
    """Run one job to a stopping point, if it is still pending. Safe to call twice."""
    claim = await _claim(core, job_id)
    if claim is None:
        return
    job, token = claim
    run = Run(core=core, job=job)
    heartbeat = asyncio.create_task(_heartbeat(core, job_id, token))
    budget = job.consent.get("maxJobDurationSeconds", 420)
    try:
        async with asyncio.timeout(budget):
            outcome = await execute(run)
    except TimeoutError:
        outcome = Outcome("error", f"Stopped after maxJobDurationSeconds ({budget}s)",
                          error=f"The job exceeded maxJobDurationSeconds ({budget}s).")
    except DomainError as exc:
        outcome = Outcome("error", "The job failed", error=f"{exc.code}: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - a job must end with a reason, never stay running
        log.exception("job_crashed", job_id=job_id, error=type(exc).__name__)
        outcome = Outcome("error", "The job failed unexpectedly", error=f"internal error ({type(exc).__name__})")
    finally:
        heartbeat.cancel()
    for attempt in range(FINISH_ATTEMPTS):
        try:
            await _finish(core, run, token, outcome)
            return
        except Unavailable:
            # The database blinked; the outcome is in hand, so keep trying before recovery would re-run it.
            log.warning("job_finish_retry", job_id=job_id, attempt=attempt + 1)
            await asyncio.sleep(min(2 ** attempt, 5))


async def expire_handoffs(core: Core) -> int:
    """Periodic: record every handoff whose hold expired unpaid (errand.jobs.payments.expire_due)."""
    async with core.db.unit_of_work() as session:
        return await payments.expire_due(session)


async def recover_jobs(core: Core) -> list[str]:
    """Put jobs whose runner died back to ``pending`` (or end them after MAX_RUNS), and enqueue a
    run of each (``errand.run_job``, sent once the sweep commits); returns their ids.

    Also runs pending jobs nobody picked up within a few seconds: a run lost to a crash, or
    created by a process without a runner (``errand mcp``, the CLI).
    """
    now = clock.now()
    stale = now - timedelta(seconds=STALE_SECONDS)
    requeued: list[str] = []
    async with core.db.unit_of_work() as session:
        dead = (await session.execute(select(Job).where(Job.status == "running", Job.heartbeat_at < stale)
                                      .limit(100))).scalars().all()
        for job in dead:
            if job.run_count >= MAX_RUNS:
                values = dict(status="error", error=f"The runner was lost {job.run_count} times; giving up.",
                              summary="The job's runner stopped responding", completed_at=now)
                message = f"Runner lost {job.run_count} times; ending the job"
                type_ = "job_failed"
            else:
                values = dict(status="pending")
                message = "Runner lost (no heartbeat); the job will run again from the start"
                type_ = "job_started"
            changed = await session.execute(update(Job).where(Job.id == job.id, Job.run_token == job.run_token,
                                                              Job.status == "running")
                                            .values(run_token=None, heartbeat_at=None, updated_at=now, **values))
            if changed.rowcount == 1 and type_ == "job_failed":
                await journal.record(session, organization_id=job.organization_id, job_id=job.id, type=type_,
                                    message=message, actor="runner", status="error")
                await publishing.publish_for(session, job, "job.failed", "error", detail="runner_lost")
            elif changed.rowcount == 1:
                log.warning("job_recovered", job_id=job.id, run_count=job.run_count)
                requeued.append(job.id)
        waiting = (await session.execute(select(Job.id).where(
            Job.status == "pending", Job.updated_at < now - timedelta(seconds=2)).limit(200))).scalars().all()
        to_run = requeued + [job_id for job_id in waiting if job_id not in requeued]
        for job_id in to_run:
            enqueue(session, RUN_JOB, job_id=job_id)
    return to_run


# The job's own failures never reach the runner: run_job ends the job with a reason. A database
# error does (the claim or the finish could not be written): a retry claims the job if it is
# still pending and does nothing otherwise; a job left `running` is recovered later.
TASKS = [
    Task(RUN_JOB, run_job, Retry(max_attempts=5, exponential_wait=2, retry_on=(Unavailable, DBAPIError, OSError)),
         lock=lambda args: f"job:{args['job_id']}"),
]
PERIODIC = [
    Periodic("recover_jobs", 5, recover_jobs, queue_maintained=True),
    Periodic("expire_handoffs", 5, expire_handoffs),
]
