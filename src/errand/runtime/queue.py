"""The scaled-out runner: execution jobs on a procrastinate queue in Errand's own PostgreSQL.

Every task the domains declare (:class:`errand.kit.tasks.Task`, collected on ``core.tasks``) is
registered here under its name, with its retry policy. :meth:`JobQueue.send` is the process's
task sender: API processes (``errand serve --no-worker``) defer each call once its unit of work
has committed (e.g. ``errand.run_job`` for a new job); ``errand worker`` processes, on any
machine, consume the queue and run the task (:func:`errand.jobs.tasks.run_job`, whose claim
makes a duplicate delivery harmless). A task's declared lock becomes the call's queueing lock,
so at most one delivery of a job waits at a time.

procrastinate's defaults lack three things a gateway needs; they are added here.

**Dead workers.** Workers heartbeat every 10 s, but nothing retries the job of a worker
that died (SIGKILL, out of memory, a lost machine). The ``errand.maintain_queue`` periodic
task (every 15 s, once per tick across all workers) runs :func:`recover`: the periodic work
declared ``queue_maintained`` (job recovery: Errand jobs whose heartbeat is stale go back to
``pending``, or end as ``error`` after too many lost runs, and pending jobs no delivery is
waiting for, a crash between commit and defer or a recovered job, are enqueued again), and
procrastinate jobs whose worker stopped heartbeating are retried.

**A listener that does not notice it is deaf.** Pickup is instant through LISTEN/NOTIFY and
falls back to polling every ``fetch_job_polling_interval`` (5 s). A LISTEN connection can
stop delivering without an error reaching the worker (a server restarted behind a proxy, a
half-open TCP connection after a failover), and procrastinate's own reconnect gives up, and
stops the worker, when the server is still down at its first attempt.
:class:`ListeningConnector` owns the LISTEN connection instead and checks it end to end:
every few seconds it sends a probe ``NOTIFY`` from another connection (the pool's) to a
channel only this listener listens on. A probe that does not come back in time, or any
error on the connection, replaces the connection, with backoff while the server is
unreachable; after each (re)connection the worker is woken, so jobs deferred while the
listener was deaf are fetched at once rather than at the next poll. :attr:`ListeningConnector.health`
says how the listener is doing (``/healthz`` shows it).

**Database outages.** A fetch, heartbeat or periodic deferral that cannot reach the
database stops procrastinate's worker. :class:`OutageTolerantJobManager` treats "database
unreachable" as "no job this time" and lets the worker poll again; finishing a job retries
until the database is back. A worker that stops anyway is restarted by
:class:`QueueWorker` once the database answers.
"""

import asyncio
import json
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import asdict, dataclass
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions as queue_errors
from procrastinate.job_context import JobContext
from procrastinate.jobs import Status
from procrastinate.manager import JobManager
from psycopg import sql

from errand.kit import metrics
from errand.kit.core import Core
from errand.kit.db import libpq_conninfo
from errand.kit.errors import DomainError
from errand.kit.logging import get_logger
from errand.kit.tasks import Periodic, Task, TaskCall, TaskRegistry
from errand.runtime.inprocess import InProcessRunner

log = get_logger("errand.runtime")

JOBS_QUEUE = "errand_jobs"
MAINTENANCE_QUEUE = "errand_maintenance"
QUEUES = (JOBS_QUEUE, MAINTENANCE_QUEUE)
MAINTAIN_QUEUE = "errand.maintain_queue"
# Six fields: the last one is seconds.
MAINTENANCE_CRON = "* * * * * */15"
# A procrastinate worker heartbeats every 10 s; one silent for this long is presumed dead.
STALLED_WORKER_SECONDS = 30.0
# What a worker waits between database polls when no notification arrives.
POLLING_SECONDS = 5.0

# LISTEN connection watchdog: a probe every PROBE_INTERVAL, which must come back within PROBE_TIMEOUT.
PROBE_INTERVAL = 5.0
PROBE_TIMEOUT = 5.0
RECONNECT_MIN = 0.5
RECONNECT_MAX = 10.0
# libpq settings of the LISTEN connection: give up connecting quickly; let the kernel notice a dead peer.
LISTEN_CONNECTION = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 15, "keepalives_interval": 5,
                     "keepalives_count": 3}
# What the worker is told after the listener (re)connects: "there may be jobs", as a new job would say.
WAKE_UP = json.dumps({"type": "job_inserted", "job_id": None})

# How long finishing or retrying a procrastinate job keeps trying while the database is unreachable.
BOOKKEEPING_PATIENCE = 60.0


def _unreachable(exc: BaseException) -> bool:
    """Whether a connector error means "cannot reach the database" rather than a failed statement.

    psycopg raises OperationalError (connection refused or lost, administrator shutdown, pool
    timeout) for the former; a statement the server rejected is another psycopg error class.
    """
    return isinstance(exc.__cause__, psycopg.OperationalError)


# --- LISTEN/NOTIFY ------------------------------------------------------------------------


@dataclass
class ListenerHealth:
    """What the LISTEN connection's watchdog knows, for logs and ``/healthz``."""

    listening: bool = False
    # Wall-clock time of the last probe that came back through the LISTEN connection.
    last_probe_at: float | None = None
    reconnects: int = 0
    # Why the last connection was given up, and when (kept after a successful reconnect).
    last_error: str | None = None
    last_error_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ListenerStalled(Exception):
    """The LISTEN connection stopped delivering: a probe sent through the server never came back."""


class ListeningConnector(procrastinate.PsycopgConnector):
    """procrastinate's psycopg connector with a LISTEN connection that is checked and replaced.

    Everything but :meth:`listen_notify` is the parent's (a psycopg pool on ``conninfo``).
    ``listen_conninfo`` lets the LISTEN connection take another route than the pool, e.g.
    straight to PostgreSQL when the pool goes through a transaction-mode PgBouncer, where
    LISTEN does not work.
    """

    def __init__(self, *, conninfo: str, listen_conninfo: str | None = None, probe_interval: float = PROBE_INTERVAL,
                 probe_timeout: float = PROBE_TIMEOUT, **pool_kwargs: Any) -> None:
        super().__init__(conninfo=conninfo, **pool_kwargs)
        self._listen_conninfo = listen_conninfo or conninfo
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.health = ListenerHealth()

    async def listen_notify(self, on_notification: Callable[..., Awaitable[None]], channels: Iterable[str]) -> None:
        """Deliver notifications on ``channels`` until cancelled; never gives up on its own."""
        channels = list(channels)
        probe_channel = f"errand_listener_probe_{secrets.token_hex(6)}"
        backoff = RECONNECT_MIN
        first, reported = True, False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._listen_conninfo, autocommit=True,
                                                                 **LISTEN_CONNECTION) as connection:
                    async with asyncio.timeout(self.probe_timeout):
                        for channel in (*channels, probe_channel):
                            await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.health.listening = True
                    if not first:
                        self.health.reconnects += 1
                        log.warning("job_listener_reconnected", reconnects=self.health.reconnects)
                    first, reported, backoff = False, False, RECONNECT_MIN
                    # Jobs deferred while nobody listened sent their notifications into the void.
                    for channel in channels:
                        await on_notification(channel=channel, payload=WAKE_UP)
                    await self._watch(connection, on_notification, probe_channel)
            except (psycopg.Error, OSError, TimeoutError, ListenerStalled) as exc:
                if not reported:  # once per outage, not once per attempt
                    log.warning("job_listener_lost", error=type(exc).__name__, detail=str(exc)[:200])
                    reported = True
                self.health.listening = False
                self.health.last_error, self.health.last_error_at = f"{type(exc).__name__}: {exc}"[:300], time.time()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX)

    async def _watch(self, connection: psycopg.AsyncConnection, on_notification: Callable[..., Awaitable[None]],
                     probe_channel: str) -> None:
        """Pass notifications on, and probe the connection end to end; raise when it stops delivering."""
        nonce: str | None = None  # the probe in flight, if any
        next_probe_at = time.monotonic() + self.probe_interval
        probe_deadline = 0.0
        while True:
            if nonce is None and time.monotonic() >= next_probe_at:
                nonce = secrets.token_hex(8)
                await self._send_probe(probe_channel, nonce)
                probe_deadline = time.monotonic() + self.probe_timeout
            wait_until = probe_deadline if nonce is not None else next_probe_at
            # aclosing: leaving the loop early must release the connection's lock at once.
            async with aclosing(connection.notifies(timeout=max(0.0, wait_until - time.monotonic()))) as notes:
                async for note in notes:
                    if note.channel != probe_channel:
                        await on_notification(channel=note.channel, payload=note.payload)
                    elif nonce is not None and note.payload == nonce:
                        nonce, self.health.last_probe_at = None, time.time()
                        next_probe_at = time.monotonic() + self.probe_interval
                        break
            if nonce is not None and time.monotonic() >= probe_deadline:
                raise ListenerStalled(f"a probe NOTIFY did not come back within {self.probe_timeout:g} s")

    async def _send_probe(self, channel: str, nonce: str) -> None:
        async with asyncio.timeout(self.probe_timeout), self.pool.connection(timeout=self.probe_timeout) as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (channel, nonce))


# --- Database outages -----------------------------------------------------------------------


class OutageTolerantJobManager(JobManager):
    """procrastinate's job manager, but a worker survives the database being unreachable.

    Fetching, heartbeating and deferring periodic jobs report "nothing this time" and the
    worker tries again at its next poll or tick; finishing or retrying a job keeps trying for
    :data:`BOOKKEEPING_PATIENCE`. Errors other than an unreachable database propagate.

    A fetch whose answer was lost may leave a procrastinate job ``doing`` that no one runs;
    the Errand job it carried is still ``pending``, so :func:`recover` defers it again.
    """

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> Any:
        try:
            return await super().fetch_job(queues=queues, worker_id=worker_id)
        except queue_errors.ConnectorException as exc:
            if not _unreachable(exc):
                raise
            log.warning("queue_unreachable", during="fetch_job", detail=str(exc.__cause__)[:200])
            return None

    async def update_heartbeat(self, worker_id: int) -> None:
        try:
            await super().update_heartbeat(worker_id)
        except queue_errors.ConnectorException as exc:
            if not _unreachable(exc):
                raise
            log.warning("queue_unreachable", during="update_heartbeat", detail=str(exc.__cause__)[:200])

    async def defer_periodic_job(self, job: Any, periodic_id: str, defer_timestamp: int) -> int | None:
        try:
            return await super().defer_periodic_job(job=job, periodic_id=periodic_id, defer_timestamp=defer_timestamp)
        except queue_errors.ConnectorException as exc:
            if not _unreachable(exc):
                raise
            log.warning("queue_unreachable", during="defer_periodic_job", detail=str(exc.__cause__)[:200])
            return None

    async def finish_job(self, job: Any, status: Any, delete_job: bool) -> None:
        await self._patiently(lambda: super(OutageTolerantJobManager, self).finish_job(
            job=job, status=status, delete_job=delete_job))

    async def retry_job(self, job: Any, retry_at: Any = None, priority: int | None = None, queue: str | None = None,
                        lock: str | None = None) -> None:
        await self._patiently(lambda: super(OutageTolerantJobManager, self).retry_job(
            job=job, retry_at=retry_at, priority=priority, queue=queue, lock=lock))

    async def _patiently(self, call: Callable[[], Awaitable[None]]) -> None:
        deadline = time.monotonic() + BOOKKEEPING_PATIENCE
        delay = 0.5
        while True:
            try:
                return await call()
            except queue_errors.ConnectorException as exc:
                if not _unreachable(exc) or time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


class QueueApp(procrastinate.App):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_manager = OutageTolerantJobManager(self.connector)


# --- Tasks ------------------------------------------------------------------------------------


def _core(context: JobContext) -> Core:
    return context.additional_context["core"]


def _register(app: QueueApp, task: Task) -> None:
    """``task`` as a procrastinate task of the same name, retried as it declares."""
    retry = procrastinate.RetryStrategy(max_attempts=task.retry.max_attempts,
                                        exponential_wait=task.retry.exponential_wait,
                                        retry_exceptions=set(task.retry.retry_on))

    async def run(context: JobContext, **args: Any) -> None:
        with metrics.task_run(task.name):
            await task.run(_core(context), **args)

    app.task(name=task.name, queue=JOBS_QUEUE, pass_context=True, retry=retry)(run)


def create_queue_app(connector: procrastinate.PsycopgConnector, registry: TaskRegistry) -> QueueApp:
    """The procrastinate App with every task of ``registry`` and the queue's maintenance; the
    worker passes the core in its context."""
    app = QueueApp(connector=connector)
    for task in registry.tasks.values():
        _register(app, task)

    @app.periodic(cron=MAINTENANCE_CRON, periodic_id="every-15s")
    @app.task(name=MAINTAIN_QUEUE, queue=MAINTENANCE_QUEUE, pass_context=True, queueing_lock=MAINTAIN_QUEUE)
    async def maintain_queue(context: JobContext, timestamp: int) -> None:
        """Recover jobs of dead runners and deliver jobs nobody is delivering (see :func:`recover`)."""
        await recover(context.app, _core(context))

    return app


async def defer(app: procrastinate.App, task: Task, args: dict[str, Any]) -> bool:
    """Queue a delivery of ``task`` with ``args``; False when one is already waiting (its lock)."""
    try:
        await app.tasks[task.name].configure(queueing_lock=task.lock_for(args)).defer_async(**args)
    except queue_errors.AlreadyEnqueued:
        return False
    return True


@dataclass
class Recovery:
    retried_deliveries: int = 0
    redundant_deliveries: int = 0


async def recover(app: procrastinate.App, core: Core) -> Recovery:
    """One maintenance pass; safe to run on several workers at once.

    1. The periodic work declared ``queue_maintained`` runs (:func:`errand.jobs.tasks.recover_jobs`:
       Errand jobs whose runner stopped heartbeating go back to ``pending`` or end as ``error``,
       and pending jobs no delivery picked up are enqueued again, deferred once it commits).
    2. procrastinate jobs of workers that stopped heartbeating are put back in the queue; one
       whose job already has another delivery waiting is closed as failed instead.
    """
    done = Recovery()
    for periodic in core.tasks.periodic:
        if periodic.queue_maintained:
            await periodic.run(core)
    for stalled in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_WORKER_SECONDS):
        try:
            await app.job_manager.retry_job(stalled)
            done.retried_deliveries += 1
        except queue_errors.UniqueViolation:
            await app.job_manager.finish_job(stalled, status=Status.FAILED, delete_job=False)
            done.redundant_deliveries += 1
    if done != Recovery():
        log.warning("queue_recovered", **asdict(done))
    return done


# --- Processes ----------------------------------------------------------------------------------


class QueueSchemaMissing(DomainError):
    """procrastinate's tables are not in the database: ``errand migrate`` has not run."""

    kind = "unavailable"
    code = "queue_schema_missing"

    def __init__(self) -> None:
        super().__init__("The job queue's tables are missing: run `errand migrate` first.")


class JobQueue:
    """The queue as one process uses it: created and opened by the composition root.

    :meth:`send` is the task sender (``Database.task_sender``) of every process of a
    procrastinate deployment; :meth:`worker` makes this process consume the queue too.
    """

    def __init__(self, core: Core, *, pool_size: int = 10) -> None:
        quiet_procrastinate(core.settings.log_level)
        self.core = core
        self.connector = ListeningConnector(conninfo=libpq_conninfo(core.settings.effective_database_url),
                                            min_size=1, max_size=pool_size, timeout=10)
        self.registry: TaskRegistry = core.tasks
        self.app = create_queue_app(self.connector, self.registry)
        self._open = False

    async def open(self) -> None:
        if not self._open:
            await self.app.open_async()
            self._open = True

    async def close(self) -> None:
        if self._open:
            await self.app.close_async()
            self._open = False

    async def send(self, calls: list[TaskCall]) -> None:
        """Queue committed task calls. Never fails the caller: a lost deferral is redone by the
        domain's recovery sweep (:func:`recover`)."""
        for call in calls:
            try:
                await self.open()
                await defer(self.app, self.registry[call.name], call.args)
            except (queue_errors.ConnectorException, psycopg.Error, OSError) as exc:
                log.warning("task_send_failed", task=call.name, error=type(exc).__name__,
                            detail="the recovery sweep will queue it")

    def worker(self, *, concurrency: int, periodic: Sequence[Periodic] = (),
               shutdown_seconds: float = 30.0) -> "QueueWorker":
        return QueueWorker(self, concurrency=concurrency, periodic=periodic, shutdown_seconds=shutdown_seconds)

    def health(self) -> dict[str, Any]:
        return {"runner": "procrastinate", "listener": self.connector.health.as_dict()}

    def listening(self) -> bool:
        """Whether the worker's LISTEN connection is up (jobs are picked up at once, not at the next poll)."""
        return self.connector.health.listening


class QueueWorker:
    """This process's share of the queue: a procrastinate worker kept alive, plus periodic work.

    ``periodic`` is the per-process work the embedded runner also does (approval expiry and
    the like); job recovery is not in it, the queue's own periodic task does that once per
    tick for all workers. :meth:`start`/:meth:`stop` suit a lifespan; :meth:`run_until_signalled`
    suits ``errand worker``.
    """

    def __init__(self, queue: JobQueue, *, concurrency: int, periodic: Sequence[Periodic],
                 shutdown_seconds: float) -> None:
        self.queue = queue
        self.concurrency = concurrency
        self.shutdown_seconds = shutdown_seconds
        self._periodic = InProcessRunner(periodic, queue.core)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="errand:queue-worker")

    def healthy(self) -> bool:
        """Whether the worker is running (started and not ended) and its periodic loops are alive."""
        return self._task is not None and not self._task.done() and self._periodic.healthy()

    def request_stop(self) -> None:
        self._stop.set()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def run(self) -> None:
        """Consume the queue until :meth:`request_stop`; running jobs get ``shutdown_seconds`` to finish."""
        self._periodic.start()
        try:
            await self._supervise()
        finally:
            await self._periodic.stop()

    async def run_until_signalled(self) -> None:
        """:meth:`run`, stopping gracefully on SIGTERM or SIGINT; a second signal exits at once."""
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if self._stop.is_set():
                log.warning("worker_forced_exit", signal=signal.Signals(signum).name,
                            detail="jobs still running are recovered by other workers")
                os._exit(128 + signum)
            log.info("worker_stopping", signal=signal.Signals(signum).name, grace_seconds=self.shutdown_seconds)
            self._stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            await self.run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self._run_once()
            except QueueSchemaMissing:
                raise
            except Exception as exc:  # noqa: BLE001 - a worker that stops is restarted, never left dead
                log.error("queue_worker_failed", error=type(exc).__name__, detail=str(exc)[:300],
                          restart_in_seconds=delay)
            else:
                if self._stop.is_set():
                    return
                log.error("queue_worker_stopped", restart_in_seconds=delay)
            self.restarts += 1
            if time.monotonic() - started > 60:
                delay = 1.0
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, 30.0)

    async def _run_once(self) -> None:
        await self.queue.open()
        if not await self.queue.app.check_connection_async():
            raise QueueSchemaMissing()
        worker = asyncio.create_task(self.queue.app.run_worker_async(
            queues=list(QUEUES), concurrency=self.concurrency, name=f"errand@{socket.gethostname()}:{os.getpid()}",
            install_signal_handlers=False, additional_context={"core": self.queue.core},
            shutdown_graceful_timeout=self.shutdown_seconds, fetch_job_polling_interval=POLLING_SECONDS,
            stalled_worker_timeout=STALLED_WORKER_SECONDS, delete_jobs="successful",
        ), name="errand:procrastinate-worker")
        stopping = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not worker.done():
            # procrastinate's graceful stop: no new jobs, running ones get shutdown_graceful_timeout.
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass
            return
        worker.result()


def quiet_procrastinate(level: str) -> None:
    """procrastinate logs every job at INFO in plain text; Errand's own logs say what matters."""
    if logging.getLevelName(level) > logging.DEBUG:
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
