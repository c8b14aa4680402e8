"""The sandbox's fake SMS provider (Twilio's shape) and chat API (Slack's shape), reached over real
HTTP by Errand's own notification channels, and their listings of what they recorded."""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from errand.kit.config import Settings
from errand.kit.db import Database
from errand.models import SandboxMessage
from errand.models.base import Base
from errand.notify.channels import DeliveryFailed, OutgoingMessage, chat, sms
from tests.sandbox.conftest import SETTINGS


@pytest.fixture(scope="module")
async def messages_db(db: Database) -> Database:
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all, tables=[SandboxMessage.__table__])
    return db


@pytest.fixture
def settings(sandbox_url: str, messages_db: Database) -> Settings:
    """What Errand holds when no real SMS or chat provider is configured: the sandbox's URL and tokens."""
    return SETTINGS.model_copy(update={"sandbox_url": sandbox_url})


@pytest.fixture
async def sandbox(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as client:
        yield client


def message(recipient: str, body: str = "Your table is ready", subject: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(id="ntf_test", organization_id="org_1", execution_id="exec_1", step_id="s",
                           recipient=recipient, subject=subject, body=body)


def sms_auth(settings: Settings) -> httpx.BasicAuth:
    return httpx.BasicAuth(settings.sms_account, settings.effective_sms_token())


def chat_auth(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.effective_chat_token()}"}


async def test_an_sms_is_accepted_with_a_sid_and_listed(settings: Settings, sandbox: httpx.AsyncClient) -> None:
    sid = await sms.send(settings, message("+15551230001", "Booked: 2 people\nat 19:30 ✓"))
    assert sid is not None and sid.startswith("SM")
    listed = (await sandbox.get("/sms/messages", auth=sms_auth(settings))).json()["data"]
    assert {"id": sid, "to": "+15551230001", "from": settings.sms_from, "body": "Booked: 2 people\nat 19:30 ✓"} == {
        k: v for k, v in listed[0].items() if k != "received_at"}


async def test_sms_numbers_and_bodies_are_encrypted_in_the_sandbox_database(settings: Settings,
                                                                           messages_db: Database) -> None:
    await sms.send(settings, message("+15551230002", "Passport P7654321 needed"))
    async with messages_db.unit_of_work(read_only=True) as session:
        rows = (await session.execute(text('SELECT "to", body FROM sandbox_messages'))).all()
    assert rows and not any("+15551230002" in r[0] or "P7654321" in r[1] for r in rows)


async def test_sms_with_a_wrong_token_is_401_and_permanent(settings: Settings, sandbox: httpx.AsyncClient) -> None:
    from pydantic import SecretStr

    wrong = settings.model_copy(update={"sms_token": SecretStr("nope")})
    with pytest.raises(DeliveryFailed) as failed:
        await sms.send(wrong, message("+15551230003"))
    assert (failed.value.reason, failed.value.retriable) == ("SMS API 401 (code 20003)", False)
    assert (await sandbox.get("/sms/messages")).status_code == 401
    other_account = settings.model_copy(update={"sms_account": "ACother"})  # the token is bound to its account name
    response = await sandbox.post("/sms/2010-04-01/Accounts/ACsandbox/Messages.json",
                                  data={"To": "+15551230003", "From": "+1555", "Body": "x"},
                                  auth=httpx.BasicAuth(other_account.sms_account, settings.effective_sms_token()))
    assert response.status_code == 401


@pytest.mark.parametrize(("to", "body", "code"), [
    ("+15005550001", "hi", 21211), ("5551234", "hi", 21211), ("+15551230004", "", 21602),
])
async def test_sms_the_provider_refuses_is_a_permanent_failure(settings: Settings, sandbox: httpx.AsyncClient,
                                                               to: str, body: str, code: int) -> None:
    response = await sandbox.post(f"/sms/2010-04-01/Accounts/{settings.sms_account}/Messages.json",
                                  data={"To": to, "From": settings.sms_from, "Body": body}, auth=sms_auth(settings))
    assert response.status_code == 400 and response.json()["code"] == code
    if to.startswith("+") and body:
        with pytest.raises(DeliveryFailed) as failed:
            await sms.send(settings, message(to, body))
        assert failed.value.retriable is False and str(code) in failed.value.reason


async def test_a_long_sms_body_is_cut_to_the_providers_limit(settings: Settings, sandbox: httpx.AsyncClient) -> None:
    sid = await sms.send(settings, message("+15551230005", "x" * 5000))
    listed = (await sandbox.get("/sms/messages", params={"limit": 200}, auth=sms_auth(settings))).json()["data"]
    (found,) = [m for m in listed if m["id"] == sid]
    assert len(found["body"]) == sms.MAX_BODY


async def test_a_chat_message_is_posted_and_listed(settings: Settings, sandbox: httpx.AsyncClient) -> None:
    ts = await chat.send(settings, message("#ops", "P1 escalation: T-42", subject="Escalation"))
    assert ts
    listed = (await sandbox.get("/chat/messages", headers=chat_auth(settings))).json()["data"]
    assert (listed[0]["to"], listed[0]["body"]) == ("#ops", "*Escalation*\nP1 escalation: T-42")


@pytest.mark.parametrize(("channel", "error"), [("#archived-ops", "is_archived"), ("C0123ABCD", None)])
async def test_chat_ok_false_is_a_recorded_permanent_failure(settings: Settings, channel: str,
                                                              error: str | None) -> None:
    if error is None:
        assert await chat.send(settings, message(channel))
        return
    with pytest.raises(DeliveryFailed) as failed:
        await chat.send(settings, message(channel))
    assert (failed.value.reason, failed.value.retriable) == (f"chat API error {error}", False)


async def test_chat_with_a_wrong_token_answers_invalid_auth(settings: Settings, sandbox: httpx.AsyncClient) -> None:
    from pydantic import SecretStr

    with pytest.raises(DeliveryFailed) as failed:
        await chat.send(settings.model_copy(update={"chat_token": SecretStr("xoxb-wrong")}), message("#ops"))
    assert failed.value.reason == "chat API error invalid_auth"
    assert (await sandbox.get("/chat/messages")).status_code == 401


@pytest.mark.parametrize("payload", [[], {"channel": "#ops"}, {"channel": "ops", "text": "x"},
                                     {"channel": "#ops", "text": "   "}, {"channel": "#ops", "text": 7}])
async def test_chat_refuses_malformed_posts_as_slack_does(settings: Settings, sandbox: httpx.AsyncClient,
                                                          payload: object) -> None:
    response = await sandbox.post("/chat/api/chat.postMessage", json=payload, headers=chat_auth(settings))
    assert response.status_code == 200 and response.json()["ok"] is False


async def test_chat_refuses_a_nul_byte_before_any_route(settings: Settings, sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.post("/chat/api/chat.postMessage", content=b'{"channel": "#ops", "text": "a\\u0000b"}',
                                  headers={**chat_auth(settings), "content-type": "application/json"})
    assert response.status_code == 400
