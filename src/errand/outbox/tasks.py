"""Dispatching the outbox: a task enqueued by every transaction that records events, and a sweep.

``errand.outbox.dispatch`` is sent once the recording transaction commits (at most one call
waits at a time: its lock); the periodic ``dispatch_outbox`` finds what a crash between
commit and send left behind, and retries batches a consumer failed. Each batch is one unit of
work (:func:`errand.outbox.service.dispatch_batch`): every consumer receives each event once,
in the transaction that marks it dispatched.
"""

import asyncio

from sqlalchemy.exc import DBAPIError

from errand.kit.core import Core
from errand.kit.errors import Unavailable
from errand.kit.tasks import Periodic, Retry, Task
from errand.outbox import service
from errand.outbox.consumers import EventConsumers

BATCH = 100
# One call dispatches at most this many batches; the next call or sweep takes the rest.
MAX_BATCHES = 20
SWEEP_SECONDS = 5
# The task waits this long before dispatching, so that the events of the transactions committing
# meanwhile go in the same batch: under load one dispatch per window rather than one per change
# (bench/book.py: without it, dispatching cost a booking ~3 ms of CPU on SQLite). Consumers see an
# event at most this much later.
COALESCE_SECONDS = 0.2


async def dispatch(core: Core, *, look_first: bool = True) -> int:
    """Dispatch undispatched events in batches until none is left (or MAX_BATCHES); returns how many.

    ``look_first`` (the sweep's way) checks with a read that there is anything to dispatch before
    taking the writer's lock, so an idle outbox costs no write; the task, sent because events were
    just recorded, goes straight to the batch. Raises what a consumer raised (that batch stays
    undispatched and is dispatched again later)."""
    consumers = core.event_consumers if core.event_consumers is not None else EventConsumers()
    if look_first:
        async with core.db.unit_of_work(read_only=True) as session:
            if not await service.any_undispatched(session):
                return 0
    total = 0
    for _ in range(MAX_BATCHES):
        async with core.db.unit_of_work() as session:
            count = await service.dispatch_batch(session, consumers, BATCH)
        total += count
        if count < BATCH:
            break
    return total


async def dispatch_soon(core: Core) -> int:
    """The task: wait :data:`COALESCE_SECONDS` for the changes committing meanwhile, then :func:`dispatch`.
    At most one call waits at a time (its lock), so the calls of a burst become one."""
    await asyncio.sleep(COALESCE_SECONDS)
    return await dispatch(core, look_first=False)


TASKS = [
    Task(service.DISPATCH, dispatch_soon, Retry(max_attempts=3, exponential_wait=2, retry_on=(Unavailable, DBAPIError)),
         lock=lambda args: "outbox:dispatch"),
]
PERIODIC = [Periodic("dispatch_outbox", SWEEP_SECONDS, dispatch)]
