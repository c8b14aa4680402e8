"""The embedded runner: a plain `errand serve` on SQLite runs jobs itself and recovers them after a crash.

The in-process runner has no public way to lose a job's task short of killing the whole
process, which is what the recovery test does (SIGKILL mid-job, then a new ``errand
serve`` on the same database). The job's heartbeat is then aged through the test's own
connection, so the test need not wait out the 30 s after which a silent runner counts as dead.
"""

import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from errand.kit import clock
from errand.kit.db import Database
from errand.kit.migrations import upgrade_to_head
from errand.models import Job
from tests.conftest import SECRET_KEY, free_port
from tests.runtime.conftest import (
    ERRAND,
    SLOW_SANDBOX,
    Process,
    Processes,
    active_sandbox_bookings,
    mint_test_key,
    next_day,
    post_job,
    wait_for_job,
    wait_healthy,
    wait_terminal,
)


@dataclass
class Embedded:
    db: Database
    env: dict[str, str]
    key: str

    def serve(self, processes: Processes, name: str) -> tuple[Process, str]:
        port = free_port()
        return processes.start(name, ["serve", "--port", str(port)], self.env), f"http://127.0.0.1:{port}"

    def client(self, base_url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=10)


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Embedded]:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'errand.db'}"
    await upgrade_to_head(db_url)
    db = Database(db_url)
    try:
        env = {"ERRAND_DATA_DIR": str(tmp_path), "ERRAND_DATABASE_URL": db_url, "ERRAND_SECRET_KEY": SECRET_KEY,
               "ERRAND_SANDBOX_FAULTS": SLOW_SANDBOX, "ERRAND_RUNNER": "inprocess", "ERRAND_SANDBOX_URL": ""}
        yield Embedded(db=db, env=env, key=await mint_test_key(db, "Embedded Org"))
    finally:
        await db.dispose()


async def test_job_posted_to_a_plain_serve_completes(embedded: Embedded, processes: Processes) -> None:
    server, base_url = embedded.serve(processes, "serve")
    await wait_healthy(base_url, server)
    async with embedded.client(base_url) as client:
        job_id = await post_job(client, next_day(), providers=["sandbox-dine"])
        job = await wait_terminal(client, job_id, timeout=30, context=processes.tails())

    assert job["status"] == "completed", job
    assert job["result"]["confirmation"]


async def test_running_job_whose_runner_died_is_run_again_and_books_once(
    embedded: Embedded, processes: Processes
) -> None:
    day = next_day()
    first, base_url = embedded.serve(processes, "serve-1")
    await wait_healthy(base_url, first)
    async with embedded.client(base_url) as client:
        job_id = await post_job(client, day, providers=["sandbox-tables"])
        await wait_for_job(client, job_id, ("running",), timeout=30, context=processes.tails())
    first.kill()
    async with embedded.db.unit_of_work() as session:
        await session.execute(update(Job).where(Job.id == job_id, Job.status == "running")
                              .values(heartbeat_at=clock.now() - timedelta(minutes=5)))

    second, base_url = embedded.serve(processes, "serve-2")
    await wait_healthy(base_url, second)
    async with embedded.client(base_url) as client:
        job = await wait_terminal(client, job_id, timeout=60, context=processes.tails())

    # Run again from the start, it stops at the payment page like any run would.
    assert job["status"] == "paused_payment", job
    async with embedded.db.unit_of_work(read_only=True) as session:
        run_count = (await session.execute(select(Job.run_count).where(Job.id == job_id))).scalar_one()
    assert run_count == 2, "the job ran again from the start"
    assert await active_sandbox_bookings(embedded.db, day) == 1, "one hold, however many runs"


def test_procrastinate_runner_without_postgres_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "ERRAND_DATA_DIR": str(tmp_path), "ERRAND_DATABASE_URL": "", "ERRAND_RUNNER": "procrastinate"}
    for command in (["serve", "--port", str(free_port())], ["worker"], ["migrate"]):
        result = subprocess.run([ERRAND, *command], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (command, result.stderr)
        assert "needs PostgreSQL" in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.stderr
