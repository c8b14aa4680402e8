"""Background work, named and enqueued after commit.

A domain declares its tasks in its ``tasks.py`` (:class:`Task`: a dotted name, the coroutine
function that does the work, and how a failed run is retried) and its periodic work
(:class:`Periodic`). Both runners (the in-process one and the procrastinate worker) register
them from there.

Inside a unit of work, :func:`enqueue` buffers a call on the session; :meth:`errand.kit.db.Database.unit_of_work`
hands the buffer to the process's sender only after the transaction commits, and drops it on a
rollback, so a task never sees a row that was not written, and a rolled-back change starts
nothing (the same discipline as Polar's ``worker/_enqueue.py``). A call lost to a crash between
commit and send is found again by the domain's own recovery sweep (a job still ``pending``).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_BUFFER = "errand.enqueued"


@dataclass(frozen=True)
class TaskCall:
    """One enqueued call: the task's name and its keyword arguments (JSON values only)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


def enqueue(session: AsyncSession, name: str, **args: Any) -> None:
    """Run task ``name`` with ``args`` once ``session``'s transaction commits; never if it rolls back.

    ``args`` must be JSON values (the procrastinate runner stores them)."""
    session.info.setdefault(_BUFFER, []).append(TaskCall(name, args))


def take_enqueued(session: AsyncSession) -> list[TaskCall]:
    """The calls buffered on ``session``, removed from it (the unit of work sends or drops them)."""
    return session.info.pop(_BUFFER, [])


Sender = Callable[[list[TaskCall]], Awaitable[None]]
