"""Sending one delivery: claim it, sign it, send it through the egress guard, record the attempt.

An attempt is three steps, none holding a transaction across the network:

1. **Claim** (one unit of work): a conditional UPDATE takes the delivery only if it is pending,
   due (``next_attempt_at`` ≤ now) and not claimed by a live lease (``claimed_until``); the
   lease is :data:`LEASE_SECONDS`. Two workers — a task and the sweep, or two processes — never
   send the same attempt at once: the one whose UPDATE changed no row stops. A worker that dies
   after claiming leaves a lease that lapses, and the sweep takes the delivery again (crash-safe:
   the receiver may then see the same ``webhook-id`` twice, which it deduplicates).
2. **Send**: :func:`errand.kit.egress.resolve` checks the URL again (a host that now resolves to
   a private address is refused: DNS rebinding) and the request connects to the checked
   address; httpx with ``follow_redirects=False`` (a 3xx is a failure), a 10 s timeout, the
   response read up to 64 KiB and only a 200-character excerpt kept.
3. **Record** (one unit of work): the attempt (status code, duration in ms, a short error that
   never quotes the URL or a secret), and the delivery's outcome: 2xx succeeded; 410 failed and
   the endpoint disabled at once (``gone``); otherwise the next retry on the schedule
   (``Settings.webhook_retry_delays``: the Standard Webhooks one, 5 s … 10 h), or, after the last,
   failed — and the endpoint disabled (``failing``) once ``webhook_disable_after_failures``
   deliveries in a row failed. A manual redelivery is one attempt, never retried.

Messages are signed by :mod:`errand.kit.webhooks` (the ``standardwebhooks`` library): one
``v1,`` signature per live secret, space-separated, during a rotation's overlap.
"""

import json
import time
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit import clock, egress, webhooks
from errand.kit.core import Core
from errand.kit.ids import new_id
from errand.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from errand.webhooks import service
from errand.webhooks.schemas import EXCERPT_CHARS, MAX_RESPONSE_BYTES, TIMEOUT_SECONDS, Outgoing, message_body

# How long a claimed delivery is its sender's: the send's timeout and then some.
LEASE_SECONDS = 60
USER_AGENT = "Errand-Webhooks/1"
# A host with several addresses (IPv6 and IPv4): the next checked one is tried when one refuses.
MAX_ADDRESSES = 3


def _claim(now: datetime) -> ColumnElement[bool]:
    return (WebhookDelivery.status == "pending") & (WebhookDelivery.next_attempt_at <= now) & or_(
        WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now)


def sign(secrets: list[str], msg_id: str, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of ``body`` signed with every one of ``secrets``."""
    at = clock.now().replace(microsecond=0)
    headers = webhooks.sign_headers(secrets[0], msg_id, body, at)
    if len(secrets) > 1:
        headers["webhook-signature"] = " ".join(webhooks.signature(s, msg_id, at, body) for s in secrets)
    return headers


async def _take(core: Core, delivery_id: str) -> tuple[Outgoing, bool, int] | None:
    """Claim ``delivery_id`` if due; its message, whether the attempt is manual and its number.
    None when it is not due, taken by another worker, gone, or its endpoint is disabled (then it fails)."""
    now = clock.now()
    async with core.db.unit_of_work() as session:
        claimed = await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, _claim(now))
                                        .values(claimed_until=now + timedelta(seconds=LEASE_SECONDS))
                                        .execution_options(synchronize_session=False))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        delivery = (await session.execute(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id))).scalar_one()
        endpoint = (await session.execute(select(WebhookEndpoint).where(WebhookEndpoint.id == delivery.endpoint_id))
                    ).scalar_one()
        if not endpoint.enabled:
            delivery.status, delivery.completed_at, delivery.claimed_until = "failed", now, None
            delivery.next_attempt_at = None
            return None
        body = json.dumps(message_body(delivery.event_type, clock.iso(delivery.occurred_at) or "", delivery.payload),
                          separators=(",", ":")).encode()
        headers = {**sign(service.signing_secrets(endpoint), delivery.webhook_id, body),
                   "content-type": "application/json", "user-agent": USER_AGENT}
        return Outgoing(url=endpoint.url, body=body, headers=headers), delivery.manual, delivery.attempt_count + 1


def _excerpt(raw: bytes) -> str | None:
    text = raw[:EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    text = "".join(ch if ch.isprintable() else " " for ch in text)[:EXCERPT_CHARS].strip()
    return text or None


async def _connect(client: httpx.AsyncClient, target: egress.Target, message: Outgoing) -> httpx.Response:
    """Send to the target's checked addresses in turn (at most :data:`MAX_ADDRESSES`) until one
    accepts the connection; raises the last connection error."""
    candidates = target.addresses[:MAX_ADDRESSES] or (target.address,)
    for i, address in enumerate(candidates):
        try:
            return await client.send(egress.request(client, target.at(address) if target.addresses else target,
                                                    content=message.body, headers=message.headers), stream=True)
        except httpx.ConnectError:
            if i == len(candidates) - 1:
                raise
    raise AssertionError("unreachable")


async def send(core: Core, message: Outgoing) -> tuple[int | None, str | None, str | None]:
    """POST ``message`` once, through the egress guard; (status code, error, response excerpt).
    Never raises for what the receiver or the network did."""
    try:
        target = await egress.resolve(message.url, core.settings.webhook_allowed_host_set)
    except egress.EgressRefused as exc:
        return None, f"refused: url {exc}", None
    try:
        async with httpx.AsyncClient(follow_redirects=False, timeout=TIMEOUT_SECONDS, trust_env=False) as client:
            response = await _connect(client, target, message)
            try:
                raw = b""
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) >= MAX_RESPONSE_BYTES:
                        break
            finally:
                await response.aclose()
    except httpx.TimeoutException:
        return None, f"timeout after {TIMEOUT_SECONDS:.0f} s", None
    except httpx.HTTPError as exc:
        return None, f"connection failed ({type(exc).__name__})", None
    code = response.status_code
    if 200 <= code < 300:
        return code, None, _excerpt(raw)
    if 300 <= code < 400:
        return code, f"redirect ({code}) not followed", _excerpt(raw)
    return code, f"status {code}", _excerpt(raw)


async def deliver(core: Core, delivery_id: str) -> str:
    """One attempt at ``delivery_id`` if it is due and free; returns what happened: ``not_due``
    (nothing sent), ``succeeded``, ``retrying`` or ``failed``."""
    taken = await _take(core, delivery_id)
    if taken is None:
        return "not_due"
    message, manual, number = taken
    started = time.perf_counter()
    code, error, excerpt = await send(core, message)
    duration_ms = int((time.perf_counter() - started) * 1000)
    return await _record(core, delivery_id, number=number, manual=manual, code=code, error=error,
                         excerpt=excerpt, duration_ms=duration_ms)


async def _record(core: Core, delivery_id: str, *, number: int, manual: bool, code: int | None, error: str | None,
                  excerpt: str | None, duration_ms: int) -> str:
    now = clock.now()
    delays = core.settings.webhook_retry_delays
    async with core.db.unit_of_work() as session:
        delivery = (await session.execute(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                                          .with_for_update())).scalar_one_or_none()
        if delivery is None:  # its endpoint was deleted meanwhile
            return "failed"
        endpoint = (await session.execute(select(WebhookEndpoint).where(WebhookEndpoint.id == delivery.endpoint_id)
                                          .with_for_update())).scalar_one()
        # Automatic attempts made, this one included: where the retry schedule stands.
        automatic = number - 1 - await _manual_count(session, delivery.id) + (0 if manual else 1)
        session.add(WebhookAttempt(id=new_id("wha"), delivery_id=delivery.id, number=number, status_code=code,
                                   duration_ms=duration_ms, error=error, response_excerpt=excerpt, manual=manual,
                                   attempted_at=now))
        delivery.attempt_count, delivery.claimed_until, delivery.manual = number, None, False
        if error is None:
            outcome = "succeeded"
            endpoint.consecutive_failures = 0
        elif code == 410:
            outcome = "failed"
            endpoint.enabled, endpoint.disabled_reason = False, "gone"
        elif not manual and automatic <= len(delays):
            outcome = "retrying"
            delivery.next_attempt_at = now + timedelta(seconds=delays[automatic - 1])
        else:
            outcome = "failed"
            if not manual:
                endpoint.consecutive_failures += 1
                if endpoint.consecutive_failures >= core.settings.webhook_disable_after_failures:
                    endpoint.enabled, endpoint.disabled_reason = False, "failing"
        if outcome != "retrying":
            delivery.status, delivery.completed_at, delivery.next_attempt_at = outcome, now, None
        delivery.updated_at = now
    return outcome


async def _manual_count(session: AsyncSession, delivery_id: str) -> int:
    result = await session.execute(
        select(func.count()).select_from(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id,
                                                                WebhookAttempt.manual.is_(True)))
    return int(result.scalar_one())


async def due(core: Core, limit: int = 100) -> list[str]:
    """Ids of pending deliveries due now and not under a live lease (a read: an idle sweep writes nothing)."""
    now = clock.now()
    async with core.db.unit_of_work(read_only=True) as session:
        rows = await session.execute(select(WebhookDelivery.id).where(_claim(now))
                                     .order_by(WebhookDelivery.next_attempt_at).limit(limit))
        return [row[0] for row in rows]
