"""Background work, named and enqueued after commit.

A domain declares its tasks in its ``tasks.py`` (:class:`Task`: a dotted name, the coroutine
function that does the work, and how a failed run is retried) and its periodic work
(:class:`Periodic`), as ``TASKS`` and ``PERIODIC``. The composition root collects them in a
:class:`TaskRegistry` (``core.tasks``), and both runners (the in-process one and the
procrastinate worker) register them from there; the runner a process uses is its sender.

Inside a unit of work, :func:`enqueue` buffers a call on the session; :meth:`errand.kit.db.Database.unit_of_work`
hands the buffer to the process's sender only after the transaction commits, and drops it on a
rollback, so a task never sees a row that was not written, and a rolled-back change starts
nothing (the same discipline as Polar's ``worker/_enqueue.py``). A call lost to a crash between
commit and send is found again by the domain's own recovery sweep (a job still ``pending``).
"""

from collections.abc import Awaitable, Callable, Iterable
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


def enqueue_once(session: AsyncSession, name: str, **args: Any) -> None:
    """:func:`enqueue`, unless the same call is already buffered in ``session``'s transaction
    (one dispatch of the outbox however many events the transaction records)."""
    call = TaskCall(name, args)
    if call not in session.info.get(_BUFFER, ()):
        session.info.setdefault(_BUFFER, []).append(call)


def take_enqueued(session: AsyncSession) -> list[TaskCall]:
    """The calls buffered on ``session``, removed from it (the unit of work sends or drops them)."""
    return session.info.pop(_BUFFER, [])


Sender = Callable[[list[TaskCall]], Awaitable[None]]


@dataclass(frozen=True)
class Retry:
    """How a failed run of a task is retried: up to ``max_attempts`` runs in all, waiting
    ``exponential_wait ** attempt`` seconds before the next, only for the ``retry_on`` errors
    (procrastinate's ``RetryStrategy``, which the queue runner builds from it)."""

    max_attempts: int = 1
    exponential_wait: float = 2.0
    retry_on: tuple[type[BaseException], ...] = ()

    def retries(self, attempt: int, error: BaseException) -> bool:
        """Whether run number ``attempt`` (1-based), which raised ``error``, is run again."""
        return attempt < self.max_attempts and isinstance(error, self.retry_on)

    def wait(self, attempt: int) -> float:
        return float(self.exponential_wait ** attempt)


@dataclass(frozen=True)
class Task:
    """A named task: ``await run(core, **args)`` for each enqueued call.

    ``lock``, given a call's arguments, names what at most one waiting call may hold (e.g. one
    delivery of a job at a time: ``job:<id>``); another call under the same lock is dropped
    while one waits. Lock names are shared by all tasks, so each names its own kind of thing.
    """

    name: str
    run: Callable[..., Awaitable[object]]
    retry: Retry = Retry()
    lock: Callable[[dict[str, Any]], str] | None = None

    def lock_for(self, args: dict[str, Any]) -> str | None:
        return None if self.lock is None else self.lock(args)


@dataclass(frozen=True)
class Periodic:
    """Work every process that runs background work does on an interval: ``await run(core)``.

    ``queue_maintained`` work (job recovery) is done by the procrastinate queue's own
    maintenance task, once per tick for all its workers, so a queue worker leaves it out."""

    name: str
    interval_seconds: float
    run: Callable[[Any], Awaitable[object]]
    queue_maintained: bool = False


class TaskRegistry:
    """Every task and periodic work of the core, collected at composition from the domains'
    ``tasks.py`` (their ``TASKS`` and ``PERIODIC``); both runners register from here."""

    def __init__(self, tasks: Iterable[Task] = (), periodic: Iterable[Periodic] = ()) -> None:
        self.tasks: dict[str, Task] = {}
        self.periodic: list[Periodic] = []
        for task in tasks:
            if task.name in self.tasks:
                raise ValueError(f"Task {task.name!r} is declared twice.")
            self.tasks[task.name] = task
        self.periodic = list(periodic)

    @classmethod
    def collect(cls, *modules: Any) -> "TaskRegistry":
        """The tasks and periodic work declared by ``modules`` (each a domain's ``tasks`` module)."""
        return cls([t for m in modules for t in getattr(m, "TASKS", ())],
                   [p for m in modules for p in getattr(m, "PERIODIC", ())])

    def __getitem__(self, name: str) -> Task:
        try:
            return self.tasks[name]
        except KeyError:
            raise LookupError(f"No task is declared as {name!r}.") from None
