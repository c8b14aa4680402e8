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
                log.warning("periodic_task_failed", task=task.name, error=type(exc).__name__, detail=str(exc))
            await asyncio.sleep(task.interval_seconds)

    def start(self) -> None:
        self._running = [asyncio.create_task(self._loop(t), name=f"errand:{t.name}") for t in self._tasks]

    async def stop(self) -> None:
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running = []
