"""One pooled HTTP client for every HTTP provider adapter built from the same settings.

A booking used to open (and keep) one ``httpx.AsyncClient`` per adapter; now the adapters
built from one settings object (a registry's) share one, so its keep-alive connections are
reused whichever provider a request is for. The client carries no credentials: each
adapter sends its own ``Authorization`` header with every request.

An adapter :func:`acquire` s the client on first use and :func:`release` s it in its
``aclose`` (which the registry's ``aclose`` calls); the last release closes the client. A
second registry built from the same settings (a CLI command beside a server, a test) thus
shares the connections without closing them under the first one's feet.
"""

import httpx

from errand.kit.config import Settings

# Enough connections for the busiest process (32 concurrent bookings, plus jobs and venue
# searches) without letting one burst open hundreds of sockets. Idle connections are kept a
# little under uvicorn's default keep-alive (5 s), so the client gives up a connection before
# the server does and never sends a request on a socket the server is closing.
LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=4.0)


class SharedClient:
    """A lazily opened ``httpx.AsyncClient`` (timeout ``settings.provider_timeout_seconds``, :data:`LIMITS`)."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._client: httpx.AsyncClient | None = None
        self.users = 0

    def client(self) -> httpx.AsyncClient:
        """The open client, created on first use inside the event loop that will use it."""
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(timeout=self._timeout, limits=LIMITS)
        return self._client

    async def aclose(self) -> None:
        """Close the pooled connections; closing twice is harmless."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


_SHARED: dict[int, tuple[Settings, SharedClient]] = {}


def acquire(settings: Settings) -> SharedClient:
    """The client of the adapters built from ``settings`` (the same object), counted as one more user."""
    entry = _SHARED.get(id(settings))
    if entry is None or entry[0] is not settings:
        entry = (settings, SharedClient(settings.provider_timeout_seconds))
        _SHARED[id(settings)] = entry
    entry[1].users += 1
    return entry[1]


async def release(settings: Settings, shared: SharedClient) -> None:
    """One user fewer; the last one closes the client and forgets it."""
    shared.users -= 1
    if shared.users > 0:
        return
    entry = _SHARED.get(id(settings))
    if entry is not None and entry[1] is shared:
        del _SHARED[id(settings)]
    await shared.aclose()
