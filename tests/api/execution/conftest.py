"""A second server over the test server's database whose sandbox answers slowly, for jobs that must be caught running."""

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Server, free_port, running

# Every request to sandbox-tables takes this long on the slow server: a job there stays
# `running` for at least two of them (search, then checkout).
SLOW_SECONDS = 3.0


@pytest.fixture(scope="module")
async def slow_url(server: Server) -> AsyncIterator[str]:
    """Base URL of a server sharing ``server``'s database, its sandbox-tables delayed by SLOW_SECONDS.

    Its jobs reach its own sandbox (the adapters use the serving port), so only they are slowed.
    """
    settings = server.settings.model_copy(update={
        "port": free_port(), "sandbox_faults": {"sandbox-tables": {"latency_ms": int(SLOW_SECONDS * 1000)}},
    })
    async with running(settings) as base_url:
        yield base_url
