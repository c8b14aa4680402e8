"""Outbound webhooks over HTTP: an admin registers an endpoint, a booking or a job changes, and a
real receiver on 127.0.0.1 gets a Standard Webhooks message it verifies with the library.

The receiver is an aiohttp server this module starts; each test uses paths of its own, whose
behaviour the path names (``ok``, ``flaky``: 500 once then 200, ``fail``: always 500, ``gone``:
410, ``redirect``: 302 to an ``ok`` path). The shared server fixture allows 127.0.0.1 (not
``localhost``) and retries twice after 0.2 s, disabling an endpoint after 2 failed deliveries
(tests/conftest.py). Every wait polls with a deadline; nothing asserts on timing.
"""

import asyncio
import json
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import pytest
import standardwebhooks
from aiohttp import web

from errand.outbox.schemas import EVENT_TYPES
from tests.api.execution.support import JOBS, post, restaurant, wait
from tests.conftest import Org, Server, free_port, mint_key, running

HOOKS = "/api/v1/webhooks"
BOOK = "/api/v1/agent/restaurant/book"
ONLY_TABLES = {"allowedProviders": ["sandbox-tables"], "allowVenueSwitch": False}
CUSTOMER = {"name": "Jane Doe", "email": "jane@example.com", "phone": "+15559876543"}
DEADLINE_SECONDS = 30.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    messages: list[Received] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)

    def url(self, mode: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/r/{secrets.token_hex(6)}/{mode}"

    def at(self, url: str) -> list[Received]:
        path = url.split(str(self.port), 1)[1]
        return [m for m in self.messages if m.path == path]

    async def wait_for(self, url: str, count: int = 1) -> list[Received]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_SECONDS
        while len(self.at(url)) < count:
            assert loop.time() < deadline, f"{url} received {len(self.at(url))} of {count}"
            await asyncio.sleep(0.05)
        return self.at(url)


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    found = Receiver(port)

    async def hook(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        found.messages.append(Received(path, {k.lower(): v for k, v in request.headers.items()}, body))
        found.calls[path] = found.calls.get(path, 0) + 1
        mode = path.rsplit("/", 1)[-1]
        if mode == "ok":
            return web.Response(text="thanks " + "x" * 100_000)  # longer than what Errand reads
        if mode == "flaky":
            return web.Response(status=500 if found.calls[path] == 1 else 200, text="boom" if found.calls[path] == 1
                                else "ok")
        if mode == "fail":
            return web.Response(status=500, text="internal error")
        if mode == "gone":
            return web.Response(status=410, text="gone")
        if mode == "redirect":
            raise web.HTTPFound(path.rsplit("/", 1)[0] + "/ok")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield found
    finally:
        await runner.cleanup()


# --- helpers ------------------------------------------------------------------------------------


def booking(day: date, time: str = "19:00", party_size: int = 2) -> dict[str, Any]:
    return {"restaurantName": "Le Bernardin", "city": "New York", "partySize": party_size,
            "datetime": f"{day.isoformat()}T{time}:00", "customer": CUSTOMER}


async def register(org: Org, url: str, events: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    response = await org.admin.post(HOOKS, json={"url": url, "events": events or ["*"], **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def book(org: Org, day: date, time: str = "19:00") -> str:
    response = await org.agent.post(BOOK, json=booking(day, time))
    assert response.status_code == 201, response.text
    return response.json()["transactionId"]


async def deliveries(org: Org, webhook_id: str, **params: Any) -> dict[str, Any]:
    response = await org.admin.get(f"{HOOKS}/{webhook_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def settled(org: Org, webhook_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The endpoint's deliveries once ``count`` of them are no longer pending."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while True:
        found = (await deliveries(org, webhook_id))["deliveries"]
        if len([d for d in found if d["status"] != "pending"]) >= count:
            return found
        assert loop.time() < deadline, found
        await asyncio.sleep(0.1)


def verified(secret: str, message: Received) -> dict[str, Any]:
    """The message's JSON, after the standardwebhooks library verified its signature with ``secret``."""
    return standardwebhooks.Webhook(secret).verify(message.body, message.headers)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


# --- delivery ------------------------------------------------------------------------------------


async def test_a_booking_reaches_the_endpoint_signed_and_verifiable(
    org: Org, receiver: Receiver, day: date
) -> None:
    url = receiver.url("ok")
    hook = await register(org, url, ["transaction.confirmed"], description="bookings")
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) >= 6 + 32
    assert hook["enabled"] is True and hook["events"] == ["transaction.confirmed"]
    txn_id = await book(org, day)

    [message] = await receiver.wait_for(url)
    body = verified(hook["secret"], message)
    assert body["type"] == "transaction.confirmed"
    assert body["data"]["transaction_id"] == txn_id and body["data"]["status"] == "confirmed"
    assert body["timestamp"].endswith("Z")
    assert message.headers["webhook-id"] == f"msg_{body['data']['event_id']}_{hook['id']}"
    assert message.headers["content-type"] == "application/json"
    assert "Jane" not in message.body.decode() and "jane@example.com" not in message.body.decode()
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook("whsec_" + "A" * 43 + "=").verify(message.body, message.headers)

    [delivery] = await settled(org, hook["id"])
    assert delivery["status"] == "succeeded" and delivery["webhookId"] == message.headers["webhook-id"]
    assert delivery["eventType"] == "transaction.confirmed" and delivery["nextAttemptAt"] is None
    [attempt] = delivery["attempts"]
    assert attempt["statusCode"] == 200 and attempt["durationMs"] >= 0 and attempt["error"] is None
    assert attempt["responseExcerpt"].startswith("thanks") and len(attempt["responseExcerpt"]) <= 200

    shown = await org.admin.get(f"{HOOKS}/{hook['id']}")
    assert shown.status_code == 200 and "secret" not in shown.json()
    listed = await org.admin.get(HOOKS)
    assert [h["id"] for h in listed.json()["webhooks"]] == [hook["id"]] and "secret" not in listed.text


async def test_only_endpoints_subscribed_to_the_type_or_star_get_it(org: Org, receiver: Receiver, day: date) -> None:
    star, jobs_only, confirmed = receiver.url("ok"), receiver.url("ok"), receiver.url("ok")
    star_hook = await register(org, star, ["*"])
    jobs_hook = await register(org, jobs_only, ["job.created", "job.completed"])
    confirmed_hook = await register(org, confirmed, ["approval.requested", "transaction.confirmed"])
    await book(org, day)
    await receiver.wait_for(star)
    await receiver.wait_for(confirmed)
    assert (await deliveries(org, jobs_hook["id"]))["deliveries"] == []
    assert receiver.at(jobs_only) == []
    assert verified(star_hook["secret"], receiver.at(star)[0])["type"] == "transaction.confirmed"
    assert verified(confirmed_hook["secret"], receiver.at(confirmed)[0])["type"] == "transaction.confirmed"


async def test_a_refused_booking_sends_nothing(org: Org, receiver: Receiver, day: date) -> None:
    url = receiver.url("ok")
    hook = await register(org, url, ["*"])
    cap = await org.admin.post("/api/v1/policies", json={"name": "cap", "type": "SPENDING_LIMIT",
                                                         "config": {"maxAmountUsd": 100}})
    assert cap.status_code == 201, cap.text
    refused = await org.agent.post(BOOK, json=booking(day, "19:00"))
    assert refused.status_code in (402, 403, 409, 422), refused.text
    assert (await org.admin.delete(f"/api/v1/policies/{cap.json()['id']}")).status_code in (200, 204)
    txn_id = await book(org, day, "20:00")
    [message] = await receiver.wait_for(url)
    assert verified(hook["secret"], message)["data"]["transaction_id"] == txn_id
    [delivery] = await settled(org, hook["id"])
    assert delivery["eventType"] == "transaction.confirmed"


async def test_a_500_is_retried_then_succeeds_with_the_same_webhook_id(
    org: Org, receiver: Receiver, day: date
) -> None:
    url = receiver.url("flaky")
    hook = await register(org, url, ["transaction.confirmed"])
    await book(org, day)
    first, second = await receiver.wait_for(url, 2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert verified(hook["secret"], first) == verified(hook["secret"], second)
    [delivery] = await settled(org, hook["id"])
    assert delivery["status"] == "succeeded" and delivery["attemptCount"] == 2
    assert [(a["number"], a["statusCode"]) for a in delivery["attempts"]] == [(1, 500), (2, 200)]
    assert delivery["attempts"][0]["error"] == "status 500" and delivery["attempts"][0]["responseExcerpt"] == "boom"
    assert (await org.admin.get(f"{HOOKS}/{hook['id']}")).json()["consecutiveFailures"] == 0


async def test_410_disables_the_endpoint_at_once(org: Org, receiver: Receiver, day: date) -> None:
    url = receiver.url("gone")
    hook = await register(org, url, ["*"])
    await book(org, day)
    [delivery] = await settled(org, hook["id"])
    assert delivery["status"] == "failed" and [a["statusCode"] for a in delivery["attempts"]] == [410]
    shown = (await org.admin.get(f"{HOOKS}/{hook['id']}")).json()
    assert shown["enabled"] is False and shown["disabledReason"] == "gone"
    await book(org, day, "20:00")  # a disabled endpoint gets no delivery
    await asyncio.sleep(1.0)
    assert len((await deliveries(org, hook["id"]))["deliveries"]) == 1
    assert len(receiver.at(url)) == 1
    retried = await org.admin.post(f"{HOOKS}/{hook['id']}/deliveries/{delivery['id']}/retry")
    assert error_of(retried, 409)["code"] == "invalid_state"
    enabled = await org.admin.patch(f"{HOOKS}/{hook['id']}", json={"enabled": True})
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    assert enabled.json()["disabledReason"] is None


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(org: Org, receiver: Receiver, day: date) -> None:
    url = receiver.url("redirect")
    hook = await register(org, url, ["*"])
    await book(org, day)
    [delivery] = await settled(org, hook["id"])
    assert delivery["status"] == "failed" and delivery["attemptCount"] == 3
    assert [a["statusCode"] for a in delivery["attempts"]] == [302, 302, 302]
    assert delivery["attempts"][0]["error"] == "redirect (302) not followed"
    assert receiver.at(url.rsplit("/", 1)[0] + "/ok") == []
    assert (await org.admin.get(f"{HOOKS}/{hook['id']}")).json()["consecutiveFailures"] == 1


async def test_an_endpoint_is_disabled_after_consecutive_failed_deliveries(
    org: Org, receiver: Receiver, day: date
) -> None:
    url = receiver.url("fail")
    hook = await register(org, url, ["transaction.confirmed"])
    await book(org, day, "19:00")
    await settled(org, hook["id"], 1)
    shown = (await org.admin.get(f"{HOOKS}/{hook['id']}")).json()
    assert (shown["enabled"], shown["consecutiveFailures"]) == (True, 1)
    await book(org, day, "20:00")
    found = await settled(org, hook["id"], 2)
    assert [d["status"] for d in found] == ["failed", "failed"]
    assert all([a["statusCode"] for a in d["attempts"]] == [500, 500, 500] for d in found)
    shown = (await org.admin.get(f"{HOOKS}/{hook['id']}")).json()
    assert (shown["enabled"], shown["disabledReason"], shown["consecutiveFailures"]) == (False, "failing", 2)


async def test_a_rotated_secret_signs_beside_the_old_one_for_24_hours(
    org: Org, receiver: Receiver, day: date
) -> None:
    url = receiver.url("ok")
    hook = await register(org, url, ["*"])
    rotated = await org.admin.post(f"{HOOKS}/{hook['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != hook["secret"]
    assert rotated.json()["previousSecretExpiresAt"] > rotated.json()["updatedAt"][:10]
    await book(org, day)
    [message] = await receiver.wait_for(url)
    assert len(message.headers["webhook-signature"].split(" ")) == 2
    assert verified(new_secret, message) == verified(hook["secret"], message)
    shown = await org.admin.get(f"{HOOKS}/{hook['id']}")
    assert "secret" not in shown.json() and new_secret not in shown.text


async def test_a_job_reports_its_deliveries_and_the_deliveries_page_and_redeliver(
    org: Org, receiver: Receiver, day: date
) -> None:
    url = receiver.url("ok")
    hook = await register(org, url, ["job.created", "job.paused_payment"])
    job_id = await post(org.agent, restaurant(day, consent=ONLY_TABLES))
    assert (await wait(org.agent, job_id))["status"] == "paused_payment"
    await receiver.wait_for(url, 2)
    shown = await org.agent.get(f"{JOBS}/{job_id}")
    assert shown.status_code == 200 and shown.json()["webhookDeliveries"] == 2
    types = {verified(hook["secret"], m)["type"] for m in receiver.at(url)}
    assert types == {"job.created", "job.paused_payment"}

    found = await settled(org, hook["id"], 2)
    assert all(d["jobId"] == job_id for d in found)
    first = await deliveries(org, hook["id"], limit=1)
    assert first["count"] == 1 and first["nextCursor"]
    second = await deliveries(org, hook["id"], limit=1, cursor=first["nextCursor"])
    assert second["count"] == 1 and second["nextCursor"] is None
    assert [first["deliveries"][0]["id"], second["deliveries"][0]["id"]] == [d["id"] for d in found]
    assert found[0]["createdAt"] >= found[1]["createdAt"]
    assert (await deliveries(org, hook["id"], status="failed"))["deliveries"] == []
    error_of(await org.admin.get(f"{HOOKS}/{hook['id']}/deliveries", params={"cursor": "bogus!"}), 400)
    error_of(await org.admin.get(f"{HOOKS}/{hook['id']}/deliveries", params={"status": "nope"}), 400)

    target = found[-1]
    again = await org.admin.post(f"{HOOKS}/{hook['id']}/deliveries/{target['id']}/retry")
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "pending"
    messages = await receiver.wait_for(url, 3)
    assert messages[-1].headers["webhook-id"] == target["webhookId"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while True:
        current = next(d for d in (await deliveries(org, hook["id"]))["deliveries"] if d["id"] == target["id"])
        if current["status"] == "succeeded" and current["attemptCount"] == 2:
            break
        assert loop.time() < deadline, current
        await asyncio.sleep(0.1)
    assert [a["manual"] for a in current["attempts"]] == [False, True]
    missing = await org.admin.post(f"{HOOKS}/{hook['id']}/deliveries/whd_nope/retry")
    assert error_of(missing, 404)["code"] == "webhook_delivery_not_found"

    other_job = await post(org.agent, restaurant(day, time="20:30", consent=ONLY_TABLES))
    await org.admin.delete(f"{HOOKS}/{hook['id']}")
    await wait(org.agent, other_job)
    assert (await org.agent.get(f"{JOBS}/{other_job}")).json()["webhookDeliveries"] in (0, 1, 2)


async def test_a_job_without_endpoints_shows_no_deliveries(org: Org, day: date) -> None:
    job_id = await post(org.agent, restaurant(day, consent=ONLY_TABLES))
    shown = await org.agent.get(f"{JOBS}/{job_id}")
    assert shown.status_code == 200 and shown.json()["webhookDeliveries"] == 0


# --- the egress guard ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://10.0.0.1/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/", "ftp://example.com/",
    "http://user:pass@example.com/", "http://localhost:9/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/",
    "http://192.168.0.10:8080/x", "https://no-such-host.invalid/", "file:///etc/passwd",
])
async def test_a_private_or_malformed_url_is_refused_at_registration(org: Org, url: str) -> None:
    refused = await org.admin.post(HOOKS, json={"url": url, "events": ["*"]})
    error = error_of(refused, 400)
    assert error["code"] == "webhook_url_refused" and error["details"][0]["path"] == "url"
    assert url not in error["message"]  # the answer never echoes the URL (it may hold a token)
    assert (await org.admin.get(HOOKS)).json()["webhooks"] == []


async def test_a_url_refused_at_send_time_is_never_called(
    org: Org, server: Server, receiver: Receiver, day: date
) -> None:
    """Registered where ``localhost`` was allowed; sent by a server where it is not (the host
    list changed, or the name now resolves to loopback): every attempt is refused, nothing sent."""
    url = receiver.url("ok", host="localhost")
    lenient = server.settings.model_copy(update={"port": free_port(), "webhook_allowed_hosts": "127.0.0.1,localhost"})
    async with running(lenient) as base_url, httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {org.admin_key}"}, timeout=30) as admin:
        created = await admin.post(HOOKS, json={"url": url, "events": ["transaction.confirmed"]})
        assert created.status_code == 201, created.text
    hook = created.json()
    await book(org, day)
    [delivery] = await settled(org, hook["id"])
    assert delivery["status"] == "failed" and delivery["attemptCount"] == 3
    for attempt in delivery["attempts"]:
        assert attempt["statusCode"] is None
        assert attempt["error"] == "refused: url resolves to a private, loopback, link-local or reserved address"
    assert receiver.at(url) == []
    patched = await org.admin.patch(f"{HOOKS}/{hook['id']}", json={"url": url})
    assert error_of(patched, 400)["code"] == "webhook_url_refused"


# --- who may, and what a body may hold -----------------------------------------------------------


async def test_an_agent_key_may_not_manage_webhooks(org: Org, receiver: Receiver) -> None:
    hook = await register(org, receiver.url("ok"))
    for method, path, body in [("POST", HOOKS, {"url": receiver.url("ok"), "events": ["*"]}), ("GET", HOOKS, None),
                               ("GET", f"{HOOKS}/{hook['id']}", None), ("PATCH", f"{HOOKS}/{hook['id']}", {}),
                               ("DELETE", f"{HOOKS}/{hook['id']}", None),
                               ("POST", f"{HOOKS}/{hook['id']}/rotate-secret", None),
                               ("GET", f"{HOOKS}/{hook['id']}/deliveries", None)]:
        response = await org.agent.request(method, path, json=body)
        assert error_of(response, 403)["code"] == "forbidden", (method, path)
    assert (await org.admin.get(f"{HOOKS}/{hook['id']}")).status_code == 200


async def test_another_organizations_or_modes_endpoint_is_not_found(
    org: Org, server: Server, receiver: Receiver
) -> None:
    hook = await register(org, receiver.url("ok"))
    other_org = f"Other {secrets.token_hex(4)}"
    other_admin = await mint_key(server, other_org, role="admin")
    test_admin = await mint_key(server, org.name, role="admin", env="test")
    for key in (other_admin, test_admin):
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                     headers={"Authorization": f"Bearer {key}"}) as stranger:
            assert (await stranger.get(HOOKS)).json()["webhooks"] == []
            for method, path, body in [("GET", f"{HOOKS}/{hook['id']}", None),
                                       ("PATCH", f"{HOOKS}/{hook['id']}", {"enabled": False}),
                                       ("DELETE", f"{HOOKS}/{hook['id']}", None),
                                       ("POST", f"{HOOKS}/{hook['id']}/rotate-secret", None),
                                       ("GET", f"{HOOKS}/{hook['id']}/deliveries", None),
                                       ("POST", f"{HOOKS}/{hook['id']}/deliveries/whd_x/retry", None)]:
                response = await stranger.request(method, path, json=body)
                assert error_of(response, 404)["code"] == "webhook_not_found", (method, path)
    shown = (await org.admin.get(f"{HOOKS}/{hook['id']}")).json()
    assert shown["enabled"] is True and shown == {k: v for k, v in hook.items() if k != "secret"}


@pytest.mark.parametrize("body, path", [
    ({"url": "http://127.0.0.1/\u0000", "events": ["*"]}, "url"),
    ({"url": "http://127.0.0.1/" + "a" * 3000, "events": ["*"]}, "url"),
    ({"url": "http://127.0.0.1/", "events": "job.completed"}, "events"),
    ({"url": "http://127.0.0.1/", "events": []}, "events"),
    ({"url": "http://127.0.0.1/", "events": ["job.completed", "job.completed"]}, "events.1"),
    ({"url": "http://127.0.0.1/", "events": ["job.completed", "job.exploded"]}, "events.1"),
    ({"url": "http://127.0.0.1/", "events": [42]}, "events.0"),
    ({"url": "http://127.0.0.1/", "events": ["*"], "description": "a\u0000b"}, "description"),
    ({"url": "http://127.0.0.1/", "events": ["*"], "description": "d" * 501}, "description"),
    ({"url": "http://127.0.0.1/", "events": ["*"], "secret": "whsec_mine"}, "secret"),
    ({"url": 7, "events": ["*"]}, "url"),
    ({"events": ["*"]}, "url"),
])
async def test_a_hostile_body_is_refused_naming_the_field(org: Org, body: dict[str, Any], path: str) -> None:
    error = error_of(await org.admin.post(HOOKS, json=body), 400)
    assert path in [d["path"] for d in error["details"]], error
    assert (await org.admin.get(HOOKS)).json()["webhooks"] == []


async def test_a_body_that_is_not_an_object_or_not_json_is_refused(org: Org) -> None:
    for raw in (b"[]", b'"http://127.0.0.1/"', b"{", b'{"url": "http://127.0.0.1/", "url": "x", "events": ["*"]}'):
        response = await org.admin.post(HOOKS, content=raw, headers={"Content-Type": "application/json"})
        assert error_of(response, 400)["code"] in ("invalid_request", "invalid_json"), raw


async def test_every_event_type_may_be_subscribed_and_an_endpoint_changed_and_deleted(
    org: Org, receiver: Receiver
) -> None:
    hook = await register(org, receiver.url("ok"), list(EVENT_TYPES), description="all, by name")
    assert hook["events"] == list(EVENT_TYPES)
    new_url = receiver.url("ok")
    patched = await org.admin.patch(f"{HOOKS}/{hook['id']}", json={"url": new_url, "events": ["job.failed"],
                                                                   "description": None, "enabled": False})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["url"], body["events"], body["description"], body["enabled"]) == (new_url, ["job.failed"], None,
                                                                                   False)
    error_of(await org.admin.patch(f"{HOOKS}/{hook['id']}", json={"events": ["nope"]}), 400)
    error_of(await org.admin.patch(f"{HOOKS}/{hook['id']}", json={"enabled": "yes"}), 400)
    assert (await org.admin.delete(f"{HOOKS}/{hook['id']}")).status_code == 204
    assert error_of(await org.admin.get(f"{HOOKS}/{hook['id']}"), 404)["code"] == "webhook_not_found"
    assert error_of(await org.admin.delete(f"{HOOKS}/{hook['id']}"), 404)["code"] == "webhook_not_found"


async def test_the_endpoint_list_pages(org: Org, receiver: Receiver) -> None:
    made = [await register(org, receiver.url("ok")) for _ in range(3)]
    first = (await org.admin.get(HOOKS, params={"limit": 2})).json()
    assert first["count"] == 2 and first["nextCursor"]
    second = (await org.admin.get(HOOKS, params={"limit": 2, "cursor": first["nextCursor"]})).json()
    assert second["count"] == 1 and second["nextCursor"] is None
    assert [h["id"] for h in first["webhooks"] + second["webhooks"]] == [h["id"] for h in reversed(made)]
    assert json.dumps(first).count("whsec_") == 0
    error_of(await org.admin.get(HOOKS, params={"limit": "many"}), 400)


async def test_a_live_event_reaches_only_the_live_endpoints(
    org: Org, server: Server, receiver: Receiver, day: date
) -> None:
    live_url, test_url = receiver.url("ok"), receiver.url("ok")
    live = await register(org, live_url, ["*"])
    test_admin = await mint_key(server, org.name, role="admin", env="test")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {test_admin}"}) as test_client:
        created = await test_client.post(HOOKS, json={"url": test_url, "events": ["*"]})
        assert created.status_code == 201, created.text
        test_hook = created.json()
        await book(org, day)
        await receiver.wait_for(live_url)
        await settled(org, live["id"])
        listed = await test_client.get(f"{HOOKS}/{test_hook['id']}/deliveries")
    assert listed.status_code == 200 and listed.json()["deliveries"] == []
    assert receiver.at(test_url) == []
