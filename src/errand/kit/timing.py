"""Errand's own time per request, by phase, for the ``Server-Timing`` response header.

A request's phases (``auth``, ``idempotency``, ``policy``, ``provider``, ``db``) are timed with
:func:`phase` wherever the work happens; the root app's middleware starts the clock with
:func:`begin` and writes the header with :func:`header` when the response starts (W3C Server
Timing: ``name;dur=<ms>``, comma-separated). ``errand`` is the request's time so far minus the
time spent waiting on providers: Errand's own overhead. Outside a request :func:`phase` costs
one context-variable read and records nothing.

Each phase is also a span of the current trace when tracing is on (:mod:`errand.kit.tracing`),
named as here, so a trace and the ``Server-Timing`` header agree; off, that costs a global read.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from errand.kit import tracing


class _Request:
    """One request's clock: its start, the milliseconds so far by phase, the phases now open."""

    __slots__ = ("started", "phases", "open")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.phases: dict[str, float] = {}
        self.open: set[str] = set()


_current: ContextVar[_Request | None] = ContextVar("errand_timing", default=None)

PROVIDER = "provider"


def begin() -> Token[_Request | None]:
    """Start timing the current request; pass the token to :func:`end`."""
    return _current.set(_Request())


def end(token: Token[_Request | None]) -> None:
    _current.reset(token)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the block's wall time (ms) to phase ``name`` of the current request, if one is being timed.

    Nested phases of one name are counted once: only the outermost adds its time. With tracing on,
    the block is a span ``name`` too (inside a request or not: a job run's phases are traced).
    """
    with tracing.span(name):
        request = _current.get()
        if request is None or name in request.open:
            yield
            return
        request.open.add(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            request.phases[name] = request.phases.get(name, 0.0) + (time.perf_counter() - started) * 1000
            request.open.discard(name)


def header() -> bytes | None:
    """The ``Server-Timing`` value for the current request (phases in ms, then ``errand`` and
    ``total``), ASCII-encoded, or None outside a timed request."""
    request = _current.get()
    if request is None:
        return None
    total = (time.perf_counter() - request.started) * 1000
    phases = request.phases
    parts = [f"{name};dur={ms:.2f}" for name, ms in phases.items()]
    parts.append(f"errand;dur={total - phases.get(PROVIDER, 0.0):.2f}")
    parts.append(f"total;dur={total:.2f}")
    return ", ".join(parts).encode("ascii")
