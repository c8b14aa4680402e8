"""When the database cannot be reached, authentication fails closed: 503, never 500, never 200."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from errand.kit.config import Settings
from tests.conftest import SECRET_KEY, free_port, running

WELL_FORMED = "ar_live_" + "A" * 43


@pytest.fixture
async def dead_database_server(tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(
        data_dir=tmp_path, database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
        port=free_port(), secret_key=SECRET_KEY, worker=False,
    )
    async with running(settings) as base_url:
        yield base_url


async def test_reservations_dialect_answers_503_auth_backend_unavailable(dead_database_server: str) -> None:
    async with httpx.AsyncClient(base_url=dead_database_server) as client:
        response = await client.post(
            "/api/v1/agent/restaurant/book", headers={"Authorization": f"Bearer {WELL_FORMED}"},
            json={"restaurantName": "Carbone", "city": "New York", "partySize": 2,
                  "datetime": "2027-05-01T19:00:00", "customer": {"name": "A"}},
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "AUTH_BACKEND_UNAVAILABLE"


async def test_automations_dialect_answers_503_in_its_own_shape(dead_database_server: str) -> None:
    async with httpx.AsyncClient(base_url=dead_database_server) as client:
        response = await client.get("/api/approvals", headers={"X-Integration-Key": WELL_FORMED})
    assert response.status_code == 503
    assert response.json() == {"error": "auth_backend_unavailable", "status": 503,
                               "message": response.json()["message"]}


async def test_malformed_key_is_refused_without_touching_the_database(dead_database_server: str) -> None:
    async with httpx.AsyncClient(base_url=dead_database_server) as client:
        response = await client.get("/api/v1/policies", headers={"Authorization": "Bearer ar_live_short"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
