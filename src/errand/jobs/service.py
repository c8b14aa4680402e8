"""Execution jobs: creating, reading, listing and cancelling them, and provider metrics.

A job is written with its ``job_created`` event in one transaction and handed to the
runner only after that commits; a job that never reaches a runner (a crash in between)
is still ``pending`` in the database, and the runner's sweep picks it up. Every read is
filtered by the caller's organization and mode (a test key's jobs do not exist for a live key,
and the other way round, idempotency keys included), and every operation on a job by the
key's scenarios (:func:`errand.identity.service.require_scenario`); lists show only those.
"""

import base64
import functools
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from errand.audit import service as audit_service
from errand.guard import service as guard_service
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.jobs import journal, payments, validation
from errand.jobs.schemas import JobCreate, JobEvent, JobView, Profile, ProviderMetrics
from errand.kit import clock, crypto, inputs
from errand.kit.core import Core
from errand.kit.errors import Conflict, InvalidRequest, NotFound
from errand.models import BookingProfile, Job, ProviderOutcome

TERMINAL = ("paused_payment", "completed", "no_availability", "needs_login", "captcha", "error", "cancelled")
ACTIVE = ("pending", "running", "awaiting_approval")
STATUSES = ACTIVE + TERMINAL


async def _profile_for(session: Any, principal: Principal, data: JobCreate) -> dict[str, Any]:
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


async def create_job(core: Core, principal: Principal, data: JobCreate) -> tuple[JobView, bool]:
    """Create a job (``created`` True) or return the one made earlier with the same idempotency key."""
    identity_service.require_scenario(principal, data.scenario)
    validation.check_providers(data.consent, (p.id for p in core.providers.all()))
    key = data.client_metadata.idempotencyKey
    digest = crypto.sha256_hex(crypto.canonical_json(data.model_dump(mode="json")))
    job_id = str(uuid.uuid4())
    try:
        async with core.db.unit_of_work() as session:
            if key is not None:
                existing = await _by_key(session, principal, key)
                if existing is not None:
                    return await _existing(core, principal, existing, digest), False
            job = Job(
                id=job_id, organization_id=principal.organization_id, api_key_id=principal.api_key_id,
                key_env=principal.env, scenario=data.scenario, status="pending", params=data.params,
                profile=await _profile_for(session, principal, data),
                consent=data.consent.model_dump(mode="json"),
                client_metadata=data.client_metadata.model_dump(mode="json", exclude_none=True),
                idempotency_key=key, request_hash=digest,
            )
            session.add(job)
            await session.flush()
            await journal.record(session, organization_id=principal.organization_id, job_id=job.id,
                                type="job_created", message=f"Job created for a {data.scenario} booking",
                                actor=principal.actor)
    except IntegrityError:
        async with core.db.unit_of_work(read_only=True) as session:
            existing = await _by_key(session, principal, key or "")
            if existing is None:
                raise
            return await _existing(core, principal, existing, digest), False
    # Read before dispatching: the answer is the job as created (pending), whatever the runner does next.
    created = await get_job(core, principal, job_id)
    if core.dispatch is not None:
        await core.dispatch(job_id)
    return created, True


async def _by_key(session: Any, principal: Principal, key: str) -> Job | None:
    return (await session.execute(select(Job).where(
        Job.organization_id == principal.organization_id, Job.key_env == principal.env,
        Job.idempotency_key == key))).scalar_one_or_none()


async def _existing(core: Core, principal: Principal, job: Job, digest: str) -> JobView:
    if job.request_hash != digest:
        raise Conflict("idempotency_conflict",
                       "clientMetadata.idempotencyKey was already used for a different job request.")
    return await get_job(core, principal, job.id)


async def _get(session: Any, principal: Principal, job_id: str) -> Job:
    """The job as the key may act on it: NotFound for another organization's or the other mode's,
    Forbidden ``scenario_not_allowed`` for a scenario the key is not scoped to."""
    job = (await session.execute(select(Job).where(
        Job.id == job_id, Job.organization_id == principal.organization_id,
        Job.key_env == principal.env))).scalar_one_or_none()
    if job is None:
        raise NotFound("job_not_found", f"Job {job_id} not found.")
    identity_service.require_scenario(principal, job.scenario)
    return job


async def _events(session: Any, organization_id: str, job_id: str, limit: int = 2000) -> list[JobEvent]:
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


async def get_job(core: Core, principal: Principal, job_id: str) -> JobView:
    async with core.db.unit_of_work(read_only=True) as session:
        job = await _get(session, principal, job_id)
        log = await _events(session, principal.organization_id, job_id)
    return _view(job, principal.organization_name, log)


async def job_audit(core: Core, principal: Principal, job_id: str, limit: int) -> list[JobEvent]:
    """The job's events, oldest first; ``limit`` is clamped to [1, 2000]."""
    async with core.db.unit_of_work(read_only=True) as session:
        await _get(session, principal, job_id)
        return await _events(session, principal.organization_id, job_id, max(1, min(limit, 2000)))


def _encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, job_id = inputs.parse_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return clock.as_utc(datetime.fromisoformat(created)), str(job_id)
    except (ValueError, TypeError, InvalidRequest) as exc:
        raise InvalidRequest("cursor: not a cursor this API returned.",
                             details=[{"path": "cursor", "message": "invalid"}]) from exc


async def list_jobs(core: Core, principal: Principal, *, status: str | None, limit: int,
                    cursor: str | None) -> tuple[list[JobView], str | None]:
    """The organization's jobs, newest first, ``limit`` (1–200) a page, continued by ``cursor``."""
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status: must be one of {', '.join(STATUSES)}.",
                             details=[{"path": "status", "message": "unknown status"}])
    limit = max(1, min(limit, 200))
    query = select(Job).where(Job.organization_id == principal.organization_id, Job.key_env == principal.env,
                              Job.scenario.in_(principal.scenarios))
    if status is not None:
        query = query.where(Job.status == status)
    if cursor:
        created, job_id = _decode_cursor(cursor)
        query = query.where(or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id)))
    async with core.db.unit_of_work(read_only=True) as session:
        jobs = list((await session.execute(
            query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1))).scalars())
        page = jobs[:limit]
        views = [_view(j, principal.organization_name, []) for j in page]
    return views, _encode_cursor(page[-1]) if len(jobs) > limit else None


async def cancel_job(core: Core, principal: Principal, job_id: str,
                     idempotency_key: str | None = None) -> tuple[JobView, bool]:
    """Stop a pending, running or awaiting job (``job_aborted``); a finished job is Conflict.

    With an idempotency key, a retried cancel replays the first answer instead of Conflict.
    The status, the voided approval and the ``job_aborted`` event are one unit of work, and no
    provider is called: the job is cancelled wholly or not at all. NotFound for another
    organization's or mode's job, Forbidden ``scenario_not_allowed`` outside the key's scenarios.
    """

    async def operation(claim: guard_service.Claim) -> dict[str, Any]:
        return await _cancel_job(core, principal, job_id, claim)

    result = await guard_service.run_idempotent(
        core.db, core.settings, organization_id=principal.organization_id, env=principal.env,
        scope="execution_job.cancel",
        key=idempotency_key, request={"jobId": job_id}, operation=operation,
    )
    return JobView.model_validate(result.value), result.replayed


async def _cancel_job(core: Core, principal: Principal, job_id: str, claim: guard_service.Claim) -> dict[str, Any]:
    now = clock.now()
    async with core.db.unit_of_work() as session:
        job = await _get(session, principal, job_id)
        if job.status not in ACTIVE:
            raise Conflict("invalid_state", f"Job {job_id} is {job.status} and cannot be cancelled.")
        # Any active status will do: a runner claiming the pending job meanwhile (pending → running)
        # does not make the cancel wrong, only a job that finished meanwhile does.
        changed = await session.execute(
            update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
            .values(status="cancelled", completed_at=now, updated_at=now, summary="Cancelled by the client")
        )
        if changed.rowcount != 1:
            raise Conflict("invalid_state", f"Job {job_id} finished while it was being cancelled; read it again.")
        approval = await guard_service.approvals.pending_for(session, principal.organization_id, journal.SUBJECT, job_id)
        if approval is not None:
            await guard_service.approvals.transition(session, approval, "void")
        await journal.record(session, organization_id=principal.organization_id, job_id=job_id, type="job_aborted",
                            message=f"Cancelled by the client while {job.status}", actor=principal.actor)
        # The answer is read, and stored for replays, in the same unit of work: a cancel has no step
        # that could fail after it committed.
        await session.refresh(job)
        answer = _view(job, principal.organization_name,
                       await _events(session, principal.organization_id, job_id)).model_dump(mode="json")
        await claim.complete(session, answer)
        return answer


async def provider_metrics(core: Core, principal: Principal, provider_id: str, days: int) -> ProviderMetrics:
    """Outcomes of this organization's job attempts at one provider over the last ``days`` (1–365):
    only jobs of the key's mode and scenarios count."""
    days = max(1, min(days, 365))
    since = clock.now() - timedelta(days=days)
    async with core.db.unit_of_work(read_only=True) as session:
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


def list_providers(core: Core, principal: Principal) -> tuple[dict[str, Any], ...]:
    """Every provider with what it serves, and whether this key may use it: ``{id, display_name,
    scenarios, kind, sandbox, enabled}`` each.

    The answer depends only on the provider registry (fixed when the core is built) and the key's
    env and scenarios, so it is built once per process for each of them (:func:`provider_listing`)
    and shared: callers must not change it."""
    return provider_listing(core.providers, principal.env, tuple(principal.scenarios))


@functools.lru_cache(maxsize=256)
def provider_listing(registry: Any, env: str, scenarios: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    """:func:`list_providers` for a registry, a key env and the key's scenarios (cached; shared)."""
    return tuple(
        {"id": p.id, "display_name": p.display_name, "scenarios": list(p.scenarios), "kind": p.kind,
         "sandbox": p.sandbox, "enabled": (env == "live" or p.sandbox) and any(s in scenarios for s in p.scenarios)}
        for p in registry.all() if hasattr(p, "search")
    )


async def create_profile(core: Core, principal: Principal, profile: Profile) -> int:
    async with core.db.unit_of_work() as session:
        stored = BookingProfile(organization_id=principal.organization_id, env=principal.env,
                                data=profile.model_dump(mode="json", exclude_none=True))
        session.add(stored)
        await session.flush()
        return stored.id


