"""Notifications queued as an automation's step queues them, delivered by the running server's own
runner (its sweep) to the embedded sandbox's fake SMS provider and chat API over real HTTP, and
read back through the sandbox's listings."""

import asyncio
import secrets
from typing import Any

import httpx
from sqlalchemy import select

from errand.kit.ids import new_id
from errand.models import Organization
from errand.notify import service as notify_service
from tests.conftest import Org, Server


async def org_id(server: Server, org: Org) -> str:
    async with server.db.unit_of_work(read_only=True) as session:
        return (await session.execute(select(Organization.id).where(Organization.name == org.name))).scalar_one()


async def queue(server: Server, organization_id: str, execution_id: str, **kwargs: Any) -> list[str]:
    async with server.db.unit_of_work() as session:
        return await notify_service.queue(session, organization_id=organization_id, env="live",
                                          execution_id=execution_id, step_id="notify", subject=None,
                                          event_payload={}, **kwargs)


async def settled(server: Server, execution_id: str) -> list[notify_service.NotificationView]:
    """The execution's notifications once none is pending (the server's sweep runs every 2 s)."""
    for _ in range(300):
        async with server.db.unit_of_work(read_only=True) as session:
            rows = await notify_service.get_notifications(session, execution_id=execution_id)
        if rows and all(r.status != "pending" for r in rows):
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError("the notifications were not delivered")


async def test_an_sms_notification_reaches_the_sandbox_provider(server: Server, org: Org,
                                                                 anon: httpx.AsyncClient) -> None:
    execution_id = new_id("exec")
    number = f"+1555{secrets.randbelow(10**7):07d}"
    await queue(server, await org_id(server, org), execution_id, channel="sms", recipients=[number],
                body="P1 escalation: T-42")
    (row,) = await settled(server, execution_id)
    assert (row.status, row.attempts) == ("sent", 1) and row.provider_message_id.startswith("SM")
    settings = server.settings
    listed = (await anon.get("/sandbox/sms/messages", params={"limit": 200},
                             auth=(settings.sms_account, settings.effective_sms_token()))).json()["data"]
    (found,) = [m for m in listed if m["id"] == row.provider_message_id]
    assert (found["to"], found["body"], found["from"]) == (number, "P1 escalation: T-42", settings.sms_from)


async def test_chat_notifications_are_posted_and_a_refusal_is_recorded(server: Server, org: Org,
                                                                       anon: httpx.AsyncClient) -> None:
    execution_id = new_id("exec")
    channel = f"#ops-{new_id('c')[-8:]}"
    await queue(server, await org_id(server, org), execution_id, channel="chat",
                recipients=[channel, "#archived-team"], body="Payment awaited for job 7")
    sent, refused = await settled(server, execution_id)
    assert sent.status == "sent" and sent.provider_message_id
    assert (refused.status, refused.attempts, refused.last_error) == ("failed", 1, "chat API error is_archived")
    listed = (await anon.get("/sandbox/chat/messages", params={"limit": 200}, headers={
        "Authorization": f"Bearer {server.settings.effective_chat_token()}"})).json()["data"]
    assert [(m["to"], m["body"]) for m in listed if m["to"] == channel] == [(channel, "Payment awaited for job 7")]


async def test_the_sandbox_listings_need_the_providers_credentials(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/sandbox/sms/messages")).status_code == 401
    assert (await anon.get("/sandbox/sms/messages", auth=("ACsandbox", "wrong"))).status_code == 401
    assert (await anon.get("/sandbox/chat/messages", headers={"Authorization": "Bearer xoxb-1"})).status_code == 401
    response = await anon.post("/sandbox/chat/api/chat.postMessage", json={"channel": "#ops", "text": "x"})
    assert response.json() == {"ok": False, "error": "invalid_auth"}
