"""The embedded runner: periodic work on the API process's own event loop.

Each task runs on its interval, one run at a time; a failure is logged and the task
runs again next interval, so one bad run never stops the loop.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from errand.kit.logging import get_logger

log = get_logger("errand.runtime")


@dataclass
class PeriodicTask:
    name: str
    interval_seconds: float
    run: Callable[[], Awaitable[object]]


class InProcessRunner:
    def __init__(self, tasks: list[PeriodicTask]) -> None:
        self._tasks = tasks
        self._running: list[asyncio.Task[None]] = []

    async def _loop(self, task: PeriodicTask) -> None:
        while True:
            try:
                await task.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the loop alive, report the failure
                # The exception class only: a message may quote the data it failed on (personal data stays out of logs).
                log.warning("periodic_task_failed", task=task.name, error=type(exc).__name__)
            await asyncio.sleep(task.interval_seconds)

    def start(self) -> None:
        self._running = [asyncio.create_task(self._loop(t), name=f"errand:{t.name}") for t in self._tasks]

    async def stop(self) -> None:
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running = []


class JobRunner:
    """Runs execution jobs on this process's event loop, a bounded number at a time.

    ``dispatch`` is called after a job's row is committed; the periodic recovery sweep
    dispatches anything that was missed (a crash between commit and dispatch, a runner
    that died), and the claim inside ``run_job`` makes a duplicate dispatch harmless.
    """

    def __init__(self, run: Callable[[str], Awaitable[None]], concurrency: int = 8) -> None:
        self._run = run
        self._concurrency = concurrency
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []

    async def dispatch(self, job_id: str) -> None:
        if job_id not in self._queued:
            self._queued.add(job_id)
            self._queue.put_nowait(job_id)

    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            self._queued.discard(job_id)
            try:
                await self._run(job_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - run_job ends jobs itself; this is a last resort
                log.warning("job_run_failed", job_id=job_id, error=type(exc).__name__)

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"errand:job-worker-{i}")
                         for i in range(self._concurrency)]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
