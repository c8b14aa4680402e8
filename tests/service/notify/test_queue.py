"""Queueing notifications: recipients resolved or refused, one row per recipient however often a
step is re-run, delivery enqueued after commit, hostile text made harmless, personal data sealed."""

from typing import Any

import pytest
from sqlalchemy import text

from errand.kit.db import Database
from errand.kit.ids import new_id
from errand.kit.tasks import TaskCall
from errand.notify import service as notify_service
from errand.notify.errors import ChannelNotConfigured, InvalidChannel, InvalidRecipient, RecipientUnresolved
from errand.models import Organization
from tests.service.notify.conftest import make_job

TRAVELER = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0958"}


async def queue(database: Database, organization: str, *, execution_id: str | None = None, step_id: str = "notify",
                channel: str = "email", recipients: list[str], subject: str | None = "Hello", body: str = "Body",
                event_payload: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
    async with database.unit_of_work() as session:
        return await notify_service.queue(
            session, organization_id=organization, env="live", execution_id=execution_id or new_id("exec"),
            step_id=step_id, channel=channel, recipients=recipients, subject=subject, body=body,
            event_payload=event_payload or {}, **kwargs)


async def views(database: Database, execution_id: str) -> list[notify_service.NotificationView]:
    async with database.unit_of_work(read_only=True) as session:
        return await notify_service.get_notifications(session, execution_id=execution_id)


async def org_named(database: Database, organization: str) -> str:
    async with database.unit_of_work(read_only=True) as session:
        org = await session.get(Organization, organization)
        assert org is not None
        return org.name


async def test_literal_recipients_are_queued_one_row_each_and_delivery_is_enqueued(database: Database,
                                                                                    organization: str) -> None:
    sent: list[TaskCall] = []

    async def sender(calls: list[TaskCall]) -> None:
        sent.extend(calls)

    execution_id = new_id("exec")
    database.task_sender = sender
    try:
        ids = await queue(database, organization, execution_id=execution_id, channel="sms",
                          recipients=["+15551234567", "+1 (555) 765-4321"])
    finally:
        database.task_sender = None
    assert len(ids) == 2 and all(i.startswith("ntf_") for i in ids)
    assert sent == [TaskCall("errand.notify.deliver", {"notification_id": i}) for i in ids]
    rows = await views(database, execution_id)
    assert [(r.recipient, r.status, r.attempts, r.channel) for r in rows] == [
        ("+15551234567", "pending", 0, "sms"), ("+15557654321", "pending", 0, "sms")]


async def test_queueing_again_for_the_same_step_adds_nothing_and_enqueues_nothing(database: Database,
                                                                                   organization: str) -> None:
    execution_id = new_id("exec")
    first = await queue(database, organization, execution_id=execution_id, recipients=["a@example.com", "b@example.com"])
    sent: list[TaskCall] = []

    async def sender(calls: list[TaskCall]) -> None:
        sent.extend(calls)

    database.task_sender = sender
    try:
        again = await queue(database, organization, execution_id=execution_id,
                            recipients=["a@example.com", "b@example.com"])
    finally:
        database.task_sender = None
    assert again == first and sent == []
    assert len(await views(database, execution_id)) == 2
    # another step of the same execution is another message
    other = await queue(database, organization, execution_id=execution_id, step_id="notify_2",
                        recipients=["a@example.com"])
    assert other[0] not in first


async def test_role_traveler_is_the_events_job_traveler(database: Database, organization: str) -> None:
    job_id = await make_job(database, organization, TRAVELER)
    execution_id = new_id("exec")
    await queue(database, organization, execution_id=execution_id, recipients=["role:traveler"],
                event_payload={"job_id": job_id})
    await queue(database, organization, execution_id=execution_id, step_id="sms", channel="sms",
                recipients=["role:traveler"], event_payload={"job_id": job_id})
    rows = await views(database, execution_id)
    assert {(r.step_id, r.recipient, r.recipient_role) for r in rows} == {
        ("notify", "ada@example.com", "role:traveler"), ("sms", "+442079460958", "role:traveler")}


@pytest.mark.parametrize("payload", [{}, {"job_id": "job_missing"}, {"job_id": 7}, {"job_id": "x" * 5000}])
async def test_role_traveler_without_a_job_of_the_organization_is_unresolved(database: Database, organization: str,
                                                                              payload: dict[str, Any]) -> None:
    with pytest.raises(RecipientUnresolved) as raised:
        await queue(database, organization, recipients=["role:traveler"], event_payload=payload)
    assert raised.value.code == "recipient_unresolved"


async def test_role_traveler_of_another_organizations_job_is_unresolved(database: Database, organization: str) -> None:
    other = new_id("org")
    async with database.unit_of_work() as session:
        session.add(Organization(id=other, name=f"other-{other}"))
    job_id = await make_job(database, other, TRAVELER)
    with pytest.raises(RecipientUnresolved):
        await queue(database, organization, recipients=["role:traveler"], event_payload={"job_id": job_id})


async def test_role_traveler_without_an_e164_phone_is_unresolved_for_sms(database: Database, organization: str) -> None:
    job_id = await make_job(database, organization, {**TRAVELER, "phone": "020 7946 0958"})
    with pytest.raises(RecipientUnresolved):
        await queue(database, organization, channel="sms", recipients=["role:traveler"], event_payload={"job_id": job_id})


async def test_roles_admins_and_finance_are_the_organizations_contacts(database: Database, organization: str) -> None:
    name = await org_named(database, organization)
    with pytest.raises(RecipientUnresolved):
        await queue(database, organization, recipients=["role:admins"])
    async with database.unit_of_work() as session:
        await notify_service.set_contact(session, name, "admins", email="ops@example.com")
        await notify_service.set_contact(session, name, "finance", email="ap@example.com", phone="+15550001111")
    with pytest.raises(RecipientUnresolved):  # admins have no phone
        await queue(database, organization, channel="sms", recipients=["role:admins"])
    execution_id = new_id("exec")
    await queue(database, organization, execution_id=execution_id,
                recipients=["role:admins", "role:finance", "cfo@example.com"])
    assert [r.recipient for r in await views(database, execution_id)] == [
        "ops@example.com", "ap@example.com", "cfo@example.com"]
    async with database.unit_of_work() as session:  # an address not given is kept
        contact = await notify_service.set_contact(session, name, "admins", phone="+15550002222")
    assert (contact.email, contact.phone) == ("ops@example.com", "+15550002222")


@pytest.mark.parametrize("channel", ["chat", "webhook"])
async def test_roles_have_no_chat_or_webhook_address(database: Database, organization: str, channel: str) -> None:
    name = await org_named(database, organization)
    async with database.unit_of_work() as session:
        await notify_service.set_contact(session, name, "admins", email="ops@example.com")
    with pytest.raises(RecipientUnresolved):
        await queue(database, organization, channel=channel, recipients=["role:admins"])


@pytest.mark.parametrize(("channel", "recipient"), [
    ("email", "not-an-address"), ("email", "a@b"), ("email", "a@example.com\r\nBcc: victim@example.com"),
    ("email", "a@example.com\x00"), ("email", "x" * 300 + "@example.com"), ("email", "Ops <ops@example.com>"),
    ("sms", "5551234567"), ("sms", "+0123456789"), ("sms", "+1555123456789012345"), ("sms", "call me"),
    ("chat", "ops"), ("chat", "#OPS"), ("chat", "#ops\nx"), ("chat", "c0123abcd"),
    ("webhook", "ftp://example.com/x"), ("webhook", "file:///etc/passwd"), ("webhook", "javascript:alert(1)"),
    ("webhook", "https://user:pw@example.com/"), ("webhook", "https://example.com/a b"), ("webhook", "/relative"),
    ("webhook", "https://example.com/\r\nX: y"), ("webhook", "https://" + "a" * 3000 + ".com"),
    ("email", "role:nobody"),
])
async def test_a_malformed_or_hostile_recipient_is_refused_and_nothing_is_queued(
        database: Database, organization: str, channel: str, recipient: str) -> None:
    execution_id = new_id("exec")
    expected = RecipientUnresolved if recipient.startswith("role:") else InvalidRecipient
    with pytest.raises(expected) as raised:
        await queue(database, organization, execution_id=execution_id, channel=channel,
                    recipients=(["ok@example.com"] if channel == "email" else []) + [recipient])
    assert raised.value.code in ("invalid_recipient", "recipient_unresolved")
    assert await views(database, execution_id) == []


async def test_no_recipient_or_an_unknown_channel_is_refused(database: Database, organization: str) -> None:
    with pytest.raises(InvalidRecipient):
        await queue(database, organization, recipients=[])
    with pytest.raises(InvalidChannel):
        await queue(database, organization, channel="pigeon", recipients=["a@example.com"])


async def test_email_without_smtp_is_refused_at_queue_time_when_settings_are_given(
        database: Database, organization: str, tmp_path: Any) -> None:
    from errand.kit.config import Settings

    with pytest.raises(ChannelNotConfigured) as raised:
        await queue(database, organization, recipients=["a@example.com"], settings=Settings(data_dir=tmp_path))
    assert raised.value.code == "channel_not_configured"


async def test_subject_becomes_one_line_and_body_loses_control_characters(database: Database,
                                                                         organization: str) -> None:
    execution_id = new_id("exec")
    await queue(database, organization, execution_id=execution_id, recipients=["a@example.com"],
                subject="Hi\r\nBcc: victim@example.com\x00\u2028!", body="line 1\r\nline 2\x00\x07\tend\x85")
    (row,) = await views(database, execution_id)
    assert row.subject == "Hi Bcc: victim@example.com !"
    assert row.body == "line 1\nline 2\tend"


async def test_addresses_subject_and_body_are_encrypted_at_rest(database: Database, organization: str) -> None:
    execution_id = new_id("exec")
    await queue(database, organization, execution_id=execution_id, recipients=["secret.person@example.com"],
                subject="Passport 123", body="Your passport X1234567")
    async with database.unit_of_work(read_only=True) as session:
        raw = (await session.execute(text("SELECT recipient, subject, body FROM notifications WHERE execution_id = :e"),
                                     {"e": execution_id})).one()
    assert not any(s in " ".join(raw) for s in ("secret.person", "Passport", "X1234567"))
