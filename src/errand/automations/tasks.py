"""Automations' background work: matching events, running executions, and two sweeps.

- ``errand.automations.match_event`` (event_id): :func:`errand.automations.matching.match_event`.
- ``errand.automations.run_execution`` (execution_id; lock ``execution:<id>``):
  :func:`errand.automations.runner.run_execution`.
- ``errand.automations.resume_due`` (every second): executions whose ``wait`` is over go back to the runner. One
  indexed read (``status``, ``resume_at``); an idle sweep takes no write lock.
- ``errand.automations.recover`` (every 5 s): what a crash lost between a commit and the task's
  sending — executions ``pending``/``running``, not waiting on a ``wait``, whose lease ran out
  (or that have none and were not touched for :data:`UNTOUCHED`), and events not matched
  :data:`UNMATCHED` after they arrived — is sent again. Reads only; both tasks are idempotent
  (a claimed lease, ``matched_at``).
"""

from datetime import timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import DBAPIError

from errand.automations import matching, runner
from errand.automations.schemas import MATCH_EVENT, RUN_EXECUTION
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import Unavailable
from errand.kit.tasks import Periodic, Retry, Task, TaskCall
from errand.models import AutomationEvent, Execution

UNTOUCHED = timedelta(seconds=10)
UNMATCHED = timedelta(seconds=5)
BATCH = 100


async def resume_due(core: Core) -> int:
    """Send every execution whose wait is over (and no runner holds) to the runner; returns how many."""
    now = clock.now()
    async with core.db.unit_of_work(read_only=True) as session:
        ids = list((await session.execute(select(Execution.id).where(
            Execution.status == "running", Execution.resume_at <= now,
            or_(Execution.lease_until.is_(None), Execution.lease_until < now)).limit(BATCH))).scalars())
    if ids:
        await core.db.send_tasks([TaskCall(RUN_EXECUTION, {"execution_id": i}) for i in ids])
    return len(ids)


async def recover(core: Core) -> int:
    """Send again what a crash left behind (see the module docstring); returns how many calls."""
    now = clock.now()
    async with core.db.unit_of_work(read_only=True) as session:
        executions = list((await session.execute(select(Execution.id).where(
            Execution.status.in_(("pending", "running")), Execution.resume_at.is_(None),
            or_(Execution.lease_until < now,
                and_(Execution.lease_until.is_(None), Execution.updated_at < now - UNTOUCHED)))
            .limit(BATCH))).scalars())
        events = list((await session.execute(select(AutomationEvent.id).where(
            AutomationEvent.matched_at.is_(None), AutomationEvent.received_at < now - UNMATCHED)
            .order_by(AutomationEvent.received_at).limit(BATCH))).scalars())
    calls = [TaskCall(MATCH_EVENT, {"event_id": i}) for i in events]
    calls += [TaskCall(RUN_EXECUTION, {"execution_id": i}) for i in executions]
    if calls:
        await core.db.send_tasks(calls)
    return len(calls)


_RETRY = Retry(max_attempts=3, exponential_wait=2, retry_on=(Unavailable, DBAPIError))

TASKS = [
    Task(MATCH_EVENT, matching.match_event, _RETRY, lock=lambda args: f"automation_event:{args['event_id']}"),
    Task(RUN_EXECUTION, runner.run_execution, _RETRY, lock=lambda args: f"execution:{args['execution_id']}"),
]
PERIODIC = [
    Periodic("errand.automations.resume_due", 1, resume_due),
    Periodic("errand.automations.recover", 5, recover),
]
