"""Outbound webhooks' background work: the send of one delivery, and the sweep of due ones.

``errand.webhooks.deliver`` is enqueued by the outbox consumer (after the dispatcher's commit)
and by a manual redelivery; at most one call per delivery waits at a time (its lock). The
periodic ``deliver_webhooks`` (every :data:`SWEEP_SECONDS`) reads the pending deliveries that are
due — retries whose time has come, calls lost to a crash, leases a dead worker left — and
hands them to the process's runner; the claim in :mod:`errand.webhooks.delivery` makes sure
only one worker sends a given attempt.
"""

from sqlalchemy.exc import DBAPIError

from errand.kit.core import Core
from errand.kit.errors import Unavailable
from errand.kit.tasks import Periodic, Retry, Task, TaskCall
from errand.webhooks import delivery
from errand.webhooks.service import DELIVER

SWEEP_SECONDS = 1.0


async def deliver(core: Core, *, delivery_id: str) -> str:
    """The task: one attempt at ``delivery_id`` if it is due (:func:`errand.webhooks.delivery.deliver`)."""
    return await delivery.deliver(core, delivery_id)


async def sweep(core: Core) -> int:
    """Hand every due delivery (up to 100 a tick) to the runner; returns how many."""
    ids = await delivery.due(core)
    if ids:
        await core.db.send_tasks([TaskCall(DELIVER, {"delivery_id": i}) for i in ids])
    return len(ids)


TASKS = [
    Task(DELIVER, deliver, Retry(max_attempts=3, exponential_wait=2, retry_on=(Unavailable, DBAPIError)),
         lock=lambda args: f"webhook-delivery:{args['delivery_id']}"),
]
PERIODIC = [Periodic("deliver_webhooks", SWEEP_SECONDS, sweep)]
