"""Agents run end to end over HTTP: an event ingested (or one of Errand's own), matched on the
server's runner, each step type carried out for real, and the run read back through the
executions API — across server restarts, with cancel and retry, and with credits that add up.

Servers with settings of their own (an LLM, an SMTP server) or that a test restarts are the
test's own (``own_server``); the rest use the shared server and an organization of the test's own.
"""

import asyncio
from collections.abc import Iterator
from datetime import date
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from errand.automations import service as automations_service
from tests.api.automations.support import assert_error
from tests.api.automations.support_runs import (
    EXECUTIONS, activate, bus_trigger, executions, keyed, org_name, own_server, run_of, send, step,
)
from tests.api.execution.support import JOBS, PROFILE, restaurant
from tests.conftest import BACKENDS, Org, Server, free_port, mint_key, running
from tests.llm.fake_llm import fake_llm

GATED = [
    {"type": "approval_gate", "id": "ask", "message": "Refund {{ event_payload.amount }} USD to {{ event_payload.client }}?",
     "timeout_minutes": 60},
    {"type": "branch", "id": "after", "condition": 'steps.ask.output.decision == "approved"'},
]


# --- each step type, on the shared server ---------------------------------------------------


async def test_an_event_runs_a_branch_and_a_chat_notification_and_the_trace_says_so(org: Org, server: Server) -> None:
    agent = await activate(org.admin, trigger=bus_trigger("ticket.created", filters=[
        {"field": "priority", "operator": "eq", "value": "p1"}]), steps=[
        {"type": "branch", "id": "urgent", "condition": 'event_payload.priority == "p1"', "if_false": "end"},
        {"type": "notification", "id": "tell_ops", "channel": "chat", "recipients": ["#ops"],
         "body": "P1 ticket {{ event_payload.ticket_id }}"}])
    async with keyed(server.base_url, org.agent_key) as agent_key:  # any key of the organization may send events
        sent = await send(agent_key, "ticket.created", {"ticket_id": "T-1", "priority": "p1"}, id="psa-evt-1",
                          client_id="acme")
    assert sent["status"] == "accepted" and sent["event_key"] == "psa-evt-1"

    done = await run_of(org.admin, agent["id"], "completed")
    assert done["agent_id"] == agent["id"] and done["credits_used"] == 0 and done["retry_of"] is None
    assert done["trigger_event"]["id"] == sent["id"] and done["trigger_event"]["event_key"] == "psa-evt-1"
    assert done["trigger_event"]["client_id"] == "acme"
    assert done["trigger_event"]["payload"] == {"ticket_id": "T-1", "priority": "p1"}
    assert [(s["step_id"], s["step_type"], s["status"]) for s in done["steps"]] == [
        ("urgent", "branch", "completed"), ("tell_ops", "notification", "completed")]
    assert step(done, "urgent")["output"]["result"] is True
    assert step(done, "tell_ops")["output"]["notification_ids"]
    assert all(s["duration_ms"] is not None and s["completed_at"] for s in done["steps"])

    stats = (await org.admin.get(f"/api/agents/{agent['id']}")).json()["stats"]
    assert stats["total_runs"] == 1 and stats["success_rate"] == 1.0 and stats["last_run_at"]
    assert stats["avg_duration_ms"] is not None and stats["credits_used_this_month"] == 0


async def test_an_ai_step_without_a_configured_model_fails_with_llm_not_configured(org: Org) -> None:
    agent = await activate(org.admin, trigger=bus_trigger("ticket.classify"), steps=[
        {"type": "ai_reason", "id": "classify", "model": "quick", "prompt": "Classify {{ event_payload.ticket_id }}",
         "output_schema": {"type": "object", "properties": {"priority": {"type": "string"}}}}])
    await send(org.admin, "ticket.classify", {"ticket_id": "T-2"})
    failed = await run_of(org.admin, agent["id"], "failed")
    assert failed["reason"] == "llm_not_configured" and failed["credits_used"] == 0
    assert step(failed, "classify")["status"] == "failed"
    assert (await org.admin.get("/api/credits")).json()["total_used"] == 0


async def test_a_missing_template_variable_fails_the_step_naming_it(org: Org) -> None:
    agent = await activate(org.admin, trigger=bus_trigger("ticket.note"), steps=[
        {"type": "notification", "id": "note", "channel": "chat", "recipients": ["#ops"],
         "body": "Ticket {{ event_payload.ticket_id }} for {{ event_payload.owner }}"}])
    await send(org.admin, "ticket.note", {"ticket_id": "T-3"})
    failed = await run_of(org.admin, agent["id"], "failed")
    assert failed["reason"] == "template_error" and "owner" in (step(failed, "note")["error"] or "")


async def test_a_product_action_books_once_and_its_event_triggers_no_agent(org: Org, day: date) -> None:
    booking = {"restaurant_name": "Le Bernardin", "city": "New York", "party_size": 2,
               "datetime": f"{day.isoformat()}T19:00:00-05:00", "customer": {"name": "Jane Doe"}}
    agent = await activate(org.admin, trigger=bus_trigger("crm.vip_arrived"), steps=[
        {"type": "product_action", "id": "book", "operation": "restaurant.book", "params": booking}])
    echo = await activate(org.admin, name="Would loop", trigger=bus_trigger("transaction.confirmed", source="errand"),
                          steps=[{"type": "branch", "id": "any", "condition": "true"}])
    await send(org.admin, "crm.vip_arrived", {"vip": "yes"})
    done = await run_of(org.admin, agent["id"], "completed")
    output = step(done, "book")["output"]
    assert output["status"] == "confirmed" and output["transaction_id"].startswith("txn_")
    assert "Jane" not in str(output)
    transaction = await org.agent.get(f"/api/v1/transactions/{output['transaction_id']}")
    assert transaction.status_code == 200 and transaction.json()["status"] == "confirmed"
    # The booking's transaction.confirmed carries the loop guard: the agent listening for it never runs.
    assert await executions(org.admin, agent_id=echo["id"]) == []


# --- approval gates, cancel and retry --------------------------------------------------------


async def test_a_gate_shows_in_approvals_and_cancel_denies_it_and_skips_what_remains(org: Org) -> None:
    agent = await activate(org.admin, trigger=bus_trigger("refund.requested"), steps=GATED)
    await send(org.admin, "refund.requested", {"amount": 40, "client": "Acme"})
    waiting = await run_of(org.admin, agent["id"], "waiting_approval")
    assert step(waiting, "ask")["status"] == "waiting_approval"
    pending = (await org.admin.get("/api/approvals", params={"status": "pending"})).json()["approvals"]
    (gate,) = [a for a in pending if a["execution_id"] == waiting["id"]]
    assert gate["agent_id"] == agent["id"] and gate["step_id"] == "ask"
    assert gate["message"] == "Refund 40 USD to Acme?" and gate["transaction_id"] is None

    cancelled = await org.admin.post(f"{EXECUTIONS}/{waiting['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["reason"] == "cancelled" and body["completed_at"]
    assert [(s["step_id"], s["status"]) for s in body["steps"]] == [("ask", "skipped"), ("after", "skipped")]
    decided = (await org.admin.get("/api/approvals", params={"status": "denied"})).json()["approvals"]
    assert [a["id"] for a in decided if a["execution_id"] == waiting["id"]] == [gate["id"]]
    assert_error(await org.admin.post(f"{EXECUTIONS}/{waiting['id']}/cancel"), 409, "invalid_state")
    assert_error(await org.admin.post(f"/api/approvals/{gate['id']}/decision", json={"decision": "approved"}),
                 409, "invalid_state")

    retried = await org.admin.post(f"{EXECUTIONS}/{waiting['id']}/retry")
    assert retried.status_code == 201, retried.text
    retry = retried.json()
    assert retry["retry_of"] == waiting["id"] and retry["id"] != waiting["id"]
    assert retry["trigger_event"] == body["trigger_event"]
    again = await run_of(org.admin, agent["id"], "waiting_approval", count=2)
    assert again["id"] == retry["id"]
    assert_error(await org.admin.post(f"{EXECUTIONS}/{retry['id']}/retry"), 409, "invalid_state")

    (gate2,) = [a for a in (await org.admin.get("/api/approvals", params={"status": "pending"})).json()["approvals"]
                if a["execution_id"] == retry["id"]]
    denied = await org.admin.post(f"/api/approvals/{gate2['id']}/decision", json={"decision": "denied", "note": "no"})
    assert denied.status_code == 200 and denied.json()["execution_status"] == "cancelled"
    ended = (await org.admin.get(f"{EXECUTIONS}/{retry['id']}")).json()
    assert ended["status"] == "cancelled" and ended["reason"] == "approval_denied"
    assert step(ended, "ask")["output"]["decision"] == "denied" and step(ended, "after")["status"] == "skipped"


async def test_executions_list_filters_pages_and_stays_in_its_organization(org: Org, server: Server) -> None:
    agent = await activate(org.admin, trigger=bus_trigger("ticket.paged"), steps=[
        {"type": "branch", "id": "noop", "condition": "true"}])
    for n in range(3):
        await send(org.admin, "ticket.paged", {"n": n}, id=f"paged-{n}")
    await run_of(org.admin, agent["id"], "completed", count=3)
    for _ in range(600):
        if all(e["status"] == "completed" for e in await executions(org.admin, agent_id=agent["id"])):
            break
        await asyncio.sleep(0.05)
    first = (await org.admin.get(EXECUTIONS, params={"agent_id": agent["id"], "limit": 2})).json()
    assert first["total"] == 3 and len(first["executions"]) == 2 and first["next_cursor"]
    rest = (await org.admin.get(EXECUTIONS, params={"agent_id": agent["id"], "limit": 2,
                                                    "cursor": first["next_cursor"]})).json()
    assert len(rest["executions"]) == 1 and rest["next_cursor"] is None
    ids = [e["id"] for e in first["executions"] + rest["executions"]]
    assert len(set(ids)) == 3
    created = [e["created_at"] for e in first["executions"] + rest["executions"]]
    assert created == sorted(created, reverse=True)
    assert (await org.admin.get(EXECUTIONS, params={"status": "failed", "agent_id": agent["id"]})).json()["total"] == 0
    assert (await org.admin.get(EXECUTIONS, params={"from": "2999-01-01T00:00:00Z"})).json()["total"] == 0

    async with keyed(server.base_url, await mint_key(server, org_name(), role="admin")) as stranger:
        assert (await stranger.get(EXECUTIONS)).json()["total"] == 0
        assert_error(await stranger.get(f"{EXECUTIONS}/{ids[0]}"), 404, "execution_not_found")
        assert_error(await stranger.post(f"{EXECUTIONS}/{ids[0]}/retry"), 404, "execution_not_found")


# --- a real LLM server, credits ----------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_ai_reason_answers_feed_a_branch_and_credits_agree_everywhere(tmp_path: Path, backend: str) -> None:
    async with fake_llm([{"priority": "p1", "summary": "disk full"}]) as llm, own_server(
            tmp_path, backend, llm_provider="openai-compatible", llm_base_url=llm.base_url, llm_api_key="sk-test",
            llm_model_standard="tiny-standard") as own:
        admin_key = await own.key(name := org_name(), "admin")
        async with running(own.settings) as base_url, keyed(base_url, admin_key) as admin:
            agent = await activate(admin, trigger=bus_trigger("ticket.created"), steps=[
                {"type": "ai_reason", "id": "classify", "model": "standard",
                 "prompt": "Classify ticket {{ event_payload.ticket_id }}: {{ event_payload.text }}",
                 "output_schema": {"type": "object", "required": ["priority"],
                                   "properties": {"priority": {"enum": ["p1", "p2", "p3"]},
                                                  "summary": {"type": "string"}}}},
                {"type": "branch", "id": "is_p1", "condition": 'steps.classify.output.priority == "p1"',
                 "if_false": "end"},
                {"type": "notification", "id": "page", "channel": "chat", "recipients": ["#oncall"],
                 "body": "{{ steps.classify.output.summary }} on {{ event_payload.ticket_id }}"}])
            await send(admin, "ticket.created", {"ticket_id": "T-9", "text": "the disk is full"})
            done = await run_of(admin, agent["id"], "completed")
            assert step(done, "classify")["output"] == {"priority": "p1", "summary": "disk full"}
            assert step(done, "classify")["credits_used"] == 20 and done["credits_used"] == 20
            assert step(done, "is_p1")["output"]["result"] is True and step(done, "page")["status"] == "completed"
            sent = llm.requests[0]
            assert sent.body["model"] == "tiny-standard" and "the disk is full" in str(sent.body)

            credits = (await admin.get("/api/credits")).json()
            assert credits["total_used"] == 20 and credits["by_agent"] == {agent["id"]: 20}
            assert credits["by_model"]["standard"] == 20 and credits["remaining"] == credits["allocation"] - 20
            stats = (await admin.get(f"/api/agents/{agent['id']}")).json()["stats"]
            assert stats["credits_used_this_month"] == 20
            assert (await admin.get("/api/credits/history")).json()["history"][0]["total_used"] == 20

            # Out of credits: the next run fails before calling the model; what was charged stays charged.
            async with own.db.unit_of_work() as session:
                await automations_service.set_allocation(session, name, 30)
            await send(admin, "ticket.created", {"ticket_id": "T-10", "text": "again"})
            broke = await run_of(admin, agent["id"], "failed", count=2)
            assert broke["reason"] == "credit_insufficient" and broke["credits_used"] == 0
            assert len(llm.requests) == 1
            assert_error(await admin.post(f"{EXECUTIONS}/{broke['id']}/retry"), 402, "credit_insufficient")
            assert (await admin.get("/api/credits")).json()["total_used"] == 20


# --- restarts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_approval_decided_after_a_restart_resumes_the_execution(tmp_path: Path, backend: str) -> None:
    async with own_server(tmp_path, backend) as own:
        admin_key = await own.key(org_name(), "admin")
        async with running(own.settings) as base_url, keyed(base_url, admin_key) as admin:
            agent = await activate(admin, trigger=bus_trigger("refund.requested"), steps=GATED)
            await send(admin, "refund.requested", {"amount": 12, "client": "Initech"})
            waiting = await run_of(admin, agent["id"], "waiting_approval")
        async with running(own.settings) as base_url, keyed(base_url, admin_key) as admin:
            pending = (await admin.get("/api/approvals", params={"status": "pending"})).json()["approvals"]
            (gate,) = [a for a in pending if a["execution_id"] == waiting["id"]]
            decided = await admin.post(f"/api/approvals/{gate['id']}/decision", json={"decision": "approved"})
            assert decided.status_code == 200, decided.text
            done = await run_of(admin, agent["id"], "completed")
            assert done["id"] == waiting["id"] and step(done, "after")["output"]["result"] is True
            assert [s["step_id"] for s in done["steps"]] == ["ask", "after"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_wait_survives_a_restart(tmp_path: Path, backend: str) -> None:
    async with own_server(tmp_path, backend) as own:
        admin_key = await own.key(org_name(), "admin")
        async with running(own.settings) as base_url, keyed(base_url, admin_key) as admin:
            agent = await activate(admin, trigger=bus_trigger("lead.created"), steps=[
                {"type": "wait", "id": "cool_off", "duration": "2s"},
                {"type": "branch", "id": "then", "condition": "event_payload.score > 5"}])
            await send(admin, "lead.created", {"score": 9})
            waiting = await run_of(admin, agent["id"], "running")
            for _ in range(600):
                if waiting["steps"] and step(waiting, "cool_off")["status"] == "waiting":
                    break
                await asyncio.sleep(0.05)
                waiting = (await admin.get(f"{EXECUTIONS}/{waiting['id']}")).json()
            assert step(waiting, "cool_off")["status"] == "waiting"
            resume_at = step(waiting, "cool_off")["output"]["resume_at"]
        await asyncio.sleep(2.5)  # the wait ends while no server runs
        async with running(own.settings) as base_url, keyed(base_url, admin_key) as admin:
            done = await run_of(admin, agent["id"], "completed")
            assert done["id"] == waiting["id"] and step(done, "cool_off")["status"] == "completed"
            assert step(done, "then")["started_at"] >= resume_at


# --- Errand's own events: a job pausing for payment emails the traveler -------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        self.messages.append(BytesParser(policy=default_policy).parsebytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_job_pausing_for_payment_emails_the_traveler(tmp_path: Path, backend: str, day: date,
                                                             smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    async with own_server(tmp_path, backend, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                          smtp_from="Errand <errand@example.test>") as own:
        name = org_name()
        admin_key, agent_key = await own.key(name, "admin"), await own.key(name)
        async with running(own.settings) as base_url, keyed(base_url, admin_key) as admin, \
                keyed(base_url, agent_key) as agent:
            payment_mail = await activate(admin, trigger=bus_trigger("job.paused_payment", source="errand"), steps=[
                {"type": "notification", "id": "mail_traveler", "channel": "email", "recipients": ["role:traveler"],
                 "subject": "Pay for {{ event_payload.venue_name }}",
                 "body": "Your table at {{ event_payload.venue_name }} waits for {{ event_payload.amount_usd }} USD."}])
            job = await agent.post(JOBS, json=restaurant(day, consent={"allowedProviders": ["sandbox-tables"],
                                                                       "allowVenueSwitch": False}))
            assert job.status_code == 202, job.text
            done = await run_of(admin, payment_mail["id"], "completed")
            assert done["trigger_event"]["source_product"] == "errand"
            assert done["trigger_event"]["payload"]["job_id"] == job.json()["jobId"]
            for _ in range(600):
                if inbox.messages:
                    break
                await asyncio.sleep(0.05)
            (mail,) = inbox.messages
            assert mail["To"] == PROFILE["email"] and mail["Subject"] == "Pay for Le Bernardin"
            assert "waits for 450.0 USD" in mail.get_content()
            # The payload that triggered it carries no personal data; the address came from the job.
            assert PROFILE["email"] not in str(done["trigger_event"])


# --- what a hostile definition or event cannot do --------------------------------------------


@pytest.mark.parametrize("body", [
    "{{ (event_payload.s * 300000000)|length }}", "{{ 'a'|center(1000000000) }}", "{{ 'a' * 1000000000 }}",
    "{% for x in event_payload.l %}{% for y in event_payload.l %}{% endfor %}{% endfor %}", "{{ 1/0 }}",
    "{{ 10**5000 }}", "{{ 10.0**400 }}", "{{ '%d' % event_payload.s }}", "{{ '%999999999d' % 1 }}",
    "{{ event_payload.s|replace('a', 'aaaaaaaaaa')|replace('a', 'aaaaaaaaaa')|replace('a', 'aaaaaaaaaa')"
    "|replace('a', 'aaaaaaaaaa')|replace('a', 'aaaaaaaaaa')|replace('a', 'aaaaaaaaaa') }}",
])
async def test_a_template_that_would_run_away_fails_the_step_as_template_error(org: Org, body: str) -> None:
    event_type = f"dos.{abs(hash(body)) % 10**8}"
    agent = await activate(org.admin, trigger=bus_trigger(event_type), steps=[
        {"type": "notification", "id": "n", "channel": "chat", "recipients": ["#ops"], "body": body}])
    await send(org.admin, event_type, {"s": "abcdefghij", "l": list(range(5000))})
    failed = await run_of(org.admin, agent["id"], "failed")
    assert failed["reason"] == "template_error" and step(failed, "n")["error"].startswith("steps[0].body")


async def test_an_event_with_a_huge_integer_still_matches_by_value(org: Org, server: Server) -> None:
    agent = await activate(org.admin, trigger=bus_trigger("ovf.x", filters=[{"field": "a", "operator": "gt", "value": 1}]),
                           steps=[{"type": "wait", "id": "w", "duration": "1s"}])
    raw = '{"event_type": "ovf.x", "source_product": "psa", "payload": {"a": 1' + "0" * 400 + "}}"
    sent = await org.admin.post("/api/events/ingest", content=raw, headers={"Content-Type": "application/json"})
    assert sent.status_code == 202, sent.text
    assert (await run_of(org.admin, agent["id"], "completed"))["trigger_event"]["id"] == sent.json()["id"]


async def test_an_execution_of_a_deleted_agent_cannot_be_retried(org: Org) -> None:
    agent = await activate(org.admin, trigger=bus_trigger("gone.x"), steps=GATED)
    await send(org.admin, "gone.x", {"amount": 1, "client": "X"})
    waiting = await run_of(org.admin, agent["id"], "waiting_approval")
    assert (await org.admin.delete(f"/api/agents/{agent['id']}")).status_code == 204
    cancelled = (await org.admin.get(f"{EXECUTIONS}/{waiting['id']}")).json()
    assert cancelled["status"] == "cancelled"
    assert_error(await org.admin.post(f"{EXECUTIONS}/{waiting['id']}/retry"), 404, "agent_not_found")


async def test_a_decision_with_an_unknown_field_changes_nothing(org: Org) -> None:
    agent = await activate(org.admin, trigger=bus_trigger("strict.x"), steps=GATED)
    await send(org.admin, "strict.x", {"amount": 1, "client": "X"})
    waiting = await run_of(org.admin, agent["id"], "waiting_approval")
    (gate,) = [a for a in (await org.admin.get("/api/approvals", params={"status": "pending"})).json()["approvals"]
               if a["execution_id"] == waiting["id"]]
    refused = await org.admin.post(f"/api/approvals/{gate['id']}/decision", json={"decision": "approved", "x": 1})
    assert_error(refused, 400, "invalid_request")
    assert (await org.admin.get(f"{EXECUTIONS}/{waiting['id']}")).json()["status"] == "waiting_approval"
