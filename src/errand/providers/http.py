"""One pooled HTTP session for every HTTP provider adapter built from the same settings.

The adapters built from one settings object (a registry's) share one ``aiohttp.ClientSession``
(aiohttp rather than httpx: the provider call is on every booking's path, and aiohttp took
about 1.3 ms less of Errand's CPU per booking in bench/book.py), so its keep-alive
connections are reused whichever provider a request is for. The session carries no
credentials: each adapter sends its own ``Authorization`` header with every request.

An adapter :func:`acquire` s the session on first use and :func:`release` s it in its
``aclose`` (which the registry's ``aclose`` calls); the last release closes the session. A
second registry built from the same settings (a CLI command beside a server, a test) thus
shares the connections without closing them under the first one's feet.
"""

import asyncio

import aiohttp

from errand.kit.config import Settings

# Enough connections for the busiest process (32 concurrent bookings, plus jobs and venue
# searches) without letting one burst open hundreds of sockets. Idle connections are kept a
# little under uvicorn's default keep-alive (5 s), so the client gives up a connection before
# the server does and never sends a request on a socket the server is closing.
MAX_CONNECTIONS = 64
KEEPALIVE_SECONDS = 4.0


class SharedClient:
    """A lazily opened ``aiohttp.ClientSession``: total timeout ``settings.provider_timeout_seconds``,
    at most :data:`MAX_CONNECTIONS` connections, idle ones closed after :data:`KEEPALIVE_SECONDS`."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.users = 0

    def client(self) -> aiohttp.ClientSession:
        """The open session, created on first use inside the event loop that will use it (and anew
        for another loop: a session's connections belong to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        """Close the pooled connections; closing twice is harmless."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


_SHARED: dict[int, tuple[Settings, SharedClient]] = {}


def acquire(settings: Settings) -> SharedClient:
    """The session of the adapters built from ``settings`` (the same object), counted as one more user."""
    entry = _SHARED.get(id(settings))
    if entry is None or entry[0] is not settings:
        entry = (settings, SharedClient(settings.provider_timeout_seconds))
        _SHARED[id(settings)] = entry
    entry[1].users += 1
    return entry[1]


async def release(settings: Settings, shared: SharedClient) -> None:
    """One user fewer; the last one closes the session and forgets it."""
    shared.users -= 1
    if shared.users > 0:
        return
    entry = _SHARED.get(id(settings))
    if entry is not None and entry[1] is shared:
        del _SHARED[id(settings)]
    await shared.aclose()
