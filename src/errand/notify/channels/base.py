"""What every channel shares: the message handed to it, how it reports a failed send, and the
classification of HTTP answers."""

import functools
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

# Every HTTP channel gives up on a call after this long (connect, write and read alike).
HTTP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class OutgoingMessage:
    """One notification as a channel sends it. ``id`` (``ntf_…``) is stable across attempts, so a
    receiver can drop a duplicate of an at-least-once delivery."""

    id: str
    organization_id: str
    execution_id: str
    step_id: str
    recipient: str
    subject: str | None
    body: str


class DeliveryFailed(Exception):
    """A send that did not go through. ``reason`` is kept as the row's ``last_error``, so it names
    statuses and codes only, never an address or a body. ``retriable``: a network error, a 5xx,
    a 429 (a later attempt may succeed); otherwise the failure is permanent."""

    def __init__(self, reason: str, *, retriable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retriable = retriable


def client() -> httpx.AsyncClient:
    """A client for one delivery: 10 s timeout, redirects never followed, no proxy from the environment.

    One per delivery rather than per process: a notification is a few calls per execution, not a
    hot path, and a process-wide client would need a close hook in the core and belongs to one
    event loop (the sweep and the task runner may run in different loops in tests). The TLS
    context (loading the CA bundle: most of a client's cost) is made once and shared."""
    return httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False,
                             verify=_tls())


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def is_retriable_status(status: int) -> bool:
    """5xx, 429 and 408 may pass later; any other non-2xx answer will not."""
    return status >= 500 or status in (408, 429)


async def post(url: str, what: str, **kwargs: Any) -> httpx.Response:
    """POST to ``url`` (``kwargs`` as httpx takes them); a network error or timeout is a retriable
    :class:`DeliveryFailed` naming ``what``."""
    async with client() as http:
        try:
            return await http.post(url, **kwargs)
        except httpx.TimeoutException:
            raise DeliveryFailed(f"{what}: timed out", retriable=True) from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{what}: {type(exc).__name__}", retriable=True) from None
