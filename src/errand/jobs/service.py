"""The jobs domain's surface: everything a dialect asks of execution jobs.

Creating, reading, listing and cancelling jobs, their journal and snapshots, provider
metrics and listings, stored traveler profiles, availability search and provider events.
Dialects import only this module and :mod:`errand.jobs.schemas`; the work lives in the
modules beside it (validation, search, provider events, the executor and its runner).

One signature (issue 11): a function that only reads or writes the database takes the
caller's ``session`` and never commits (the dialect's route opens the unit of work); one that
calls providers or runs its own transactions takes the ``core``
(:func:`search_availability`, :func:`cancel_job` under its idempotency claim).

A job is written with its ``job_created`` event and its ``errand.run_job`` task in one
transaction (:func:`errand.kit.tasks.enqueue`): the runner hears of it only after that commits;
a job that never reaches a runner (a crash in between) is still ``pending`` in the database,
and the runner's sweep picks it up. Every read is filtered by the caller's organization and
mode (a test key's jobs do not exist for a live key, and the other way round, idempotency keys
included), and every operation on a job by the key's scenarios
(:func:`errand.identity.service.require_scenario`); lists show only those.
"""

import functools
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from errand.audit import service as audit_service
from errand.guard import service as guard_service
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.jobs import journal, payments, publishing, validation
from errand.jobs.errors import JobNotFound, SnapshotNotFound
from errand.jobs.provider_events import receive as receive_provider_event, verify as verify_provider_event
from errand.jobs.schemas import (
    ACTIVE, RUN_JOB, STATUSES, JobCreate, JobEvent, JobView, Profile, ProviderMetrics, SnapshotInfo,
)
from errand.jobs.search import search_availability
from errand.jobs.validation import validate_job_request, validate_profile
from errand.kit import clock, crypto, pagination, tasks
from errand.kit.core import Core
from errand.kit.errors import Conflict, IdempotencyConflict, InvalidRequest, InvalidState
from errand.models import BookingProfile, Job, JobSnapshot, ProviderOutcome, get_owned
from errand.providers.registry import ProviderRegistry

__all__ = [
    "cancel_job", "create_job", "create_profile", "get_job", "job_audit", "list_jobs", "list_snapshots",
    "provider_listing", "provider_metrics", "receive_provider_event", "search_availability", "snapshot_png",
    "validate_job_request", "validate_profile", "verify_provider_event",
]


async def _profile_for(session: AsyncSession, principal: Principal, data: JobCreate) -> dict[str, Any]:
    if data.profile is not None:
        return data.profile.model_dump(mode="json", exclude_none=True)
    stored = (await session.execute(select(BookingProfile).where(
        BookingProfile.id == data.profile_id, BookingProfile.organization_id == principal.organization_id,
        BookingProfile.env == principal.env,
    ))).scalar_one_or_none()
    if stored is None:
        raise InvalidRequest("profileId: no such booking profile in your organization.",
                             details=[{"path": "profileId", "message": "not found"}])
    profile = Profile.model_validate(stored.data)
    if data.scenario == "flight" and not (profile.dob and profile.passport_number and profile.passport_country):
        raise InvalidRequest("profileId: flights need dob, passport_number and passport_country in the profile.",
                             details=[{"path": "profileId", "message": "profile lacks passport details"}])
    return profile.model_dump(mode="json", exclude_none=True)


async def create_job(session: AsyncSession, principal: Principal, data: JobCreate,
                     providers: ProviderRegistry) -> tuple[JobView, bool]:
    """Create a job (``created`` True) and enqueue its run, or return the one made earlier with the
    same idempotency key (``created`` False), as its GET shows it.

    ``providers`` is the core's registry, which ``consent.allowedProviders`` and ``blockedProviders``
    must name ids of. Raises Forbidden ``scenario_not_allowed``, InvalidRequest (an unknown
    provider id, a ``profileId`` not in the organization, a stored profile without a flight's
    passport details) and Conflict ``idempotency_conflict`` (the key was used for another request).
    """
    identity_service.require_scenario(principal, data.scenario)
    validation.check_providers(data.consent, (p.id for p in providers.all()))
    key = data.client_metadata.idempotencyKey
    digest = crypto.sha256_hex(crypto.canonical_json(data.model_dump(mode="json")))
    existing = await _by_key(session, principal, key) if key is not None else None
    if existing is None:
        job = Job(
            id=str(uuid.uuid4()), organization_id=principal.organization_id, api_key_id=principal.api_key_id,
            key_env=principal.env, scenario=data.scenario, status="pending", params=data.params,
            profile=await _profile_for(session, principal, data), consent=data.consent.model_dump(mode="json"),
            client_metadata=data.client_metadata.model_dump(mode="json", exclude_none=True),
            idempotency_key=key, request_hash=digest,
        )
        try:
            async with session.begin_nested():
                session.add(job)
        except IntegrityError:
            # The same key, created at once by another request: answer with the job it made.
            existing = await _by_key(session, principal, key or "")
            if existing is None:
                raise
    if existing is not None:
        return await _existing(session, principal, existing, digest), False
    await journal.record(session, organization_id=principal.organization_id, job_id=job.id, type="job_created",
                         message=f"Job created for a {data.scenario} booking", actor=principal.actor)
    await publishing.publish_for(session, job, "job.created", "pending")
    tasks.enqueue(session, RUN_JOB, job_id=job.id)
    # The answer is the job as created (pending), whatever the runner does once this commits.
    return await get_job(session, principal, job.id), True


async def _by_key(session: AsyncSession, principal: Principal, key: str) -> Job | None:
    return (await session.execute(select(Job).where(
        Job.organization_id == principal.organization_id, Job.key_env == principal.env,
        Job.idempotency_key == key))).scalar_one_or_none()


async def _existing(session: AsyncSession, principal: Principal, job: Job, digest: str) -> JobView:
    if job.request_hash != digest:
        raise IdempotencyConflict(
            "clientMetadata.idempotencyKey was already used for a different job request.")
    return await get_job(session, principal, job.id)


async def _get(session: AsyncSession, principal: Principal, job_id: str) -> Job:
    """The job as the key may act on it: JobNotFound for another organization's or the other mode's,
    Forbidden ``scenario_not_allowed`` for a scenario the key is not scoped to."""
    job = await get_owned(session, Job, job_id, JobNotFound(f"Job {job_id} not found."),
                          organization_id=principal.organization_id, key_env=principal.env)
    identity_service.require_scenario(principal, job.scenario)
    return job


async def _events(session: AsyncSession, organization_id: str, job_id: str, limit: int = 2000) -> list[JobEvent]:
    rows = await audit_service.events_for(session, organization_id=organization_id, subject_type=journal.SUBJECT,
                                          subject_id=job_id, limit=limit)
    return [journal.view(e) for e in rows]


def _view(job: Job, organization_name: str, log: list[JobEvent]) -> JobView:
    """The job as its GET shows it: the handoff link only while the payment is awaited
    (errand.jobs.payments), the decision log with what happened after the handoff."""
    payment = payments.view(job)
    return JobView(
        id=job.id, status=job.status, scenario=job.scenario, organization_name=organization_name,
        handoff_url=payments.handoff_url(job, payment), session_url=job.session_url, summary=job.summary,
        error=job.error, payment=payment,
        decision_log=[e for e in log if e.type in journal.DECISION_LOG], attempt_count=job.attempt_count,
        used_fallback=job.used_fallback, provider_id=job.provider_id, result=job.result,
        client_metadata=job.client_metadata,
        approval_id=(job.pending_action or {}).get("approval_id") if job.status == "awaiting_approval" else None,
        created_at=job.created_at, updated_at=job.updated_at, completed_at=job.completed_at,
    )


async def get_job(session: AsyncSession, principal: Principal, job_id: str) -> JobView:
    """The job as its GET shows it. Raises JobNotFound (another organization's or mode's job too)
    and Forbidden ``scenario_not_allowed``."""
    job = await _get(session, principal, job_id)
    return _view(job, principal.organization_name, await _events(session, principal.organization_id, job_id))


async def job_audit(session: AsyncSession, principal: Principal, job_id: str, limit: int) -> list[JobEvent]:
    """The job's events, oldest first; ``limit`` is clamped to [1, 2000]. Raises as :func:`get_job`."""
    await _get(session, principal, job_id)
    return await _events(session, principal.organization_id, job_id, max(1, min(limit, 2000)))


def _cursor_key(key: list[Any]) -> tuple[datetime, str]:
    created, job_id = key
    return clock.as_utc(datetime.fromisoformat(created)), str(job_id)


async def list_jobs(session: AsyncSession, principal: Principal, *, status: str | None, limit: int,
                    cursor: str | None) -> tuple[list[JobView], str | None]:
    """The organization's jobs of the key's mode and scenarios, newest first, ``limit`` (1–200) a page,
    continued by ``cursor`` (:mod:`errand.kit.pagination`); the next page's cursor or None.

    Raises InvalidRequest for an unknown ``status`` or a cursor this API did not hand out."""
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status: must be one of {', '.join(STATUSES)}.",
                             details=[{"path": "status", "message": "unknown status"}])
    limit = max(1, min(limit, 200))
    query = select(Job).where(Job.organization_id == principal.organization_id, Job.key_env == principal.env,
                              Job.scenario.in_(principal.scenarios))
    if status is not None:
        query = query.where(Job.status == status)
    if cursor:
        created, job_id = pagination.decode(cursor, _cursor_key)
        query = query.where(or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id)))
    jobs = list((await session.execute(
        query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1))).scalars())
    page = jobs[:limit]
    views = [_view(j, principal.organization_name, []) for j in page]
    more = len(jobs) > limit
    return views, pagination.encode([page[-1].created_at.isoformat(), page[-1].id]) if more else None


async def cancel_job(core: Core, principal: Principal, job_id: str,
                     idempotency_key: str | None = None) -> tuple[JobView, bool]:
    """Stop a pending, running or awaiting job (``job_aborted``); returns it and whether it is a replay.

    With an idempotency key, a retried cancel replays the first answer instead of InvalidState.
    The status, the voided approval and the ``job_aborted`` event are one unit of work (opened
    here, under the key's claim: :func:`errand.guard.service.run_idempotent`), and no provider is
    called: the job is cancelled wholly or not at all. Raises InvalidState ``invalid_state`` for a
    finished job, JobNotFound for another organization's or mode's job, Forbidden
    ``scenario_not_allowed`` outside the key's scenarios.
    """

    async def operation(claim: guard_service.Claim) -> dict[str, Any]:
        async with core.db.unit_of_work() as session:
            answer = (await _cancel(session, principal, job_id)).model_dump(mode="json")
            # Stored for replays in the same unit of work: a cancel has no step that could fail after it.
            await claim.complete(session, answer)
            return answer

    result = await guard_service.run_idempotent(
        core, organization_id=principal.organization_id, env=principal.env,
        scope="execution_job.cancel",
        key=idempotency_key, request={"jobId": job_id}, operation=operation,
    )
    return JobView.model_validate(result.value), result.replayed


async def _cancel(session: AsyncSession, principal: Principal, job_id: str) -> JobView:
    now = clock.now()
    job = await _get(session, principal, job_id)
    if job.status not in ACTIVE:
        raise InvalidState(f"Job {job_id} is {job.status} and cannot be cancelled.")
    previous = job.status
    # Any active status will do: a runner claiming the pending job meanwhile (pending → running)
    # does not make the cancel wrong, only a job that finished meanwhile does.
    changed = await session.execute(
        update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
        .values(status="cancelled", completed_at=now, updated_at=now, summary="Cancelled by the client")
    )
    if changed.rowcount != 1:
        raise InvalidState(f"Job {job_id} finished while it was being cancelled; read it again.")
    approval = await guard_service.approvals.pending_for(session, principal.organization_id, journal.SUBJECT, job_id)
    if approval is not None:
        await guard_service.approvals.transition(session, approval, "void")
    await journal.record(session, organization_id=principal.organization_id, job_id=job_id, type="job_aborted",
                         message=f"Cancelled by the client while {job.status}", actor=principal.actor)
    await publishing.publish_for(session, job, "job.cancelled", "cancelled", previous_status=previous)
    await session.refresh(job)
    return _view(job, principal.organization_name, await _events(session, principal.organization_id, job_id))


async def provider_metrics(session: AsyncSession, principal: Principal, provider_id: str,
                           days: int) -> ProviderMetrics:
    """Outcomes of this organization's job attempts at one provider over the last ``days`` (1–365):
    only jobs of the key's mode and scenarios count."""
    days = max(1, min(days, 365))
    since = clock.now() - timedelta(days=days)
    rows = (await session.execute(
        select(ProviderOutcome.outcome, func.count(), func.max(ProviderOutcome.created_at))
        .join(Job, Job.id == ProviderOutcome.job_id)
        .where(ProviderOutcome.organization_id == principal.organization_id, Job.key_env == principal.env,
               Job.scenario.in_(principal.scenarios),
               ProviderOutcome.provider_id == provider_id, ProviderOutcome.created_at >= since)
        .group_by(ProviderOutcome.outcome)
    )).all()
    counts = {outcome: count for outcome, count, _ in rows}
    last = max((clock.as_utc(at) for _, _, at in rows if at is not None), default=None)
    total = sum(counts.values())
    accepted = counts.get("accepted", 0)
    return ProviderMetrics(
        provider_id=provider_id, success_rate=round(accepted / total, 4) if total else 0.0, total_attempts=total,
        accepted_count=accepted, manual_override_count=counts.get("manual_override", 0),
        failed_count=counts.get("failed", 0), last_event_at=last, time_range_days=days,
    )


@functools.lru_cache(maxsize=256)
def provider_listing(registry: Any, env: str, scenarios: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    """Every provider of ``registry`` with what it serves, and whether a key of ``env`` and ``scenarios``
    may use it: ``{id, display_name, scenarios, kind, sandbox, enabled}`` each.

    The answer depends only on the registry (fixed when the core is built) and the key's env and
    scenarios, so it is built once per process for each of them and shared: callers must not change it."""
    return tuple(
        {"id": p.id, "display_name": p.display_name, "scenarios": list(p.scenarios), "kind": p.kind,
         "sandbox": p.sandbox, "enabled": (env == "live" or p.sandbox) and any(s in scenarios for s in p.scenarios)}
        for p in registry.all() if hasattr(p, "search")
    )


async def create_profile(session: AsyncSession, principal: Principal, profile: Profile) -> int:
    """Store a traveler profile (encrypted at rest) in the key's organization and mode; its id."""
    stored = BookingProfile(organization_id=principal.organization_id, env=principal.env,
                            data=profile.model_dump(mode="json", exclude_none=True))
    session.add(stored)
    await session.flush()
    return stored.id


async def list_snapshots(session: AsyncSession, principal: Principal, job_id: str) -> list[SnapshotInfo]:
    """The job's screenshots (errand.jobs.snapshots), oldest first, without their images. Raises as :func:`get_job`."""
    await _get(session, principal, job_id)
    rows = (await session.execute(
        select(JobSnapshot.id, JobSnapshot.step, JobSnapshot.url, JobSnapshot.created_at)
        .where(JobSnapshot.organization_id == principal.organization_id, JobSnapshot.job_id == job_id)
        .order_by(JobSnapshot.created_at, JobSnapshot.id)
    )).all()
    return [SnapshotInfo(id=r.id, step=r.step, url=r.url, created_at=r.created_at) for r in rows]


async def snapshot_png(session: AsyncSession, principal: Principal, job_id: str, snapshot_id: str) -> bytes:
    """One screenshot's PNG, decrypted. Raises as :func:`get_job`, and SnapshotNotFound for an id the job
    does not have; :class:`RuntimeError` when the configured key cannot decrypt it (ERRAND_SECRET_KEY changed)."""
    await _get(session, principal, job_id)
    snapshot = (await session.execute(
        select(JobSnapshot).options(undefer(JobSnapshot.png))
        .where(JobSnapshot.id == snapshot_id, JobSnapshot.job_id == job_id,
               JobSnapshot.organization_id == principal.organization_id)
    )).scalar_one_or_none()
    if snapshot is None:
        raise SnapshotNotFound(f"Job {job_id} has no snapshot {snapshot_id}.")
    return snapshot.png

