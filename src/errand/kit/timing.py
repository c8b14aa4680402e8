"""Errand's own time per request, by phase, for the ``Server-Timing`` response header.

A request's phases (``auth``, ``idempotency``, ``policy``, ``provider``, ``db``) are timed with
:func:`phase` wherever the work happens; the root app's middleware starts the clock with
:func:`begin` and writes the header with :func:`header` when the response starts (W3C Server
Timing: ``name;dur=<ms>``, comma-separated). ``errand`` is the request's time so far minus the
time spent waiting on providers: Errand's own overhead. Outside a request :func:`phase` costs
one context-variable read and records nothing.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

# Phase name -> milliseconds so far, with the request's start under "".
_phases: ContextVar[dict[str, float] | None] = ContextVar("errand_timing", default=None)

PROVIDER = "provider"


def begin() -> Token[dict[str, float] | None]:
    """Start timing the current request; pass the token to :func:`end`."""
    return _phases.set({"": time.perf_counter()})


def end(token: Token[dict[str, float] | None]) -> None:
    _phases.reset(token)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the block's wall time (ms) to phase ``name`` of the current request, if one is being timed.

    Nested phases of one name are counted once: only the outermost adds its time.
    """
    phases = _phases.get()
    if phases is None or f"open:{name}" in phases:
        yield
        return
    phases[f"open:{name}"] = 1.0
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + (time.perf_counter() - started) * 1000
        del phases[f"open:{name}"]


def header() -> str | None:
    """The ``Server-Timing`` value for the current request (phases in ms, then ``errand`` and
    ``total``), or None outside a timed request."""
    phases = _phases.get()
    if phases is None:
        return None
    total = (time.perf_counter() - phases[""]) * 1000
    parts = [f"{name};dur={ms:.2f}" for name, ms in phases.items() if name and not name.startswith("open:")]
    parts.append(f"errand;dur={total - phases.get(PROVIDER, 0.0):.2f}")
    parts.append(f"total;dur={total:.2f}")
    return ", ".join(parts)
