"""Real receivers for the notification channels: an SMTP server (aiosmtpd), a webhook receiver
(aiohttp) on free ports, and factories for the rows a notification step refers to."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from errand.kit.config import Settings
from errand.kit.db import Database
from errand.kit.ids import new_id
from errand.models import Job
from tests.conftest import SECRET_KEY, free_port


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    port: int
    inbox: Inbox
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """An SMTP server on a free port of 127.0.0.1, started (stop() and start() it to take it down)."""
    server = SmtpServer(free_port(), Inbox())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpServer) -> Settings:
    """Settings whose e-mail goes to ``smtp`` (no TLS on the test server)."""
    return Settings(data_dir=tmp_path, secret_key=SECRET_KEY, smtp_host="127.0.0.1", smtp_port=smtp.port,
                    smtp_starttls=False, smtp_from="Errand <notify@errand.test>")


@dataclass
class Receiver:
    """A webhook receiver: ``/ok`` 204, ``/status/<n>`` answers n, ``/redirect`` 302 to ``/ok``."""

    base_url: str
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    found = Receiver(f"http://127.0.0.1:{port}")

    async def handle(request: web.Request) -> web.Response:
        found.received.append((request.path, dict(request.headers), await request.read()))
        if request.path == "/redirect":
            return web.Response(status=302, headers={"Location": f"{found.base_url}/ok"})
        if request.path.startswith("/status/"):
            return web.Response(status=int(request.path.rsplit("/", 1)[1]))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield found
    finally:
        await runner.cleanup()


async def make_job(database: Database, organization_id: str, profile: dict[str, Any], env: str = "live") -> str:
    """A job of ``organization_id`` whose traveler is ``profile``; returns its id."""
    job_id = new_id("job")
    async with database.unit_of_work() as session:
        session.add(Job(id=job_id, organization_id=organization_id, api_key_id="key_test", key_env=env,
                        scenario="restaurant", status="completed", params={}, profile=profile, consent={},
                        client_metadata={}, request_hash="0" * 64))
    return job_id


def webhook_json(body: bytes) -> dict[str, Any]:
    return json.loads(body)


async def until(predicate: Any, timeout: float = 10.0) -> None:
    """Wait for ``predicate()`` to hold (a server thread to hand over a message)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)
