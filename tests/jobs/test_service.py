"""The jobs service called directly, in units of work the test opens, as a dialect's route does.

The service reads and writes in the caller's session and never commits; a job's run is
enqueued with it and reaches the runner only once the unit of work commits.
"""

import secrets
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.jobs import service as jobs_service
from errand.jobs.errors import JobNotFound
from errand.jobs.schemas import JobView
from errand.kit.db import Database
from errand.kit.errors import DomainError, InvalidRequest, InvalidState
from errand.kit.tasks import TaskCall
from tests.api.execution.support import restaurant_job
from tests.conftest import Server


class _Registry:
    """A provider registry with no providers: consent here names none."""

    def all(self) -> tuple[Any, ...]:
        return ()


@pytest.fixture
async def db(server: Server) -> AsyncIterator[tuple[Database, list[TaskCall]]]:
    """A database of the test's own on the server's data, whose committed task calls are recorded."""
    database = Database(server.settings.database_url)
    sent: list[TaskCall] = []

    async def record(calls: list[TaskCall]) -> None:
        sent.extend(calls)

    database.task_sender = record
    try:
        yield database, sent
    finally:
        await database.dispose()


async def _principal(database: Database, organization: str | None = None) -> Principal:
    async with database.unit_of_work() as session:
        issued = await identity_service.create_api_key(
            session, organization_name=organization or f"Org {secrets.token_hex(4)}", env="test",
            scenarios=["restaurant", "hotel", "flight", "activity"])
    return Principal(organization_id=issued.organization_id, organization_name=issued.organization_name,
                     api_key_id=issued.id, key_prefix=issued.prefix, env=issued.env, role=issued.role,
                     scenarios=issued.scenarios, rate_limit_per_day=10_000)


async def _create(database: Database, principal: Principal, day: date, **overrides: Any) -> JobView:
    data = jobs_service.validate_job_request(restaurant_job(day, **overrides))
    async with database.unit_of_work() as session:
        job, created = await jobs_service.create_job(session, principal, data, _Registry())
    assert created
    return job


async def test_a_created_job_is_run_once_its_unit_of_work_commits(
        db: tuple[Database, list[TaskCall]], day: date) -> None:
    database, sent = db
    principal = await _principal(database)
    job = await _create(database, principal, day)
    assert job.status == "pending"
    # Its run, sent once, after the commit (beside the outbox's dispatch of job.created).
    assert [call for call in sent if call.name == "errand.run_job"] == [TaskCall("errand.run_job", {"job_id": job.id})]


async def test_a_job_created_in_a_rolled_back_unit_of_work_neither_exists_nor_runs(
        db: tuple[Database, list[TaskCall]], day: date) -> None:
    database, sent = db
    principal = await _principal(database)
    data = jobs_service.validate_job_request(restaurant_job(day))
    with pytest.raises(RuntimeError):
        async with database.unit_of_work() as session:
            job, _ = await jobs_service.create_job(session, principal, data, _Registry())
            raise RuntimeError("the edge failed after the job was written")
    assert sent == []
    async with database.unit_of_work(read_only=True) as session:
        with pytest.raises(JobNotFound):
            await jobs_service.get_job(session, principal, job.id)


async def test_the_same_idempotency_key_returns_the_first_job_and_runs_it_once(
        db: tuple[Database, list[TaskCall]], day: date) -> None:
    database, sent = db
    principal = await _principal(database)
    body = restaurant_job(day, clientMetadata={"idempotencyKey": "same-key"})
    first = await _create(database, principal, day, clientMetadata={"idempotencyKey": "same-key"})
    async with database.unit_of_work() as session:
        again, created = await jobs_service.create_job(
            session, principal, jobs_service.validate_job_request(body), _Registry())
    assert (again.id, created) == (first.id, False)
    assert [call.args["job_id"] for call in sent if call.name == "errand.run_job"] == [first.id]


async def test_another_organizations_job_is_job_not_found(db: tuple[Database, list[TaskCall]], day: date) -> None:
    database, _ = db
    job = await _create(database, await _principal(database), day)
    stranger = await _principal(database)
    async with database.unit_of_work(read_only=True) as session:
        with pytest.raises(JobNotFound) as raised:
            await jobs_service.job_audit(session, stranger, job.id, 10)
    assert (raised.value.code, raised.value.kind) == ("job_not_found", "not_found")


async def test_a_finished_job_cancelled_again_is_invalid_state(
        db: tuple[Database, list[TaskCall]], server: Server, day: date) -> None:
    database, _ = db
    principal = await _principal(database)
    job = await _create(database, principal, day)
    core = type("CoreLike", (), {"db": database, "settings": server.settings})()
    cancelled, replayed = await jobs_service.cancel_job(core, principal, job.id)  # type: ignore[arg-type]
    assert (cancelled.status, replayed) == ("cancelled", False)
    with pytest.raises(InvalidState):
        await jobs_service.cancel_job(core, principal, job.id)  # type: ignore[arg-type]


async def test_the_jobs_list_pages_with_its_cursor(db: tuple[Database, list[TaskCall]], day: date) -> None:
    database, _ = db
    principal = await _principal(database)
    made = [(await _create(database, principal, day)).id for _ in range(3)]
    seen: list[str] = []
    cursor = None
    async with database.unit_of_work(read_only=True) as session:
        while True:
            page, cursor = await jobs_service.list_jobs(session, principal, status=None, limit=2, cursor=cursor)
            seen += [view.id for view in page]
            if cursor is None:
                break
        with pytest.raises(InvalidRequest) as raised:
            await jobs_service.list_jobs(session, principal, status=None, limit=2, cursor="not-a-cursor")
    assert sorted(seen) == sorted(made) and len(seen) == 3
    assert raised.value.details == [{"path": "cursor", "message": "invalid"}]


def test_every_code_the_jobs_domain_raises_is_declared_once() -> None:
    for code in ("job_not_found", "snapshot_not_found", "invalid_signature", "invalid_event", "provider_mismatch",
                 "missing_job_id", "missing_provider_id", "invalid_state"):
        assert code in DomainError.declared, code
