"""The scaled-out runner: `errand serve --no-worker` and `errand worker` processes on one PostgreSQL.

The module gets a fresh database (Errand's schema and the job queue's) and one API
process for all its tests, with the sandbox it mounts slowed down for ``sandbox-tables``
only; each test starts the workers it needs. Jobs are posted and read over HTTP, as an
agent would; the sandbox's bookings are read from the database, as its operator would.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from errand.kit.db import Database
from errand.kit.migrations import upgrade_queue_schema, upgrade_to_head
from errand.models import Job
from tests.conftest import PG_URL, SECRET_KEY, create_pg_database, drop_pg_database, free_port
from tests.runtime.conftest import (
    SLOW_SANDBOX,
    Process,
    Processes,
    active_sandbox_bookings,
    mint_test_key,
    next_day,
    post_job,
    wait_for_event,
    wait_healthy,
    wait_terminal,
)

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="ERRAND_TEST_POSTGRES_URL is not set: the procrastinate runner needs a real PostgreSQL "
                       "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres)")


@dataclass
class Deployment:
    db: Database
    api: Process
    api_url: str
    env: dict[str, str]
    client: httpx.AsyncClient

    def start_worker(self, processes: Processes, name: str) -> Process:
        return processes.start(name, ["worker", "--concurrency", "4"], self.env)


@pytest.fixture(scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    assert PG_URL
    db_url, db_name = await create_pg_database(PG_URL)
    await upgrade_to_head(db_url)
    assert await upgrade_queue_schema(db_url)
    db = Database(db_url)
    data_dir = tmp_path_factory.mktemp("errand-procrastinate")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    env = {"ERRAND_DATABASE_URL": db_url, "ERRAND_RUNNER": "procrastinate", "ERRAND_SECRET_KEY": SECRET_KEY,
           "ERRAND_DATA_DIR": str(data_dir), "ERRAND_SANDBOX_URL": f"{api_url}/sandbox",
           "ERRAND_WORKER_SHUTDOWN_SECONDS": "10"}
    module_processes = Processes(data_dir)
    try:
        api = module_processes.start("api", ["serve", "--no-worker", "--port", str(port)],
                                     {**env, "ERRAND_SANDBOX_FAULTS": SLOW_SANDBOX})
        await wait_healthy(api_url, api)
        key = await mint_test_key(db, "Runner Org")
        async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {key}"},
                                     timeout=10) as client:
            yield Deployment(db=db, api=api, api_url=api_url, env=env, client=client)
    finally:
        module_processes.stop_all()
        await db.dispose()
        await drop_pg_database(PG_URL, db_name)


async def test_job_posted_to_an_api_process_is_run_by_a_worker_process(
    deployment: Deployment, processes: Processes
) -> None:
    worker = deployment.start_worker(processes, "worker-a")
    job_id = await post_job(deployment.client, next_day(), providers=["sandbox-dine"])

    job = await wait_terminal(deployment.client, job_id, timeout=60, context=processes.tails())

    assert job["status"] == "completed", job
    assert job["providerId"] == "sandbox-dine"
    assert job["result"]["confirmation"]
    # SIGTERM: the worker stops taking jobs, finishes what it runs and exits cleanly.
    assert await worker.terminate() == 0, worker.tail()
    assert "Worker stopped." in worker.log()


async def test_serve_without_no_worker_defers_and_consumes_jobs_itself(
    deployment: Deployment, processes: Processes
) -> None:
    port = free_port()
    server = processes.start("serve-with-worker", ["serve", "--port", str(port)], deployment.env)
    health = await wait_healthy(f"http://127.0.0.1:{port}", server)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10,
                                 headers=deployment.client.headers) as client:
        job_id = await post_job(client, next_day(), providers=["sandbox-dine"])
        job = await wait_terminal(client, job_id, timeout=60, context=processes.tails())
        health = (await client.get("/healthz")).json()

    assert job["status"] == "completed", job
    assert health["worker"]["runner"] == "procrastinate"
    assert health["worker"]["listener"]["listening"] is True
    # uvicorn shuts the app down (the worker with it), then re-raises SIGTERM as its exit status.
    assert await server.terminate() in (0, -signal.SIGTERM), server.tail()


async def test_job_of_a_worker_killed_mid_checkout_is_run_again_and_holds_once(
    deployment: Deployment, processes: Processes
) -> None:
    day = next_day()
    first = deployment.start_worker(processes, "worker-b1")
    job_id = await post_job(deployment.client, day, providers=["sandbox-tables"])
    # Policies allowed the booking: the checkout request is on its way, the sandbox takes a
    # second over it. Killed now, the first run holds the table without ever hearing so.
    await wait_for_event(deployment.client, job_id, "action_allowed", timeout=30, context=processes.tails())

    first.kill()
    await asyncio.sleep(2)
    held_by_the_dead_run = await active_sandbox_bookings(deployment.db, day)
    deployment.start_worker(processes, "worker-b2")
    job = await wait_terminal(deployment.client, job_id, timeout=100, context=processes.tails())

    # Run again from the start, it stops at the payment page like any run would.
    assert job["status"] == "paused_payment", job
    async with deployment.db.unit_of_work(read_only=True) as session:
        run_count = (await session.execute(select(Job.run_count).where(Job.id == job_id))).scalar_one()
    assert run_count == 2, "the job ran again from the start on the second worker"
    assert held_by_the_dead_run == 1, "the first run's checkout reached the sandbox"
    assert await active_sandbox_bookings(deployment.db, day) == 1, "the second run got the same hold, not another"


def _restart_command() -> list[str] | None:
    """How to restart this machine's PostgreSQL, when the test server is local and ours to restart."""
    assert PG_URL
    host = make_url(PG_URL).host or "localhost"
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if host not in ("127.0.0.1", "localhost", "::1") or not versions or shutil.which("pg_ctlcluster") is None \
            or os.geteuid() != 0:
        return None
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"]


async def _restart_postgres(command: list[str]) -> None:
    assert PG_URL
    url = make_url(PG_URL)
    await asyncio.to_thread(subprocess.run, command, check=True, timeout=60, capture_output=True)
    deadline = time.monotonic() + 60
    while True:
        ready = await asyncio.to_thread(subprocess.run, ["pg_isready", "-h", url.host or "localhost",
                                                         "-p", str(url.port or 5432)], capture_output=True, timeout=10)
        if ready.returncode == 0:
            return
        assert time.monotonic() < deadline, "PostgreSQL did not come back within 60 s"
        await asyncio.sleep(0.2)


async def test_jobs_are_picked_up_after_a_postgres_restart_under_load(
    deployment: Deployment, processes: Processes
) -> None:
    command = _restart_command()
    if command is None:
        pytest.skip("restarting PostgreSQL needs a local Debian cluster (pg_ctlcluster) and root")
    worker = deployment.start_worker(processes, "worker-c")
    warm_up = await post_job(deployment.client, next_day(), providers=["sandbox-dine"])
    await wait_terminal(deployment.client, warm_up, timeout=60, context=processes.tails())
    in_flight = [await post_job(deployment.client, next_day(), providers=["sandbox-dine"]) for _ in range(6)]

    await _restart_postgres(command)
    after = [await post_job(deployment.client, next_day(), providers=["sandbox-dine"]) for _ in range(4)]

    finished = await asyncio.gather(*(wait_terminal(deployment.client, job_id, timeout=30, context=processes.tails())
                                      for job_id in after))
    assert [job["status"] for job in finished] == ["completed"] * 4
    # Jobs caught by the restart end too: finished, failed with a reason, or re-run after recovery.
    caught = await asyncio.gather(*(wait_terminal(deployment.client, job_id, timeout=90, context=processes.tails())
                                    for job_id in in_flight))
    assert all(job["status"] == "completed" or job["error"] for job in caught), caught
    assert worker.alive, worker.tail()
    assert "job_listener_reconnected" in worker.log(), worker.tail()


async def test_worker_refuses_to_start_without_the_queue_schema(processes: Processes, tmp_path: Path) -> None:
    assert PG_URL
    db_url, db_name = await create_pg_database(PG_URL)
    try:
        await upgrade_to_head(db_url)
        worker = processes.start("worker-no-schema", ["worker"], {
            "ERRAND_DATABASE_URL": db_url, "ERRAND_SECRET_KEY": SECRET_KEY, "ERRAND_DATA_DIR": str(tmp_path)})
        status = await asyncio.to_thread(worker.popen.wait, 60)
        assert status == 1
        assert "errand migrate" in worker.log()
    finally:
        await drop_pg_database(PG_URL, db_name)
