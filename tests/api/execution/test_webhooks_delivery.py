"""The delivery claim: two workers never send the same attempt, and a lease a crashed worker left
lapses so the delivery is sent after all.

The endpoint is registered over HTTP on the shared server; the delivery row is written through
the test's own database connection (as the outbox consumer writes it), and the send is called
as the task calls it (:func:`errand.webhooks.tasks.deliver`), beside the server's own sweep,
which competes for the same rows: that is the point.
"""

import asyncio
import secrets
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import standardwebhooks
from sqlalchemy import select, update

from errand.kit import clock
from errand.kit.ids import new_id
from errand.models import Organization, WebhookAttempt, WebhookDelivery
from errand.webhooks import tasks as webhook_tasks
from tests.api.execution.test_webhooks import Receiver, receiver, register, settled  # noqa: F401 (fixture)
from tests.conftest import Org, Server


async def pending_delivery(server: Server, org: Org, endpoint_id: str, **columns: Any) -> str:
    async with server.db.unit_of_work() as session:
        org_id = (await session.execute(select(Organization.id).where(Organization.name == org.name))).scalar_one()
        event_id = secrets.randbelow(2**31 - 10_000_000) + 10_000_000  # no outbox event has such an id
        delivery = WebhookDelivery(
            id=new_id("whd"), endpoint_id=endpoint_id, organization_id=org_id, env="live", event_id=event_id,
            event_type="job.completed", job_id=None, webhook_id=f"msg_{event_id}_{endpoint_id}",
            payload={"job_id": "job_x", "status": "completed", "event_id": event_id}, occurred_at=clock.now(),
            status="pending", attempt_count=0, manual=False, **{"next_attempt_at": clock.now(), **columns})
        session.add(delivery)
    return delivery.id


async def attempts(server: Server, delivery_id: str) -> list[WebhookAttempt]:
    async with server.db.unit_of_work(read_only=True) as session:
        return list((await session.execute(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
                                           )).scalars())


async def test_concurrent_workers_send_one_attempt(org: Org, server: Server, receiver: Receiver) -> None:
    url = receiver.url("ok")
    hook = await register(org, url, ["job.completed"])
    delivery_id = await pending_delivery(server, org, hook["id"])
    core = SimpleNamespace(db=server.db, settings=server.settings)
    outcomes = await asyncio.gather(*(webhook_tasks.deliver(core, delivery_id=delivery_id) for _ in range(4)))
    [delivery] = await settled(org, hook["id"])
    assert delivery["status"] == "succeeded" and delivery["attemptCount"] == 1
    assert outcomes.count("succeeded") <= 1 and set(outcomes) <= {"succeeded", "not_due"}
    assert len(await attempts(server, delivery_id)) == 1
    [message] = receiver.at(url)
    body = standardwebhooks.Webhook(hook["secret"]).verify(message.body, message.headers)
    assert body["type"] == "job.completed" and body["data"]["job_id"] == "job_x"
    assert await webhook_tasks.deliver(core, delivery_id=delivery_id) == "not_due"  # finished: never again


async def test_a_lease_left_by_a_crashed_worker_lapses_and_the_sweep_sends(
    org: Org, server: Server, receiver: Receiver
) -> None:
    url = receiver.url("ok")
    hook = await register(org, url, ["job.completed"])
    delivery_id = await pending_delivery(server, org, hook["id"], claimed_until=clock.now() + timedelta(hours=1))
    core = SimpleNamespace(db=server.db, settings=server.settings)
    assert await webhook_tasks.deliver(core, delivery_id=delivery_id) == "not_due"  # another worker holds it
    await asyncio.sleep(1.5)  # sweeps come and go: the live lease keeps them off
    assert receiver.at(url) == [] and await attempts(server, delivery_id) == []
    async with server.db.unit_of_work() as session:  # the worker died: its lease runs out
        await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                              .values(claimed_until=clock.now() - timedelta(seconds=1)))
    await receiver.wait_for(url)  # the server's own sweep takes it
    [delivery] = await settled(org, hook["id"])
    assert delivery["status"] == "succeeded" and len(delivery["attempts"]) == 1


async def test_a_delivery_not_yet_due_is_not_sent(org: Org, server: Server, receiver: Receiver) -> None:
    url = receiver.url("ok")
    hook = await register(org, url, ["job.completed"])
    delivery_id = await pending_delivery(server, org, hook["id"], next_attempt_at=clock.now() + timedelta(hours=1))
    core = SimpleNamespace(db=server.db, settings=server.settings)
    assert await webhook_tasks.deliver(core, delivery_id=delivery_id) == "not_due"
    [delivery] = (await org.admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["deliveries"]
    assert delivery["status"] == "pending" and delivery["attempts"] == [] and delivery["nextAttemptAt"]
    retried = await org.admin.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery_id}/retry")
    assert retried.status_code == 409 and retried.json()["error"]["code"] == "invalid_state"
    assert receiver.at(url) == []
