"""Outbound webhooks: the endpoints an organization registers, the deliveries of Errand's own
events to them, and what a job's GET counts (issue 14, "Outbound webhooks"; docs/webhooks.md).

Every function here takes a ``session`` and never commits (the edge does). Every read and write
is scoped to the caller's organization and mode (its key's ``env``): another organization's or
mode's endpoint is not found, exactly as a missing one is. Managing endpoints needs an admin key.

Secrets are ``whsec_`` and the base64 of 32 random bytes (Standard Webhooks), stored encrypted
(:class:`errand.kit.crypto.EncryptedJSON`) and shown only in the answer that made them. A
rotation keeps the previous secret signing for :data:`ROTATION_OVERLAP_HOURS` hours, so a
receiver verifying with either accepts every delivery meanwhile (several ``v1,`` signatures).

:class:`WebhookConsumer` is the outbox's consumer (:mod:`errand.outbox.consumers`): for each
event, one delivery per enabled endpoint of its organization and mode subscribed to its type
(or ``*``), written in the dispatcher's transaction, its send enqueued after commit.
"""

import base64
import secrets as random
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.identity.schemas import Principal
from errand.identity.service import require_admin
from errand.kit import clock, egress, inputs, pagination
from errand.kit.errors import InvalidRequest, InvalidState
from errand.kit.ids import new_id
from errand.kit.tasks import enqueue
from errand.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, get_owned
from errand.outbox.schemas import Event
from errand.webhooks.errors import WebhookDeliveryNotFound, WebhookNotFound, WebhookUrlRefused
from errand.webhooks.schemas import (
    ALL_EVENTS, DELIVERY_STATUSES, ROTATION_OVERLAP_HOURS, SUBSCRIBABLE, AttemptView, DeliveryView, EndpointView,
    WebhookCreate, WebhookUpdate,
)

DELIVER = "errand.webhooks.deliver"
MANAGING = "Managing webhooks"
SECRET_BYTES = 32

__all__ = [
    "DELIVER", "WebhookConsumer", "count_for_job", "create_endpoint", "delete_endpoint", "get_endpoint",
    "list_deliveries", "list_endpoints", "new_secret", "redeliver", "rotate_secret", "update_endpoint",
    "validate_create", "validate_update",
]


# --- input -------------------------------------------------------------------------------------


def _events(events: list[str] | None, found: list[dict[str, str]]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(events or ()):
        if name not in SUBSCRIBABLE:
            found.append({"path": f"events.{i}", "message": "not one of Errand's event types (or *)"})
        elif name in seen:
            found.append({"path": f"events.{i}", "message": "listed twice"})
        seen.add(name)


def _validate(model: type[WebhookCreate] | type[WebhookUpdate], body: Any) -> Any:
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.", details=[{"path": "body", "message": "expected an object"}])
    try:
        data = model.model_validate(body)
    except ValidationError as exc:
        found = inputs.issues(exc)
        raise InvalidRequest(f"The webhook is invalid: {inputs.summarize(found)}.", details=found) from None
    found: list[dict[str, str]] = []
    _events(data.events, found)
    if found:
        raise InvalidRequest(f"The webhook is invalid: {inputs.summarize(found)}.", details=found)
    return data


def validate_create(body: Any) -> WebhookCreate:
    """A registration's body: ``url`` (≤ 2048 characters), ``events`` (1 to all of Errand's event
    types, each once, or ``*``), ``description`` (≤ 500). Raises InvalidRequest with one
    ``{path, message}`` per problem (``events.2`` for the third event)."""
    return _validate(WebhookCreate, body)


def validate_update(body: Any) -> WebhookUpdate:
    """A PATCH body: any of ``url``, ``events``, ``description``, ``enabled``; raises as :func:`validate_create`."""
    return _validate(WebhookUpdate, body)


async def _checked_url(url: str, allowed_hosts: frozenset[str]) -> str:
    try:
        await egress.resolve(url, allowed_hosts)
    except egress.EgressRefused as exc:
        raise WebhookUrlRefused(f"url: {exc}.", details=[{"path": "url", "message": str(exc)}]) from None
    return url


# --- endpoints ---------------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """The secrets a delivery to ``endpoint`` is signed with now: the current one, and the
    previous one while its overlap lasts."""
    stored = endpoint.secrets or {}
    found = [stored["current"]]
    until = stored.get("previous_until")
    if stored.get("previous") and until and clock.as_utc(datetime.fromisoformat(until)) > clock.now():
        found.append(stored["previous"])
    return found


def _previous_until(endpoint: WebhookEndpoint) -> Any:
    until = (endpoint.secrets or {}).get("previous_until")
    if not until:
        return None
    at = clock.as_utc(datetime.fromisoformat(until))
    return at if at > clock.now() else None


def _view(endpoint: WebhookEndpoint, secret: str | None = None) -> EndpointView:
    return EndpointView(
        id=endpoint.id, url=endpoint.url, events=list(endpoint.events), description=endpoint.description,
        enabled=endpoint.enabled, disabled_reason=endpoint.disabled_reason,
        consecutive_failures=endpoint.consecutive_failures, previous_secret_expires_at=_previous_until(endpoint),
        created_at=endpoint.created_at, updated_at=endpoint.updated_at, secret=secret)


async def _get(session: AsyncSession, principal: Principal, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint:
    require_admin(principal, MANAGING)
    return await get_owned(session, WebhookEndpoint, endpoint_id, WebhookNotFound(f"Webhook {endpoint_id} not found."),
                           lock=lock, organization_id=principal.organization_id, env=principal.env)


async def create_endpoint(session: AsyncSession, principal: Principal, data: WebhookCreate,
                          allowed_hosts: frozenset[str]) -> EndpointView:
    """Register an endpoint of the caller's organization and mode; the answer carries its secret
    (the only time it is shown). Raises Forbidden (not admin), WebhookUrlRefused (the URL,
    checked by :func:`errand.kit.egress.resolve` against ``allowed_hosts``)."""
    require_admin(principal, MANAGING)
    url = await _checked_url(data.url, allowed_hosts)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=new_id("whk"), organization_id=principal.organization_id, env=principal.env, url=url,
        description=data.description, events=list(data.events), enabled=True, consecutive_failures=0,
        secrets={"current": secret, "previous": None, "previous_until": None})
    session.add(endpoint)
    await session.flush()
    return _view(endpoint, secret)


def _endpoint_key(key: list[Any]) -> tuple[Any, str]:
    created, endpoint_id = key
    return clock.as_utc(datetime.fromisoformat(created)), str(endpoint_id)


async def list_endpoints(session: AsyncSession, principal: Principal, *, limit: int = 50,
                         cursor: str | None = None) -> tuple[list[EndpointView], str | None]:
    """The caller's organization's endpoints in its mode, newest first, ``limit`` (clamped to
    1–200) a page; the next page's cursor or None. Raises Forbidden, InvalidRequest (cursor)."""
    require_admin(principal, MANAGING)
    limit = max(1, min(limit, 200))
    query = select(WebhookEndpoint).where(WebhookEndpoint.organization_id == principal.organization_id,
                                          WebhookEndpoint.env == principal.env)
    if cursor:
        created, last_id = pagination.decode(cursor, _endpoint_key)
        query = query.where((WebhookEndpoint.created_at < created)
                            | ((WebhookEndpoint.created_at == created) & (WebhookEndpoint.id < last_id)))
    rows = list((await session.execute(query.order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
                                       .limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = pagination.encode([clock.iso(rows[-1].created_at), rows[-1].id]) if more and rows else None
    return [_view(row) for row in rows], next_cursor


async def get_endpoint(session: AsyncSession, principal: Principal, endpoint_id: str) -> EndpointView:
    """One endpoint (never its secret). Raises Forbidden, WebhookNotFound (another organization's or mode's too)."""
    return _view(await _get(session, principal, endpoint_id))


async def update_endpoint(session: AsyncSession, principal: Principal, endpoint_id: str, data: WebhookUpdate,
                          allowed_hosts: frozenset[str]) -> EndpointView:
    """Change what ``data`` sets; ``enabled: true`` re-enables a disabled endpoint and clears its
    failure count. Raises as :func:`get_endpoint` and :func:`create_endpoint`."""
    endpoint = await _get(session, principal, endpoint_id, lock=True)
    if data.url is not None:
        endpoint.url = await _checked_url(data.url, allowed_hosts)
    if data.events is not None:
        endpoint.events = list(data.events)
    if "description" in data.model_fields_set:
        endpoint.description = data.description
    if data.enabled is not None:
        endpoint.enabled = data.enabled
        if data.enabled:
            endpoint.disabled_reason, endpoint.consecutive_failures = None, 0
    endpoint.updated_at = clock.now()
    await session.flush()
    return _view(endpoint)


async def delete_endpoint(session: AsyncSession, principal: Principal, endpoint_id: str) -> None:
    """Delete the endpoint with its deliveries (a delivery under way finds nothing to record).
    Raises as :func:`get_endpoint`."""
    endpoint = await _get(session, principal, endpoint_id, lock=True)
    delivery_ids = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    await session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)))
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(session: AsyncSession, principal: Principal, endpoint_id: str) -> EndpointView:
    """A new signing secret, returned once; the current one keeps signing (beside the new one)
    for :data:`ROTATION_OVERLAP_HOURS` hours. Raises as :func:`get_endpoint`."""
    endpoint = await _get(session, principal, endpoint_id, lock=True)
    secret = new_secret()
    endpoint.secrets = {"current": secret, "previous": endpoint.secrets["current"],
                        "previous_until": clock.iso(clock.now() + timedelta(hours=ROTATION_OVERLAP_HOURS))}
    endpoint.updated_at = clock.now()
    await session.flush()
    return _view(endpoint, secret)


# --- deliveries --------------------------------------------------------------------------------


def _delivery_view(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryView:
    return DeliveryView(
        id=row.id, endpoint_id=row.endpoint_id, webhook_id=row.webhook_id, event_id=row.event_id,
        event_type=row.event_type, job_id=row.job_id, status=row.status, attempt_count=row.attempt_count,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None, created_at=row.created_at,
        completed_at=row.completed_at,
        attempts=[AttemptView(number=a.number, status_code=a.status_code, duration_ms=a.duration_ms, error=a.error,
                              response_excerpt=a.response_excerpt, manual=a.manual, attempted_at=a.attempted_at)
                  for a in attempts])


async def _attempts(session: AsyncSession, delivery_ids: list[str]) -> dict[str, list[WebhookAttempt]]:
    out: dict[str, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        rows = await session.execute(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids))
                                     .order_by(WebhookAttempt.number))
        for attempt in rows.scalars():
            out[attempt.delivery_id].append(attempt)
    return out


async def list_deliveries(session: AsyncSession, principal: Principal, endpoint_id: str, *, limit: int = 50,
                          cursor: str | None = None, status: str | None = None,
                          ) -> tuple[list[DeliveryView], str | None]:
    """The endpoint's deliveries, newest first, each with its attempts (oldest first); ``limit``
    clamped to 1–200, ``status`` one of pending | succeeded | failed. Raises as
    :func:`get_endpoint`, InvalidRequest (status, cursor)."""
    endpoint = await _get(session, principal, endpoint_id)
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidRequest(f"status: must be one of {', '.join(DELIVERY_STATUSES)}.",
                             details=[{"path": "status", "message": "unknown status"}])
    limit = max(1, min(limit, 200))
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if cursor:
        created, last_id = pagination.decode(cursor, _endpoint_key)
        query = query.where((WebhookDelivery.created_at < created)
                            | ((WebhookDelivery.created_at == created) & (WebhookDelivery.id < last_id)))
    rows = list((await session.execute(query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
                                       .limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    attempts = await _attempts(session, [row.id for row in rows])
    next_cursor = pagination.encode([clock.iso(rows[-1].created_at), rows[-1].id]) if more and rows else None
    return [_delivery_view(row, attempts[row.id]) for row in rows], next_cursor


async def redeliver(session: AsyncSession, principal: Principal, endpoint_id: str, delivery_id: str) -> DeliveryView:
    """Send a finished delivery (succeeded or failed) again, now: one manual attempt, enqueued
    after commit; its outcome becomes the delivery's (a failure schedules no further retries).

    Raises as :func:`get_endpoint`, WebhookDeliveryNotFound, InvalidState (409) for a delivery
    still pending (its next attempt is already scheduled) or a disabled endpoint (enable it first)."""
    endpoint = await _get(session, principal, endpoint_id)
    row = (await session.execute(select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id).with_for_update())
    ).scalar_one_or_none()
    if row is None:
        raise WebhookDeliveryNotFound(f"Delivery {delivery_id} not found.")
    if not endpoint.enabled:
        raise InvalidState("The webhook is disabled; enable it (PATCH enabled: true) before redelivering.")
    changed = await session.execute(update(WebhookDelivery).where(
        WebhookDelivery.id == row.id, WebhookDelivery.status.in_(("succeeded", "failed")))
        .values(status="pending", manual=True, next_attempt_at=clock.now(), completed_at=None,
                updated_at=clock.now()).execution_options(synchronize_session=False))
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidState("The delivery is pending: its next attempt is already scheduled.")
    await session.refresh(row)
    enqueue(session, DELIVER, delivery_id=row.id)
    return _delivery_view(row, (await _attempts(session, [row.id]))[row.id])


async def count_for_job(session: AsyncSession, principal: Principal, job_id: str) -> int:
    """How many webhook deliveries the events about execution job ``job_id`` made (in the
    caller's organization and mode), whatever their status."""
    return int((await session.execute(select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.organization_id == principal.organization_id, WebhookDelivery.env == principal.env,
        WebhookDelivery.job_id == job_id))).scalar_one())


# --- the outbox's consumer ---------------------------------------------------------------------


def _job_of(event: Event) -> str | None:
    if event.subject_type == "job":
        return event.subject_id
    if event.payload.get("subject_type") == "job":
        return str(event.payload.get("subject_id"))
    job_id = event.payload.get("job_id")
    return str(job_id) if job_id else None


class WebhookConsumer:
    """The outbox consumer (:class:`errand.outbox.consumers.EventConsumer`): one pending delivery
    per enabled, subscribed endpoint of the event's organization and mode, in the dispatcher's
    transaction, and its send (:data:`DELIVER`) enqueued for after the commit. It never calls
    the network."""

    async def accept(self, session: AsyncSession, event: Event) -> None:
        endpoints = (await session.execute(select(WebhookEndpoint.id, WebhookEndpoint.events).where(
            WebhookEndpoint.organization_id == event.organization_id, WebhookEndpoint.env == event.env,
            WebhookEndpoint.enabled.is_(True)))).all()
        wanted = [endpoint_id for endpoint_id, events in endpoints
                  if event.event_type in events or ALL_EVENTS in events]
        if not wanted:
            return
        now = clock.now()
        data = {**event.payload, "event_id": event.id}
        for endpoint_id in wanted:
            delivery = WebhookDelivery(
                id=new_id("whd"), endpoint_id=endpoint_id, organization_id=event.organization_id, env=event.env,
                event_id=event.id, event_type=event.event_type, job_id=_job_of(event),
                webhook_id=f"msg_{event.id}_{endpoint_id}", payload=data, occurred_at=event.occurred_at,
                status="pending", attempt_count=0, next_attempt_at=now, manual=False)
            session.add(delivery)
            enqueue(session, DELIVER, delivery_id=delivery.id)
        await session.flush()
