"""Delivering the notification outbox: a task per queued notification, and a sweep.

``errand.notify.deliver`` (args ``notification_id``) is enqueued by :func:`errand.notify.service.queue`
in the step's transaction and sent after it commits; the periodic ``deliver_notifications``
(every :data:`SWEEP_SECONDS`) delivers every pending row that is due, which covers a call lost
to a crash, a sender's lapsed lease, and the retries with backoff. The rows' own backoff is the
retry policy; the task itself is retried only when the database could not be reached.
"""

from sqlalchemy.exc import DBAPIError

from errand.kit.core import Core
from errand.kit.errors import Unavailable
from errand.kit.tasks import Periodic, Retry, Task
from errand.notify import service
from errand.notify.schemas import DELIVER_TASK

SWEEP_SECONDS = 2


async def deliver(core: Core, *, notification_id: str) -> str | None:
    """The task: deliver one notification (see :func:`errand.notify.service.deliver`)."""
    return await service.deliver(core.db, core.settings, notification_id)


async def deliver_notifications(core: Core) -> int:
    """The sweep: deliver the pending notifications that are due."""
    return await service.deliver_due(core.db, core.settings)


TASKS = [
    Task(DELIVER_TASK, deliver, Retry(max_attempts=3, exponential_wait=2, retry_on=(Unavailable, DBAPIError)),
         lock=lambda args: f"notification:{args['notification_id']}"),
]
PERIODIC = [Periodic("deliver_notifications", SWEEP_SECONDS, deliver_notifications)]
