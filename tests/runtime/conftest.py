"""Real processes for the runner tests: `errand serve` and `errand worker`, started, killed, restarted.

Every process is bounded (each wait has a deadline) and always cleaned up: a
:class:`Processes` group stops what it started (SIGTERM, then SIGKILL) when its test or
module ends, whatever happened. Each process writes to its own log file, whose tail is put
into assertion messages so that a failure in a subprocess can be read from the test report.
"""

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from errand.identity import service as identity_service
from errand.jobs.schemas import TERMINAL
from errand.kit.db import Database
from errand.models.sandbox_booking import SandboxBooking

ERRAND = str(Path(sys.executable).parent / "errand")
# Le Bernardin is served by both sandbox restaurant providers and meets no obstacle at either.
VENUE = ("Le Bernardin", "New York", "rst_le-bernardin-new-york")
# A second per request to sandbox-tables keeps its jobs `running` for several seconds: time to kill a runner mid-job.
SLOW_SANDBOX = '{"sandbox-tables": {"latency_ms": 1000}}'


class Process:
    """One ``errand …`` subprocess with its own log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen([ERRAND, *args], env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return f"--- {self.name} (exit {self.popen.poll()}) ---\n" + "\n".join(self.log().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as when a machine dies."""
        if self.alive:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    async def terminate(self, timeout: float = 45) -> int:
        """SIGTERM, then wait for the exit status (SIGKILL if it takes longer than ``timeout``)."""
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.popen.wait, timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop within {timeout:g} s of SIGTERM\n{self.tail()}") from None

    def stop(self) -> None:
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


class Processes:
    """The subprocesses of a test or module, stopped together by :meth:`stop_all`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Process] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        process = Process(name, args, {**os.environ, **env}, self.log_dir / f"{name}.log")
        self.started.append(process)
        return process

    def tails(self) -> str:
        return "\n".join(p.tail() for p in self.started)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    group = Processes(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


async def wait_healthy(base_url: str, process: Process, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                response = await client.get(f"{base_url}/healthz")
                if response.status_code == 200:
                    return response.json()
            except httpx.TransportError:
                pass
            assert process.alive, f"{process.name} exited before answering\n{process.tail()}"
            assert time.monotonic() < deadline, f"{process.name} did not answer within {timeout:g} s\n{process.tail()}"
            await asyncio.sleep(0.2)


async def mint_test_key(db: Database, organization: str) -> str:
    """A test-mode execution key (``ogk_test_…``): it only ever reaches sandbox providers."""
    async with db.unit_of_work() as session:
        issued = await identity_service.create_api_key(session, organization_name=organization, env="test",
                                                       scenarios=["restaurant"], prefix="ogk")
    return issued.plaintext


_days = itertools.count()


def next_day() -> date:
    """A date no other job of this run books, so no two jobs share a slot's capacity."""
    return date(2028, 3, 1) + timedelta(days=next(_days))


def job_request(day: date, *, providers: list[str], time_of_day: str = "19:00") -> dict[str, Any]:
    name, city, _ = VENUE
    return {
        "request": {"scenario": "restaurant", "params": {
            "restaurant_name": name, "city": city, "date": day.isoformat(), "time": time_of_day, "covers": 2}},
        "profile": {"first_name": "Alex", "last_name": "Traveler", "email": "alex@example.com",
                    "phone": "+15551234567"},
        "consent": {"allowedProviders": providers, "allowTimeAdjustment": False, "allowVenueSwitch": False},
    }


async def post_job(client: httpx.AsyncClient, day: date, *, providers: list[str], attempts: int = 20) -> str:
    """POST a job; a 503 (the API's database reconnecting) is retried for a few seconds."""
    for _ in range(attempts):
        response = await client.post("/api/v1/execution-jobs", json=job_request(day, providers=providers))
        if response.status_code != 503:
            break
        await asyncio.sleep(0.5)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    return body["jobId"]


async def wait_for_job(client: httpx.AsyncClient, job_id: str, statuses: tuple[str, ...], *, timeout: float,
                       context: str = "") -> dict[str, Any]:
    """Poll the job until its status is one of ``statuses``; fail with the last view after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            response = await client.get(f"/api/v1/execution-jobs/{job_id}")
            if response.status_code == 200:
                last = response.json()
                if last["status"] in statuses:
                    return last
        except httpx.TransportError as exc:
            last = repr(exc)
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} not in {statuses} within {timeout:g} s; last: {last}\n{context}")


async def wait_for_event(client: httpx.AsyncClient, job_id: str, event_type: str, *, timeout: float,
                         context: str = "") -> None:
    """Poll the job's audit log until an event of ``event_type`` is in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.get(f"/api/v1/execution-jobs/{job_id}/audit")
        if response.status_code == 200 and any(e.get("type") == event_type for e in response.json()["events"]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {event_type} event for job {job_id} within {timeout:g} s\n{context}")


async def wait_terminal(client: httpx.AsyncClient, job_id: str, *, timeout: float, context: str = "") -> dict[str, Any]:
    return await wait_for_job(client, job_id, TERMINAL, timeout=timeout, context=context)


async def active_sandbox_bookings(db: Database, day: date) -> int:
    """Holds and bookings the sandbox keeps for the test venue on ``day`` (each job books its own day)."""
    async with db.unit_of_work(read_only=True) as session:
        return (await session.execute(select(func.count()).select_from(SandboxBooking).where(
            SandboxBooking.venue_id == VENUE[2], SandboxBooking.slot.startswith(day.isoformat()),
            SandboxBooking.status.in_(("held", "booked"))))).scalar_one()

