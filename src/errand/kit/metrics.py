"""Prometheus metrics: what each process counts, and what ``/metrics`` answers.

Counters and histograms live in prometheus-client's default registry. With
``PROMETHEUS_MULTIPROC_DIR`` set in the environment before the process starts, prometheus-client
keeps every value in a memory-mapped file of that directory instead, and :func:`render` answers
with the sum over every process that wrote there (``errand serve --workers N``, ``errand worker``
processes on the same machine): any process's ``/metrics`` then speaks for all of them. The
directory must exist, be shared by those processes only, and be emptied before they start
(prometheus-client's multiprocess mode; docs/observability.md).

Values that are the database's state rather than one process's work (jobs by status, pending
approvals, the procrastinate queue's depth and oldest waiting job) are read from the database
when ``/metrics`` is scraped (:func:`read_database`, a few aggregate queries under a timeout), so
every process reports the same truth and nothing drifts.

Label values are bounded sets: a route *template* (never the raw path), a status code, a
provider id, an outcome word, a task name.
"""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from errand.kit import tracing

__all__ = ["CONTENT_TYPE_LATEST", "render"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds: from a cache hit (~1 ms) to a slow provider call (10 s, the provider timeout).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds a task waited between being sent and being picked up.
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0)

HTTP_REQUESTS = Counter("errand_http_requests", "HTTP requests answered, by method, route template and status.",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("errand_http_request_duration_seconds",
                          "Time to answer an HTTP request (until the response was sent), by method and route template.",
                          ["method", "route"], buckets=LATENCY_BUCKETS)
TASK_RUNS = Counter("errand_task_runs", "Background task runs (a job run is task errand.run_job), by task and outcome "
                    "(ok, error, cancelled).", ["task", "outcome"])
TASK_DURATION = Histogram("errand_task_run_duration_seconds", "Time one background task run took, by task.",
                          ["task"], buckets=LATENCY_BUCKETS)
TASK_PICKUP_LAG = Histogram("errand_task_pickup_lag_seconds", "Time a task call waited between being sent (after "
                            "its transaction committed) and a runner starting it, by runner and task.",
                            ["runner", "task"], buckets=LAG_BUCKETS)
RUNNER_QUEUE_DEPTH = Gauge("errand_runner_queue_depth", "Task calls waiting in the in-process runner's queue "
                           "(summed over live processes).", ["runner"], multiprocess_mode="livesum")
PROVIDER_CALLS = Counter("errand_provider_calls", "Calls to providers, by provider and outcome (ok, or the error "
                         "kind: unavailable, conflict, invalid, not_found, ...).", ["provider", "outcome"])
PROVIDER_DURATION = Histogram("errand_provider_call_duration_seconds", "Time one provider call took, by provider.",
                              ["provider"], buckets=LATENCY_BUCKETS)
WEBHOOK_DELIVERIES = Counter("errand_webhook_deliveries", "Outbound webhook delivery attempts, by outcome "
                             "(succeeded, retrying, failed).", ["outcome"])
IDEMPOTENCY_REPLAYS = Counter("errand_idempotency_replays", "Requests answered by replaying an Idempotency-Key's "
                              "stored answer.")
POLICY_DECISIONS = Counter("errand_policy_decisions", "Policy verdicts on actions, by outcome (allow, deny, "
                           "requires_approval).", ["outcome"])


# --- Call sites: one line each ---------------------------------------------------------------


# The labelled children of the request metrics, kept: ``labels()`` validates and locks on every
# call, a dict lookup does not (the label sets are bounded: templates times methods times statuses).
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def request_answered(method: str, route: str, status: int, seconds: float) -> None:
    """Count one HTTP request and its duration (``route`` a template, or ``unmatched``)."""
    children = _request_children.get((method, route, status))
    if children is None:
        children = (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_DURATION.labels(method, route))
        if len(_request_children) < 10_000:
            _request_children[(method, route, status)] = children
    children[0].inc()
    children[1].observe(seconds)


def idempotency_replayed() -> None:
    IDEMPOTENCY_REPLAYS.inc()


def policy_decided(outcome: str) -> None:
    """Count one verdict: ``allow``, ``deny`` or ``requires_approval``."""
    POLICY_DECISIONS.labels(outcome).inc()


def webhook_delivered(outcome: str) -> None:
    """Count one webhook delivery attempt; ``outcome`` is :func:`errand.webhooks.delivery.deliver`'s word
    (``succeeded``, ``retrying``, ``failed``)."""
    WEBHOOK_DELIVERIES.labels(outcome).inc()


def outcome_of(exc: BaseException | None) -> str:
    """``ok``, or the error's ``kind`` (a DomainError's: ``unavailable``, ``conflict``…), else ``error``."""
    if exc is None:
        return "ok"
    kind = getattr(exc, "kind", None)
    return kind if isinstance(kind, str) else "error"


P = ParamSpec("P")
R = TypeVar("R")


def provider_call(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate a provider's async method: each call is counted by outcome, timed, and traced as a
    ``provider.call`` span (attributes ``errand.provider``, ``errand.operation``). The provider is
    ``self.id`` (the method's first argument)."""

    @wraps(method)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
        provider = str(getattr(args[0], "id", "unknown"))
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            with tracing.span("provider.call", {"errand.provider": provider, "errand.operation": method.__name__}):
                return await method(*args, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            PROVIDER_CALLS.labels(provider, outcome_of(error)).inc()
            PROVIDER_DURATION.labels(provider).observe(time.perf_counter() - started)

    return counted


def task_queued(runner: str, count: int = 1) -> None:
    RUNNER_QUEUE_DEPTH.labels(runner).inc(count)


def task_picked(runner: str, task: str, sent_at: float | None) -> None:
    """A runner took a call: one fewer waiting (in-process only) and, when known, the wait
    (``sent_at`` from :func:`time.monotonic`)."""
    if runner == "inprocess":
        RUNNER_QUEUE_DEPTH.labels(runner).dec()
    if sent_at is not None:
        TASK_PICKUP_LAG.labels(runner, task).observe(max(0.0, time.monotonic() - sent_at))


# --- Rendering ------------------------------------------------------------------------------------


@dataclass
class DatabaseState:
    """What the database says at scrape time; ``up`` False when it could not be read in time."""

    up: bool = False
    jobs: dict[str, int] = field(default_factory=dict)
    oldest_pending_job_seconds: float = 0.0
    approvals_pending: int = 0
    # procrastinate's queues (runner ``procrastinate`` only): waiting jobs and the oldest one's age.
    queue_depth: dict[str, int] | None = None
    queue_oldest_seconds: dict[str, float] = field(default_factory=dict)


def _age(value: Any, now: datetime) -> float:
    if value is None:
        return 0.0
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return max(0.0, (now - value).total_seconds())


async def read_database(connection: Any, *, procrastinate: bool) -> DatabaseState:
    """Read the scrape-time state on ``connection`` (an SQLAlchemy AsyncConnection).

    Aggregates only: jobs grouped by status, the oldest pending job, pending approvals
    (indexed on status), and for procrastinate its waiting jobs per queue. Errors propagate;
    the caller bounds the time.
    """
    from sqlalchemy import text

    now = datetime.now(UTC)
    state = DatabaseState(up=True)
    rows = await connection.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))
    state.jobs = {status: count for status, count in rows}
    oldest = await connection.scalar(text("SELECT min(created_at) FROM jobs WHERE status = 'pending'"))
    state.oldest_pending_job_seconds = _age(oldest, now)
    state.approvals_pending = int(await connection.scalar(
        text("SELECT count(*) FROM approvals WHERE status = 'pending'")) or 0)
    if procrastinate:
        rows = await connection.execute(text(
            "SELECT j.queue_name, count(*), min(e.at) FROM procrastinate_jobs j "
            "LEFT JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred' "
            "WHERE j.status = 'todo' GROUP BY j.queue_name"))
        state.queue_depth, state.queue_oldest_seconds = {}, {}
        for queue, count, deferred_at in rows:
            state.queue_depth[queue] = count
            state.queue_oldest_seconds[queue] = _age(deferred_at, now)
    return state


class _DatabaseCollector(Collector):
    def __init__(self, state: DatabaseState) -> None:
        self.state = state

    def collect(self) -> Iterator[Any]:
        state = self.state
        up = GaugeMetricFamily("errand_database_up", "Whether /metrics could read the database's state just now.")
        up.add_metric([], 1.0 if state.up else 0.0)
        yield up
        if not state.up:
            return
        jobs = GaugeMetricFamily("errand_jobs", "Jobs by status, read from the database at scrape time.",
                                 labels=["status"])
        for status, count in sorted(state.jobs.items()):
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily("errand_jobs_oldest_pending_age_seconds", "Age of the oldest job still waiting for "
                                "a runner (0 when none): pickup lag as the database sees it.",
                                value=state.oldest_pending_job_seconds)
        yield GaugeMetricFamily("errand_approvals_pending", "Approvals waiting for a human decision.",
                                value=state.approvals_pending)
        if state.queue_depth is not None:
            depth = GaugeMetricFamily("errand_queue_depth", "procrastinate jobs waiting to be picked up, by queue.",
                                      labels=["queue"])
            oldest = GaugeMetricFamily("errand_queue_oldest_age_seconds", "Age of the oldest procrastinate job "
                                       "waiting to be picked up, by queue.", labels=["queue"])
            for queue, count in sorted(state.queue_depth.items()):
                depth.add_metric([queue], count)
                oldest.add_metric([queue], state.queue_oldest_seconds.get(queue, 0.0))
            yield depth
            yield oldest


class _ThisProcess(Collector):
    """The default registry's families (this process only), for a registry built per scrape."""

    def collect(self) -> Iterable[Any]:
        return REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render(database: DatabaseState | None = None) -> bytes:
    """The Prometheus text exposition: every process's counters (multiprocess mode) or this
    process's (default registry, with process and GC metrics), then ``database``'s gauges."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    if database is not None:
        registry.register(_DatabaseCollector(database))
    return generate_latest(registry)


def process_exiting() -> None:
    """In multiprocess mode, drop this process's live gauges (``livesum``) from the shared directory."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())


@contextmanager
def task_run(task: str) -> Iterator[None]:
    """One background task run (a job run): a root span ``task <name>``, its log lines carrying
    ``task`` and ``trace_id``, counted by outcome and timed."""
    from errand.kit import logging

    started = time.perf_counter()
    outcome = "ok"
    with tracing.task_span(task) as trace_id, logging.request_scope(task=task, **(
            {"trace_id": trace_id} if trace_id else {})):
        try:
            yield
        except BaseException as exc:
            outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
            raise
        finally:
            TASK_RUNS.labels(task, outcome).inc()
            TASK_DURATION.labels(task).observe(time.perf_counter() - started)
