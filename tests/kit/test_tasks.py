"""Task declarations and the in-process runner: retries as declared, one waiting call per lock."""

import asyncio
from types import SimpleNamespace

import pytest

from errand.kit.tasks import Periodic, Retry, Task, TaskCall, TaskRegistry
from errand.runtime.inprocess import TaskRunner


def test_the_registry_collects_the_domains_declarations() -> None:
    async def work(core: object, **args: object) -> None: ...

    jobs = SimpleNamespace(TASKS=[Task("test.a", work)], PERIODIC=[Periodic("sweep", 5, work)])
    bookings = SimpleNamespace(PERIODIC=[Periodic("other", 30, work)])
    registry = TaskRegistry.collect(jobs, bookings)
    assert list(registry.tasks) == ["test.a"]
    assert [p.name for p in registry.periodic] == ["sweep", "other"]
    with pytest.raises(LookupError):
        registry["test.missing"]
    with pytest.raises(ValueError):
        TaskRegistry.collect(jobs, jobs)


def test_the_core_declares_run_job_and_the_periodic_work() -> None:
    from errand.approvals import tasks as approval_tasks
    from errand.bookings import tasks as booking_tasks
    from errand.jobs import tasks as job_tasks

    registry = TaskRegistry.collect(job_tasks, booking_tasks, approval_tasks)
    assert registry["errand.run_job"].lock_for({"job_id": "job_1"}) == "job:job_1"
    assert {p.name for p in registry.periodic} == {
        "recover_jobs", "expire_handoffs", "finish_interrupted_cancels", "expire_approvals",
        "finish_decided_approvals"}


async def test_a_failed_run_is_retried_as_declared() -> None:
    runs: list[int] = []
    done = asyncio.Event()

    async def flaky(core: object, n: int) -> None:
        runs.append(n)
        if len(runs) < 3:
            raise OSError("blip")
        done.set()

    registry = TaskRegistry([Task("test.flaky", flaky, Retry(max_attempts=3, exponential_wait=0.01,
                                                             retry_on=(OSError,)))])
    runner = TaskRunner(registry, core=None, concurrency=1)
    runner.start()
    try:
        await runner.send([TaskCall("test.flaky", {"n": 1})])
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await runner.stop()
    assert runs == [1, 1, 1]


async def test_one_call_waits_per_lock() -> None:
    runs: list[str] = []

    async def run(core: object, job_id: str) -> None:
        runs.append(job_id)

    registry = TaskRegistry([Task("test.run", run, lock=lambda args: f"job:{args['job_id']}")])
    runner = TaskRunner(registry, core=None, concurrency=1)
    await runner.send([TaskCall("test.run", {"job_id": j}) for j in ("a", "a", "b")])
    runner.start()
    try:
        for _ in range(50):
            if len(runs) == 2:
                break
            await asyncio.sleep(0.01)
        await runner.send([TaskCall("test.run", {"job_id": "a"})])  # no longer waiting: runs again
        for _ in range(50):
            if len(runs) == 3:
                break
            await asyncio.sleep(0.01)
    finally:
        await runner.stop()
    assert runs == ["a", "b", "a"]


async def test_the_queue_registers_the_declared_tasks_with_their_retry_and_lock() -> None:
    from procrastinate.testing import InMemoryConnector

    from errand.jobs import tasks as job_tasks
    from errand.runtime.queue import create_queue_app, defer

    registry = TaskRegistry.collect(job_tasks)
    connector = InMemoryConnector()
    app = create_queue_app(connector, registry)
    async with app.open_async():
        assert await defer(app, registry["errand.run_job"], {"job_id": "job_1"})
        assert not await defer(app, registry["errand.run_job"], {"job_id": "job_1"})  # one delivery waits
    retry = app.tasks["errand.run_job"].retry_strategy
    assert (retry.max_attempts, retry.exponential_wait) == (5, 2)
    assert [(j["task_name"], j["queueing_lock"], j["args"]) for j in connector.jobs.values()] == [
        ("errand.run_job", "job:job_1", {"job_id": "job_1"})]
