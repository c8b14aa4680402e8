"""Factories shared by the dialect tests: keys and clients of further organizations, bookings.

Everything here goes through the public HTTP API, except minting keys, which has no HTTP
endpoint and goes through the identity service as the CLI does.
"""

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from typing import Any

import httpx
import pytest

from errand.identity import service as identity_service

Mint = Callable[..., Awaitable[str]]
BookingRequest = Callable[..., dict[str, Any]]
Book = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def mint(server: Any) -> Mint:
    """``await mint(org_name, **create_api_key options)`` → a plaintext key (live, all scenarios by default)."""

    async def _mint(organization_name: str, **kwargs: Any) -> str:
        options: dict[str, Any] = {
            "env": "live", "scenarios": ["restaurant", "hotel", "flight", "activity"], "prefix": "ar", **kwargs,
        }
        async with server.db.unit_of_work() as session:
            issued = await identity_service.create_api_key(session, organization_name=organization_name, **options)
        return issued.plaintext

    return _mint


@pytest.fixture
async def other_org(server: Any, mint: Mint) -> AsyncIterator[httpx.AsyncClient]:
    """An agent client of a second organization, for tenant-isolation tests."""
    key = await mint(f"Other {secrets.token_hex(4)}")
    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30) as client:
        yield client


@pytest.fixture
def booking_request(day: date) -> BookingRequest:
    """A booking body for the test's own ``day`` at a venue-local ``time`` (no offset)."""

    def _request(time: str = "19:00", party_size: int = 2, *, restaurant: str = "Golden Gate Grill",
                 city: str = "San Francisco", **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "restaurantName": restaurant,
            "city": city,
            "partySize": party_size,
            "datetime": f"{day.isoformat()}T{time}:00",
            "customer": {"name": "Jane Doe", "email": "jane@example.com"},
        }
        body.update(overrides)
        return body

    return _request


@pytest.fixture
def book(org: Any, booking_request: BookingRequest) -> Book:
    """Book through the API and insist on 201; returns the response body."""

    async def _book(time: str = "19:00", party_size: int = 2, *, client: httpx.AsyncClient | None = None,
                    **overrides: Any) -> dict[str, Any]:
        response = await (client or org.agent).post(
            "/api/v1/agent/restaurant/book", json=booking_request(time, party_size, **overrides)
        )
        assert response.status_code == 201, response.text
        return response.json()

    return _book
