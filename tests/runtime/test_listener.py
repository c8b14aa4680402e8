"""The job queue's LISTEN connection notices when it stops delivering, and replaces itself.

A connection can go deaf without any error reaching the client (a failover behind a
proxy, a half-open TCP connection). Here the LISTEN connection goes through a small TCP
proxy that can freeze the connections it carries: bytes stop flowing both ways, while the
sockets stay open, so neither psycopg nor the kernel sees anything wrong. Only the
connector's probe, a NOTIFY sent through the pool that never comes back, can tell.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

import psycopg
import pytest
from sqlalchemy.engine import make_url

from errand.kit.db import libpq_conninfo
from errand.runtime.queue import ListeningConnector
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="ERRAND_TEST_POSTGRES_URL is not set: LISTEN/NOTIFY needs PostgreSQL")


class FreezableProxy:
    """Forwards TCP to PostgreSQL; :meth:`freeze` silently stops the connections open at that moment."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.frozen: set[int] = set()
        self.generation = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        self.frozen.update(range(self.generation + 1))

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.generation += 1
        generation = self.generation
        server_reader, server_writer = await asyncio.open_connection(*self.target)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    if generation in self.frozen:
                        continue  # swallowed: the peer waits forever
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:g} s: {what}"
        await asyncio.sleep(0.05)


async def test_listener_that_stops_delivering_is_replaced_and_delivers_again() -> None:
    assert PG_URL
    direct = libpq_conninfo(PG_URL)
    url = make_url(direct)
    proxy = FreezableProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy_port = await proxy.start()
    via_proxy = url.set(host="127.0.0.1", port=proxy_port).render_as_string(hide_password=False)
    connector = ListeningConnector(conninfo=direct, listen_conninfo=via_proxy, probe_interval=0.3,
                                   probe_timeout=0.5, min_size=1, max_size=2)
    await connector.open_async()
    received: list[str] = []

    async def on_notification(*, channel: str, payload: str) -> None:
        received.append(payload)

    async def notify(payload: str) -> None:
        async with await psycopg.AsyncConnection.connect(direct, autocommit=True) as conn:
            await conn.execute("SELECT pg_notify('errand_listener_test', %s)", (payload,))

    listening: Callable[[], Awaitable[None]] = connector.listen_notify  # type: ignore[assignment]
    task = asyncio.create_task(listening(on_notification=on_notification, channels=["errand_listener_test"]))
    try:
        await eventually(lambda: connector.health.listening and connector.health.last_probe_at is not None, 10,
                         "the listener answers its probes")
        await notify("before")
        await eventually(lambda: "before" in received, 5, "a notification is delivered")

        proxy.freeze()
        await notify("while deaf")
        await eventually(lambda: connector.health.reconnects >= 1, 10, "the deaf listener is replaced")
        await notify("after")

        await eventually(lambda: "after" in received, 5, "the new listener delivers")
        assert "while deaf" not in received  # lost with the deaf connection; the wake-up covers it
        assert received.count('{"type": "job_inserted", "job_id": null}') >= 2, "each (re)connection wakes the worker"
        assert connector.health.last_error is not None and "ListenerStalled" in connector.health.last_error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await connector.close_async()
        await proxy.close()
