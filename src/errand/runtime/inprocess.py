"""The embedded runner: tasks and periodic work on the API process's own event loop.

:class:`TaskRunner` is the process's task sender (``Database.task_sender``): committed calls
are queued in memory and run a bounded number at a time, each retried as its declaration says
(:class:`errand.kit.tasks.Retry`). A call lost with the process (a crash before it ran) is
found again by its domain's recovery sweep, e.g. a job still ``pending``.

:class:`InProcessRunner` runs periodic work: each one on its interval, one run at a time; a
failure is logged and the work runs again next interval, so one bad run never stops the loop.
"""

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from errand.kit import metrics
from errand.kit.logging import get_logger
from errand.kit.tasks import Periodic, TaskCall, TaskRegistry

log = get_logger("errand.runtime")


class InProcessRunner:
    """Periodic work on this event loop; each run gets ``context`` (the core, or None for the
    sandbox served alone)."""

    def __init__(self, periodic: Sequence[Periodic], context: Any = None) -> None:
        self._periodic = list(periodic)
        self._context = context
        self._running: list[asyncio.Task[None]] = []

    async def _loop(self, periodic: Periodic) -> None:
        while True:
            try:
                await periodic.run(self._context)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the loop alive, report the failure
                # The exception class only: a message may quote the data it failed on (personal data stays out of logs).
                log.warning("periodic_task_failed", task=periodic.name, error=type(exc).__name__)
            await asyncio.sleep(periodic.interval_seconds)

    def start(self) -> None:
        self._running = [asyncio.create_task(self._loop(p), name=f"errand:{p.name}") for p in self._periodic]

    def healthy(self) -> bool:
        """Whether every periodic loop is alive (a loop only ends by being stopped or crashing)."""
        return all(not task.done() for task in self._running)

    async def stop(self) -> None:
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running = []


class TaskRunner:
    """Runs committed task calls on this process's event loop, ``concurrency`` at a time.

    :meth:`send` is the database's task sender. A call whose task declares a ``lock`` is
    dropped while another call under the same lock waits (the task's own claim, e.g. a job's,
    makes a duplicate run harmless anyway).
    """

    def __init__(self, registry: TaskRegistry, core: Any, concurrency: int = 8) -> None:
        self._registry = registry
        self._core = core
        self._concurrency = concurrency
        # Each call with when it was sent (time.monotonic), for the pickup lag.
        self._queue: asyncio.Queue[tuple[TaskCall, float]] = asyncio.Queue()
        self._waiting: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []

    async def send(self, calls: list[TaskCall]) -> None:
        for call in calls:
            lock = self._registry[call.name].lock_for(call.args)
            if lock is not None:
                if lock in self._waiting:
                    continue
                self._waiting.add(lock)
            self._queue.put_nowait((call, time.monotonic()))
            metrics.task_queued("inprocess")

    async def _run(self, call: TaskCall) -> None:
        task = self._registry[call.name]
        attempt = 1
        while True:
            try:
                with metrics.task_run(call.name):
                    await task.run(self._core, **call.args)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a task ends its own work; this is a last resort
                if not task.retry.retries(attempt, exc):
                    log.warning("task_failed", task=call.name, attempt=attempt, error=type(exc).__name__)
                    return
                await asyncio.sleep(task.retry.wait(attempt))
                attempt += 1

    async def _work(self) -> None:
        while True:
            call, sent_at = await self._queue.get()
            metrics.task_picked("inprocess", call.name, sent_at)
            lock = self._registry[call.name].lock_for(call.args)
            if lock is not None:
                self._waiting.discard(lock)
            await self._run(call)

    def healthy(self) -> bool:
        """Whether every worker loop is alive: calls sent now will be run."""
        return bool(self._workers) and all(not task.done() for task in self._workers)

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"errand:task-worker-{i}")
                         for i in range(self._concurrency)]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
