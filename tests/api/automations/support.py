"""Helpers for the automations dialect's tests: a definition that can be activated, and clients."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.conftest import Server

AGENTS = "/api/agents"


def definition(**overrides: Any) -> dict[str, Any]:
    """The contract's example agent, complete enough to activate."""
    return {
        "name": "P1 Escalation Notify",
        "description": "SMS notify senior technicians when a ticket is escalated to P1",
        "category": "service_desk",
        "trigger": {"type": "bus_event", "event_type": "ticket.escalated", "source_product": "psa",
                    "filters": [{"field": "escalated_to", "operator": "eq", "value": "p1"}]},
        "conditions": [],
        "steps": [{"type": "notification", "id": "notify_senior", "channel": "sms", "recipients": ["+15551234567"],
                   "body": "P1 escalation: {{event_payload.ticket_id}}"}],
        "conflict_behavior": "additive",
        "client_scope": "all",
        **overrides,
    }


@asynccontextmanager
async def keyed(server: Server, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the automations dialect sending ``key`` in X-Integration-Key."""
    async with httpx.AsyncClient(base_url=server.base_url, headers={"X-Integration-Key": key}, timeout=30) as client:
        yield client


async def create(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post(AGENTS, json=definition(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The dialect's error body: ``{"error", "message", "status"}``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and body["status"] == status and body["message"], body
    return body
