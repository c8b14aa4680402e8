"""Delivering notifications over real network: e-mail to an SMTP server the test starts (aiosmtpd),
webhooks to a receiver it starts (aiohttp), retries with backoff, permanent failures, one send
for racing senders."""

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from errand.kit import clock
from errand.kit.config import Settings
from errand.kit.db import Database
from errand.kit.ids import new_id
from errand.notify import service as notify_service
from errand.notify.channels import email as email_channel
from errand.notify.channels.base import OutgoingMessage
from tests.conftest import SECRET_KEY, free_port
from tests.service.notify.conftest import Receiver, SmtpServer, until, webhook_json
from tests.service.notify.test_queue import queue, views


async def one(database: Database, notification_id: str) -> notify_service.NotificationView:
    async with database.unit_of_work(read_only=True) as session:
        found = [v for v in await notify_service.get_notifications(
            session, execution_id=await _execution_of(database, notification_id)) if v.id == notification_id]
    return found[0]


async def _execution_of(database: Database, notification_id: str) -> str:
    from errand.models import Notification

    async with database.unit_of_work(read_only=True) as session:
        row = await session.get(Notification, notification_id)
        assert row is not None
        return row.execution_id


async def test_email_is_delivered_through_smtp_with_to_subject_body_and_a_stable_message_id(
        database: Database, organization: str, settings: Settings, smtp: SmtpServer) -> None:
    (ntf,) = await queue(database, organization, recipients=["ada@example.com"], subject="Table booked",
                         body="Your table for 2 is booked.\nSee you soon.")
    assert await notify_service.deliver(database, settings, ntf) == "sent"
    await until(lambda: len(smtp.inbox.messages) == 1)
    rcpts, message = smtp.inbox.messages[0]
    assert rcpts == ["ada@example.com"]
    assert message["To"] == "ada@example.com" and message["Subject"] == "Table booked"
    assert message["From"] == "Errand <notify@errand.test>"
    assert message["Message-ID"] == f"<{ntf}@errand.test>"
    assert message.get_payload(decode=True).decode().replace("\r\n", "\n") == "Your table for 2 is booked.\nSee you soon.\n"
    row = await one(database, ntf)
    assert (row.status, row.attempts, row.provider_message_id, row.last_error) == ("sent", 1, f"<{ntf}@errand.test>", None)
    # delivered once: a second call sends nothing
    assert await notify_service.deliver(database, settings, ntf) is None
    assert len(smtp.inbox.messages) == 1


async def test_email_while_the_smtp_server_is_down_is_retried_with_backoff_and_sent_when_it_is_back(
        database: Database, organization: str, settings: Settings, smtp: SmtpServer) -> None:
    smtp.stop()
    (ntf,) = await queue(database, organization, recipients=["ada@example.com"], subject="Retry", body="b")
    start = clock.now()
    assert await notify_service.deliver(database, settings, ntf, now=start) == "pending"
    row = await one(database, ntf)
    assert row.attempts == 1 and row.next_attempt_at == start + timedelta(seconds=5)
    assert row.last_error is not None and "SMTP server unreachable" in row.last_error
    # not due yet: nothing happens
    assert await notify_service.deliver(database, settings, ntf, now=start + timedelta(seconds=4)) is None
    later = start + timedelta(seconds=5)
    assert await notify_service.deliver(database, settings, ntf, now=later) == "pending"
    row = await one(database, ntf)
    assert row.attempts == 2 and row.next_attempt_at == later + timedelta(seconds=30)
    smtp.start()
    assert await notify_service.deliver_due(database, settings, now=later + timedelta(seconds=30)) >= 1
    row = await one(database, ntf)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    await until(lambda: len(smtp.inbox.messages) == 1)


async def test_a_notification_failing_every_attempt_fails_after_the_last(
        database: Database, organization: str, tmp_path: Path) -> None:
    down = Settings(data_dir=tmp_path, secret_key=SECRET_KEY, smtp_host="127.0.0.1", smtp_port=free_port(),
                    smtp_starttls=False)
    (ntf,) = await queue(database, organization, recipients=["ada@example.com"])
    at = clock.now()
    for attempt in range(1, notify_service.MAX_ATTEMPTS + 1):
        status = await notify_service.deliver(database, down, ntf, now=at)
        assert status == ("failed" if attempt == notify_service.MAX_ATTEMPTS else "pending")
        at = (await one(database, ntf)).next_attempt_at or at
    row = await one(database, ntf)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", notify_service.MAX_ATTEMPTS, None)


async def test_email_refused_by_the_server_fails_permanently(database: Database, organization: str,
                                                            settings: Settings, smtp: SmtpServer) -> None:
    async def refuse(server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        return "550 5.1.1 No such user here"

    smtp.inbox.handle_RCPT = refuse  # type: ignore[attr-defined]
    smtp.stop()
    smtp.start()
    (ntf,) = await queue(database, organization, recipients=["nobody@example.com"])
    assert await notify_service.deliver(database, settings, ntf) == "failed"
    row = await one(database, ntf)
    assert row.last_error == "SMTP recipient refused (550)"  # the server's text (with the address) is not kept
    assert smtp.inbox.messages == []


async def test_email_without_smtp_configured_fails_at_delivery_with_a_clear_error(
        database: Database, organization: str, tmp_path: Path) -> None:
    (ntf,) = await queue(database, organization, recipients=["ada@example.com"])
    assert await notify_service.deliver(database, Settings(data_dir=tmp_path, secret_key=SECRET_KEY), ntf) == "failed"
    assert "not configured" in ((await one(database, ntf)).last_error or "")


async def test_two_senders_racing_send_once(database: Database, organization: str, settings: Settings,
                                            smtp: SmtpServer) -> None:
    (ntf,) = await queue(database, organization, recipients=["ada@example.com"])
    results = await asyncio.gather(*(notify_service.deliver(database, settings, ntf) for _ in range(4)))
    assert results.count("sent") == 1 and results.count(None) == 3
    await until(lambda: len(smtp.inbox.messages) >= 1)
    await asyncio.sleep(0.2)
    assert len(smtp.inbox.messages) == 1


def test_a_crlf_subject_cannot_inject_headers_into_the_email(settings: Settings) -> None:
    message = OutgoingMessage(id="ntf_1", organization_id="org_1", execution_id="exec_1", step_id="s",
                              recipient="ada@example.com", subject="Hi\r\nBcc: victim@example.com", body="b")
    with pytest.raises(ValueError):  # EmailMessage refuses it: queue() makes the subject one line first
        email_channel.build(settings, message)


async def test_a_hostile_subject_arrives_as_one_header(database: Database, organization: str, settings: Settings,
                                                       smtp: SmtpServer) -> None:
    (ntf,) = await queue(database, organization, recipients=["ada@example.com"],
                         subject="Hi\r\nBcc: victim@example.com\r\n\r\nforged body", body="real\x00 body")
    assert await notify_service.deliver(database, settings, ntf) == "sent"
    await until(lambda: len(smtp.inbox.messages) == 1)
    rcpts, message = smtp.inbox.messages[0]
    assert rcpts == ["ada@example.com"] and message["Bcc"] is None
    assert message["Subject"] == "Hi Bcc: victim@example.com forged body"
    assert message.get_payload(decode=True).decode().strip() == "real body"


async def test_webhook_is_signed_with_the_organizations_secret(database: Database, organization: str,
                                                               settings: Settings, receiver: Receiver) -> None:
    execution_id = new_id("exec")
    (ntf,) = await queue(database, organization, execution_id=execution_id, channel="webhook",
                         recipients=[f"{receiver.base_url}/ok"], subject="S", body="Payment needed")
    assert await notify_service.deliver(database, settings, ntf) == "sent"
    ((path, headers, body),) = receiver.received
    assert path == "/ok" and headers["webhook-id"] == ntf
    verified = Webhook(settings.notify_webhook_signing_secret(organization)).verify(body, headers)
    assert verified["type"] == "automation.notification"
    assert verified["data"] == {"notification_id": ntf, "execution_id": execution_id, "step_id": "notify",
                                "subject": "S", "body": "Payment needed"}
    with pytest.raises(Exception):  # another organization's secret does not verify it
        Webhook(settings.notify_webhook_signing_secret("org_other")).verify(body, headers)


@pytest.mark.parametrize(("path", "status", "attempts_to_fail"), [
    ("/status/410", "failed", 1), ("/status/400", "failed", 1), ("/status/503", "pending", None),
    ("/status/429", "pending", None), ("/redirect", "failed", 1),
])
async def test_webhook_answers_decide_retry_or_permanent_failure(
        database: Database, organization: str, settings: Settings, receiver: Receiver, path: str, status: str,
        attempts_to_fail: int | None) -> None:
    (ntf,) = await queue(database, organization, channel="webhook", recipients=[f"{receiver.base_url}{path}"])
    assert await notify_service.deliver(database, settings, ntf) == status
    row = await one(database, ntf)
    assert row.status == status and row.attempts == 1
    assert row.last_error is not None and path.rsplit("/", 1)[-1].replace("redirect", "302") in row.last_error
    if path == "/redirect":
        assert [p for p, _, _ in receiver.received] == ["/redirect"]  # the redirect was not followed


async def test_webhook_to_a_closed_port_is_retried(database: Database, organization: str, settings: Settings) -> None:
    (ntf,) = await queue(database, organization, channel="webhook", recipients=[f"http://127.0.0.1:{free_port()}/x"])
    assert await notify_service.deliver(database, settings, ntf) == "pending"
    assert "webhook" in ((await one(database, ntf)).last_error or "")


async def test_deliver_due_sends_what_a_lost_task_left_pending(database: Database, organization: str,
                                                              settings: Settings, receiver: Receiver) -> None:
    execution_id = new_id("exec")
    await queue(database, organization, execution_id=execution_id, channel="webhook",
                recipients=[f"{receiver.base_url}/ok", f"{receiver.base_url}/ok?second=1"])
    await notify_service.deliver_due(database, settings)
    assert {r.status for r in await views(database, execution_id)} == {"sent"}
    assert sorted(h["webhook-id"] for _, h, _ in receiver.received) == sorted(r.id for r in await views(database, execution_id))
    assert all(webhook_json(b)["data"]["execution_id"] == execution_id for _, _, b in receiver.received)


async def test_the_deliver_task_and_the_sweep_are_registered_and_deliver(
        database: Database, organization: str, settings: Settings, receiver: Receiver) -> None:
    from types import SimpleNamespace

    from errand.composition import build_core
    from errand.notify import tasks as notify_tasks

    core = build_core(settings.model_copy(update={"database_url": database.url}))
    try:
        assert "errand.notify.deliver" in core.tasks.tasks
        assert any(p.name == "deliver_notifications" and p.interval_seconds == 2 for p in core.tasks.periodic)
    finally:
        await core.aclose()
    (ntf,) = await queue(database, organization, channel="webhook", recipients=[f"{receiver.base_url}/ok"])
    task_core = SimpleNamespace(db=database, settings=settings)
    assert await notify_tasks.deliver(task_core, notification_id=ntf) == "sent"  # type: ignore[arg-type]
    assert await notify_tasks.deliver(task_core, notification_id=ntf) is None  # type: ignore[arg-type]
    assert len(receiver.received) == 1
