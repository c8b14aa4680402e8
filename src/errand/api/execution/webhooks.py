"""``/api/v1/webhooks``: outbound webhook endpoints and their deliveries, in the execution dialect.

Each route only translates; the rules live in :mod:`errand.webhooks.service` (docs/webhooks.md).
An admin key of the organization manages its endpoints of the key's mode; an agent key is 403
``forbidden``, another organization's or mode's endpoint 404 ``webhook_not_found``.
"""

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from errand.api import openapi as doc
from errand.api.common import JSONBody, core_of
from errand.api.execution.auth import Caller
from errand.api.execution.routes import _int_param, _json
from errand.kit import clock
from errand.outbox.schemas import EVENT_TYPES
from errand.webhooks import service as webhooks_service
from errand.webhooks.schemas import DELIVERY_STATUSES, DeliveryView, EndpointView

router = APIRouter()

_EVENT = {"type": "string", "enum": [*EVENT_TYPES, "*"]}
_CREATE = {"type": "object", "additionalProperties": False, "required": ["url", "events"], "properties": {
    "url": {"type": "string", "minLength": 1, "maxLength": 2048, "description": "http(s) URL, public address."},
    "events": {"type": "array", "minItems": 1, "items": _EVENT, "uniqueItems": True},
    "description": {"type": ["string", "null"], "maxLength": 500},
}}
_UPDATE = {"type": "object", "additionalProperties": False, "properties": {
    **_CREATE["properties"], "enabled": {"type": "boolean"}}}  # type: ignore[dict-item]


class Webhook(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabledReason: Literal["gone", "failing"] | None = Field(description="Why it stopped: 410 Gone, or "
                                                                          "repeated failed deliveries.")
    consecutiveFailures: int
    previousSecretExpiresAt: str | None = Field(description="After a rotation, until when the old secret "
                                                            "still signs.")
    createdAt: str
    updatedAt: str


class WebhookWithSecret(Webhook):
    secret: str = Field(description="`whsec_…`: shown only in this answer; verify deliveries with it.")


class WebhookList(BaseModel):
    webhooks: list[Webhook]
    count: int
    nextCursor: str | None


class Attempt(BaseModel):
    number: int
    statusCode: int | None
    durationMs: int
    error: str | None
    responseExcerpt: str | None
    manual: bool
    attemptedAt: str


class Delivery(BaseModel):
    id: str
    webhookId: str = Field(description="The `webhook-id` header: the same on every attempt, deduplicate on it.")
    eventId: int
    eventType: str
    jobId: str | None
    status: Literal[DELIVERY_STATUSES]  # type: ignore[valid-type]
    attemptCount: int
    nextAttemptAt: str | None
    createdAt: str
    completedAt: str | None
    attempts: list[Attempt]


class DeliveryList(BaseModel):
    deliveries: list[Delivery]
    count: int
    nextCursor: str | None


def _endpoint(view: EndpointView) -> dict[str, Any]:
    body = {"id": view.id, "url": view.url, "events": view.events, "description": view.description,
            "enabled": view.enabled, "disabledReason": view.disabled_reason,
            "consecutiveFailures": view.consecutive_failures,
            "previousSecretExpiresAt": clock.iso(view.previous_secret_expires_at),
            "createdAt": clock.iso(view.created_at), "updatedAt": clock.iso(view.updated_at)}
    if view.secret is not None:
        body["secret"] = view.secret
    return body


def _delivery(view: DeliveryView) -> dict[str, Any]:
    return {"id": view.id, "webhookId": view.webhook_id, "eventId": view.event_id, "eventType": view.event_type,
            "jobId": view.job_id, "status": view.status, "attemptCount": view.attempt_count,
            "nextAttemptAt": clock.iso(view.next_attempt_at), "createdAt": clock.iso(view.created_at),
            "completedAt": clock.iso(view.completed_at),
            "attempts": [{"number": a.number, "statusCode": a.status_code, "durationMs": a.duration_ms,
                          "error": a.error, "responseExcerpt": a.response_excerpt, "manual": a.manual,
                          "attemptedAt": clock.iso(a.attempted_at)} for a in view.attempts]}


def _limit(request: Request) -> int:
    return _int_param(request, "limit", 50)


def _allowed(request: Request) -> frozenset[str]:
    return core_of(request).settings.webhook_allowed_host_set


_PAGE = [doc.query("limit", "Items per page, clamped to [1, 200]; default 50.", {"type": "integer"}),
         doc.query("cursor", "`nextCursor` of the previous page.", {"type": "string"})]


@router.post("", status_code=201, summary="Register a webhook endpoint",
             openapi_extra=doc.json_body(_CREATE, "Where to send, which event types (or `*`), a note."),
             **doc.describe(WebhookWithSecret, 403, status=201))
async def create_webhook(request: Request, caller: Caller) -> JSONBody:
    """Register a URL for your organization's events in your key's mode (admin key).

    The answer's `secret` (`whsec_…`) is shown only now: deliveries are signed with it (Standard
    Webhooks). Errors: 400 `invalid_request` (`events.N` unknown or listed twice), 400
    `webhook_url_refused` (not http(s), credentials in it, too long, or resolving to a private,
    loopback or link-local address), 403 `forbidden` (not an admin key)."""
    data = webhooks_service.validate_create(await _json(request))
    async with core_of(request).db.unit_of_work() as session:
        view = await webhooks_service.create_endpoint(session, caller, data, _allowed(request))
    return JSONBody(_endpoint(view), status_code=201)


@router.get("", summary="List webhook endpoints", openapi_extra={"parameters": _PAGE},
            **doc.describe(WebhookList, 403))
async def list_webhooks(request: Request, caller: Caller) -> JSONBody:
    """Your organization's endpoints in your key's mode, newest first (admin key); never their secrets."""
    async with core_of(request).db.unit_of_work(read_only=True) as session:
        views, cursor = await webhooks_service.list_endpoints(session, caller, limit=_limit(request),
                                                              cursor=request.query_params.get("cursor") or None)
    return JSONBody({"webhooks": [_endpoint(v) for v in views], "count": len(views), "nextCursor": cursor})


@router.get("/{webhook_id}", summary="Get a webhook endpoint", **doc.describe(Webhook, 403, 404))
async def get_webhook(webhook_id: str, request: Request, caller: Caller) -> JSONBody:
    """One endpoint (admin key): its URL, events, whether it is enabled and why not."""
    async with core_of(request).db.unit_of_work(read_only=True) as session:
        view = await webhooks_service.get_endpoint(session, caller, webhook_id)
    return JSONBody(_endpoint(view))


@router.patch("/{webhook_id}", summary="Change a webhook endpoint",
              openapi_extra=doc.json_body(_UPDATE, "Any of url, events, description, enabled."),
              **doc.describe(Webhook, 403, 404))
async def update_webhook(webhook_id: str, request: Request, caller: Caller) -> JSONBody:
    """Change an endpoint's url, events or description; `enabled: true` re-enables a disabled one
    (and clears its failure count). Errors as for registration, and 404 `webhook_not_found`."""
    data = webhooks_service.validate_update(await _json(request))
    async with core_of(request).db.unit_of_work() as session:
        view = await webhooks_service.update_endpoint(session, caller, webhook_id, data, _allowed(request))
    return JSONBody(_endpoint(view))


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook endpoint", response_class=Response,
               **doc.describe(None, 403, 404, status=204))
async def delete_webhook(webhook_id: str, request: Request, caller: Caller) -> Response:
    """Delete the endpoint and its delivery history; nothing more is sent to it."""
    async with core_of(request).db.unit_of_work() as session:
        await webhooks_service.delete_endpoint(session, caller, webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/rotate-secret", summary="Rotate the signing secret",
             **doc.describe(WebhookWithSecret, 403, 404))
async def rotate_webhook_secret(webhook_id: str, request: Request, caller: Caller) -> JSONBody:
    """A new `secret`, shown only now. For 24 hours deliveries carry two signatures (new and old),
    so a receiver still verifying with the old secret keeps accepting them while it switches."""
    async with core_of(request).db.unit_of_work() as session:
        view = await webhooks_service.rotate_secret(session, caller, webhook_id)
    return JSONBody(_endpoint(view))


@router.get("/{webhook_id}/deliveries", summary="A webhook endpoint's deliveries", openapi_extra={"parameters": [
    doc.query("status", "Only deliveries in this status.", {"type": "string", "enum": list(DELIVERY_STATUSES)}),
    *_PAGE]}, **doc.describe(DeliveryList, 403, 404))
async def list_webhook_deliveries(webhook_id: str, request: Request, caller: Caller) -> JSONBody:
    """Deliveries to the endpoint, newest first: status, event type, `webhookId`, each attempt's
    status code and duration, and the next retry of a pending one."""
    async with core_of(request).db.unit_of_work(read_only=True) as session:
        views, cursor = await webhooks_service.list_deliveries(
            session, caller, webhook_id, limit=_limit(request), cursor=request.query_params.get("cursor") or None,
            status=request.query_params.get("status") or None)
    return JSONBody({"deliveries": [_delivery(v) for v in views], "count": len(views), "nextCursor": cursor})


@router.post("/{webhook_id}/deliveries/{delivery_id}/retry", status_code=202, summary="Redeliver now",
             **doc.describe(Delivery, 403, 404, 409, status=202))
async def retry_webhook_delivery(webhook_id: str, delivery_id: str, request: Request, caller: Caller) -> JSONBody:
    """Send a succeeded or failed delivery again now (one new attempt, same `webhook-id`). 409
    `invalid_state` while it is still pending or when the endpoint is disabled."""
    async with core_of(request).db.unit_of_work() as session:
        view = await webhooks_service.redeliver(session, caller, webhook_id, delivery_id)
    return JSONBody(_delivery(view), status_code=202)
