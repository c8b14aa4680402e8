"""API keys checked from the principal cache: how long a change takes to be seen, and last-use times.

The contract: a key revoked in the serving process stops at once; one revoked or aged by another
process (the command line, another worker) within the cache's bound, ERRAND_AUTH_CACHE_SECONDS
(≤ 1 s). Waits below poll against those bounds (with slack), they do not measure speed.
"""

import asyncio
import os
import subprocess
import sys
import types
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

from errand.identity import authenticator
from errand.identity import service as identity_service
from errand.kit import clock, crypto
from errand.models import ApiKey
from tests.api.test_auth import assert_unauthorized, probe
from tests.conftest import SECRET_KEY

ERRAND = str(Path(sys.executable).parent / "errand")
# Another process's change must be seen within the cache's 1 s; poll twice as long.
OTHER_PROCESS_BOUND = 2.0


async def eventually(request: Callable[[], Awaitable[httpx.Response]], status: int, within: float) -> httpx.Response:
    """``request()`` repeated until it answers ``status`` or ``within`` seconds have passed; the last answer."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await request()
        if response.status_code == status or asyncio.get_running_loop().time() > deadline:
            return response
        await asyncio.sleep(0.05)


async def last_used(server, key: str):
    async with server.db.unit_of_work() as session:
        return (await session.execute(
            select(ApiKey.last_used_at).where(ApiKey.key_hash == crypto.sha256_hex(key)))).scalar_one()


async def test_key_revoked_in_this_process_is_refused_on_the_next_request(server, org, mint):
    key = await mint(org.name)
    for _ in range(3):  # cached by now
        assert (await probe(server, key)).status_code == 404

    async with server.db.unit_of_work() as session:
        await identity_service.revoke_api_key(session, key[:12])

    assert_unauthorized(await probe(server, key))


async def test_key_aged_by_another_writer_is_refused_within_the_cache_bound(server, org, mint):
    key = await mint(org.name, expires_in_days=1)
    assert (await probe(server, key)).status_code == 404

    # There is no public way to age a key: move its expiry into the past directly, as another
    # process would (this process's caches are not told).
    async with server.db.unit_of_work() as session:
        await session.execute(update(ApiKey).where(ApiKey.key_hash == crypto.sha256_hex(key))
                              .values(expires_at=clock.now() - timedelta(minutes=1)))

    assert_unauthorized(await eventually(lambda: probe(server, key), 401, OTHER_PROCESS_BOUND))


async def test_cached_key_is_refused_the_moment_it_expires(server, org, mint, monkeypatch):
    key = await mint(org.name, expires_in_days=1)
    assert (await probe(server, key)).status_code == 404

    # The cached entry is still fresh; only the clock moves past the key's expiry.
    later = types.SimpleNamespace(now=lambda: clock.now() + timedelta(days=2), as_utc=clock.as_utc)
    monkeypatch.setattr(authenticator, "clock", later)

    assert_unauthorized(await probe(server, key))


async def test_last_use_is_recorded_off_the_request_within_the_flush_interval(server, org, mint):
    key = await mint(org.name)
    assert await last_used(server, key) is None

    before = clock.now()
    assert (await probe(server, key)).status_code == 404

    deadline = asyncio.get_running_loop().time() + server.settings.last_used_flush_seconds + 5
    while (recorded := await last_used(server, key)) is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    assert recorded is not None
    assert clock.as_utc(recorded) >= before - timedelta(seconds=1)


async def test_last_use_is_written_when_the_process_stops(server, org, mint):
    key = await mint(org.name)
    env = {k: v for k, v in os.environ.items() if k != "ERRAND_API_KEY"} | {
        "ERRAND_DATABASE_URL": server.settings.effective_database_url, "ERRAND_SECRET_KEY": SECRET_KEY,
        "ERRAND_DATA_DIR": str(server.settings.data_dir), "ERRAND_SANDBOX_URL": f"{server.base_url}/sandbox",
        "ERRAND_LOG_LEVEL": "WARNING", "ERRAND_API_KEY": key, "ERRAND_LAST_USED_FLUSH_SECONDS": "300",
    }

    # `errand mcp` checks its key on start; stdin closed at once ends it, long before a periodic flush.
    result = await asyncio.to_thread(subprocess.run, [ERRAND, "mcp"], env=env, capture_output=True, text=True,
                                     input="", timeout=60)

    assert result.returncode == 0, result.stderr
    assert await last_used(server, key) is not None
