"""Structured logs: one JSON object per line (or a console rendering), never personal data or keys.

Every line logged while a request is being answered carries that request's ``request_id`` and
``trace_id``, and once the caller is authenticated its ``organization_id`` and ``key_prefix``
(:func:`request_scope`, :func:`note_caller`); a background task run carries its ``task`` and
``trace_id``. Request bodies are never logged, only ids and codes, and :func:`redact` (a
processor every line passes) drops fields whose name says they hold a secret or personal data
(authorization, keys, tokens, e-mail, phone, names, card numbers…) and masks e-mail addresses,
API keys, bearer tokens and card-like numbers inside any string value.
"""

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import structlog

# The current request's (or task run's) fields, shared by reference so that code deep in the
# call (authentication) can add to what the access line, logged at the end, says.
_fields: ContextVar[dict[str, Any] | None] = ContextVar("errand_log_fields", default=None)

REDACTED = "[redacted]"
# Field names (lowercased, '-' as '_') never logged, whatever their value.
SENSITIVE_KEYS = frozenset({
    "authorization", "proxy_authorization", "cookie", "set_cookie", "x_integration_key", "api_key", "apikey",
    "key", "plaintext", "secret", "client_secret", "signing_secret", "password", "passwd", "token", "access_token",
    "refresh_token", "bearer", "email", "email_address", "phone", "phone_number", "telephone", "name",
    "first_name", "last_name", "full_name", "given_name", "family_name", "customer", "guest", "traveler",
    "travelers", "contact", "address", "card", "card_number", "pan", "cvc", "cvv", "iban", "body", "request_body",
    "payload", "headers",
})
_SENSITIVE_PARTS = ("password", "secret", "token", "authorization", "email", "phone", "card_number", "api_key")
# One pass over a value: e-mail addresses; bearer credentials; Errand's API keys
# (``<prefix>_<live|test>_<secret>``), Standard Webhooks secrets and sandbox tokens; 13 to 19
# digits, optionally grouped by spaces or dashes (a payment card number's shape).
_MASKED = re.compile(
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    r"|(?i:\bbearer\s+\S+)"
    r"|\b(?:[a-z]{2,8}_(?:live|test)_[A-Za-z0-9_-]{8,}|whsec_[A-Za-z0-9+/=]{8,}|sbx_[0-9a-f]{16,})"
    r"|\b(?:\d[ -]?){12,18}\d\b"
)
# Fields Errand itself fills with checked values (ids, templates, codes): not scanned.
_TRUSTED = frozenset({"event", "level", "timestamp", "logger", "request_id", "trace_id", "organization_id",
                      "key_prefix", "method", "route", "status", "duration_ms", "task"})


@lru_cache(maxsize=1024)
def _sensitive(key: str) -> bool:
    name = key.lower().replace("-", "_")
    if name == "key_prefix" or name.endswith("_id"):  # identifiers, not the secret or the person
        return False
    return name in SENSITIVE_KEYS or any(part in name for part in _SENSITIVE_PARTS)


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return _MASKED.sub(REDACTED, value)
    if depth >= 4:
        return value
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and _sensitive(k) else _scrub(v, depth + 1))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: drop sensitive fields, mask secrets and personal data in the rest."""
    for key in [k for k in event if _sensitive(k)]:
        del event[key]
    for key, value in event.items():
        if key not in _TRUSTED and not isinstance(value, int | float | bool | None):
            event[key] = _scrub(value)
    return event


def _merge_fields(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    fields = _fields.get()
    if fields:
        for key, value in fields.items():
            event.setdefault(key, value)
    return event


@contextmanager
def request_scope(**fields: Any) -> Iterator[dict[str, Any]]:
    """Within the block, every log line carries ``fields`` and what :func:`note_caller` adds; yields them."""
    current = dict(fields)
    token = _fields.set(current)
    try:
        yield current
    finally:
        _fields.reset(token)


def note_caller(organization_id: str, key_prefix: str) -> None:
    """Name the authenticated caller in the current request's log lines (never the key itself)."""
    fields = _fields.get()
    if fields is not None:
        fields["organization_id"] = organization_id
        fields["key_prefix"] = key_prefix


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    # Standard error as it is when the logger is made, not when logging was configured (a test's capture).
    return structlog.PrintLogger(sys.stderr)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler on whatever ``sys.stderr`` is at each record."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(level: str = "INFO", log_format: str | None = None) -> None:
    """Logs at ``level`` as ``json`` or ``console`` lines on standard error (standard output is
    MCP's channel in ``errand mcp``); by default JSON, unless standard error is a terminal. Standard-library records (uvicorn, procrastinate) go
    through the same processors and renderer."""
    fmt = log_format or ("console" if sys.stderr.isatty() else "json")
    renderer: Any = structlog.dev.ConsoleRenderer(colors=False) if fmt == "console" else structlog.processors.JSONRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _merge_fields,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = _StderrHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact, renderer],
    ))
    handler._errand = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_errand", False)] + [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "aiosqlite", "mcp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=_stderr_logger,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
