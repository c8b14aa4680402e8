"""Routes of the execution dialect. Each only translates; the rules live in errand.jobs.

A route opens the request's unit of work (read-only for reads) and hands its session to the jobs
service; the service's orchestrators (cancel, search) open their own.
"""

import functools
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from errand.api import openapi as doc
from errand.api.common import JSONBody, core_of
from errand.api.execution import bodies
from errand.api.execution.auth import Caller
from errand.api.execution.errors import MissingJobId, MissingProviderId
from errand.api.execution.schemas import (
    created_body, event_body, job_body, metrics_body, provider_body, snapshot_body,
)
from errand.jobs import service as jobs_service
from errand.kit import inputs
from errand.kit.boundary import PARSED_BODY
from errand.kit.errors import InvalidRequest
from errand.webhooks import service as webhooks_service

jobs = APIRouter()
metrics = APIRouter()
providers = APIRouter()
profiles = APIRouter()
provider_events = APIRouter()


async def _json(request: Request) -> Any:
    """The body as the input boundary parsed it; a body sent under another content type is
    parsed here by the same rules (errand.kit.inputs.parse_json)."""
    state = request.scope.get("state") or {}
    if PARSED_BODY in state:
        return state[PARSED_BODY]
    return inputs.parse_json(await request.body())


def _reading(request: Request) -> Any:
    """The request's read-only unit of work."""
    return core_of(request).db.unit_of_work(read_only=True)


def _writing(request: Request) -> Any:
    """The request's unit of work, committed when the route's block succeeds."""
    return core_of(request).db.unit_of_work()


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"{name}: must be an integer.", details=[{"path": name, "message": "not an integer"}]) from None


@jobs.post("", status_code=202, summary="Create a job", openapi_extra=doc.json_body(
    bodies.JOB_REQUEST, "The job: scenario and params, the traveler, consent and your metadata."),
    **doc.describe(bodies.JobCreated, 403, 409, status=202, also=(200,), replayable=True))
async def create_job(request: Request, caller: Caller) -> JSONBody:
    """Create a booking job; the autopilot runs it in the background. Poll the job for its status.

    The same ``clientMetadata.idempotencyKey`` returns the job created first (200) instead of a second one."""
    data = jobs_service.validate_job_request(await _json(request))
    async with _writing(request) as session:
        job, created = await jobs_service.create_job(session, caller, data, core_of(request).providers)
    if created:
        return JSONBody(created_body(job), status_code=202)
    return JSONBody(created_body(job), status_code=200, headers={"Idempotent-Replayed": "true"})


@jobs.get("", summary="List jobs", openapi_extra={"parameters": [
    doc.query("status", "Only jobs in this status.", {"type": "string", "enum": list(bodies.STATUSES)}),
    doc.query("limit", "Jobs per page, clamped to [1, 200]; default 50.", {"type": "integer"}),
    doc.query("cursor", "`nextCursor` of the previous page.", {"type": "string"}),
]}, **doc.describe(bodies.JobList))
async def list_jobs(request: Request, caller: Caller) -> JSONBody:
    """Your organization's jobs, newest first: ``?status=&limit=`` (1–200, default 50) ``&cursor=``."""
    status, limit = request.query_params.get("status") or None, _int_param(request, "limit", 50)
    async with _reading(request) as session:
        views, cursor = await jobs_service.list_jobs(session, caller, status=status, limit=limit,
                                                     cursor=request.query_params.get("cursor") or None)
    return JSONBody({"jobs": [job_body(v) for v in views], "count": len(views), "nextCursor": cursor})


def _job_id(job_id: str) -> str:
    if not job_id.strip():
        raise MissingJobId("The job id is missing from the path.")
    return job_id


@jobs.get("/{job_id}", summary="Get a job", **doc.describe(bodies.Job, 404))
async def get_job(job_id: str, request: Request, caller: Caller) -> JSONBody:
    """The job's current state, its decision log and, when it paused at payment, the handoff URL;
    ``webhookDeliveries`` counts the webhook deliveries its events made."""
    job_id = _job_id(job_id)
    async with _reading(request) as session:
        job = await jobs_service.get_job(session, caller, job_id)
        deliveries = await webhooks_service.count_for_job(session, caller, job_id)
    return JSONBody({**job_body(job), "webhookDeliveries": deliveries})


@jobs.get("/{job_id}/audit", summary="A job's audit trail", openapi_extra={"parameters": [
    doc.query("limit", "Events to return, clamped to [1, 2000]; default 500.", {"type": "integer"}),
]}, **doc.describe(bodies.JobAudit, 404))
async def job_audit(job_id: str, request: Request, caller: Caller) -> JSONBody:
    """Every event of the job, oldest first; ``limit`` defaults to 500 and is clamped to [1, 2000]."""
    job_id, limit = _job_id(job_id), _int_param(request, "limit", 500)
    async with _reading(request) as session:
        found = await jobs_service.job_audit(session, caller, job_id, limit)
    return JSONBody({"jobId": job_id, "count": len(found), "events": [event_body(e) for e in found]})


@jobs.post("/{job_id}/cancel", summary="Cancel a job", openapi_extra={"parameters": [
    doc.header("Idempotency-Key", "A retried cancel with the same key replays the first answer.",
               doc.IDEMPOTENCY_KEY_SCHEMA),
]}, **doc.describe(bodies.Job, 404, 409, replayable=True))
async def cancel_job(job_id: str, request: Request, caller: Caller) -> JSONBody:
    """Stop a pending, running or awaiting job. A finished job is 409 invalid_state, unless the
    retry carries the first cancel's ``Idempotency-Key``: then the first answer is replayed."""
    key = inputs.check_idempotency_key(request.headers.get("Idempotency-Key"))
    job, replayed = await jobs_service.cancel_job(core_of(request), caller, _job_id(job_id), key)
    return JSONBody(job_body(job), headers={"Idempotent-Replayed": "true"} if replayed else None)


@jobs.get("/{job_id}/snapshots", summary="A job's screenshots", **doc.describe(bodies.SnapshotList, 404))
async def job_snapshots(job_id: str, request: Request, caller: Caller) -> JSONBody:
    """Screenshots the autopilot took at each step of the job (page loads and form actions), oldest first.

    Each has its ``step`` (provider and page, e.g. ``web-tables/results``), the page's ``url`` and
    its ``timestamp``; ``GET …/snapshots/{snapshotId}/image`` returns the PNG."""
    job_id = _job_id(job_id)
    async with _reading(request) as session:
        found = await jobs_service.list_snapshots(session, caller, job_id)
    return JSONBody({"jobId": job_id, "count": len(found), "snapshots": [snapshot_body(s) for s in found]})


@jobs.get("/{job_id}/snapshots/{snapshot_id}/image", summary="One screenshot", response_class=Response,
          responses={200: {"description": "The screenshot.",
                           "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
                     **doc.errors(404)})
async def job_snapshot_image(job_id: str, snapshot_id: str, request: Request, caller: Caller) -> Response:
    """One screenshot of the job, as ``image/png``. 404 ``snapshot_not_found`` for an id the job does not have."""
    job_id = _job_id(job_id)
    async with _reading(request) as session:
        png = await jobs_service.snapshot_png(session, caller, job_id, snapshot_id)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


@metrics.get("/providers/{provider_id}", summary="A provider's success rate", openapi_extra={"parameters": [
    doc.query("timeRangeDays", "Days to look back, clamped to [1, 365]; default 30.", {"type": "integer"}),
]}, **doc.describe(bodies.ProviderMetrics, 404))
async def provider_metrics(provider_id: str, request: Request, caller: Caller) -> JSONBody:
    """Success rate of your jobs' attempts at one provider; ``timeRangeDays`` defaults to 30, clamped to [1, 365]."""
    if not provider_id.strip():
        raise MissingProviderId("The provider id is missing from the path.")
    days = _int_param(request, "timeRangeDays", 30)
    async with _reading(request) as session:
        found = await jobs_service.provider_metrics(session, caller, provider_id, days)
    return JSONBody(metrics_body(found))


@metrics.get("/providers/", include_in_schema=False)
@metrics.get("/providers", include_in_schema=False)
async def provider_metrics_without_id(caller: Caller) -> dict:
    raise MissingProviderId("The provider id is missing from the path.")


@providers.get("", summary="List providers", **doc.describe(bodies.ProviderList))
async def list_providers(request: Request, caller: Caller) -> Response:
    """The providers jobs can use: ids for allowedProviders, blockedProviders and metrics."""
    return Response(_providers_json(core_of(request).providers, caller.env, tuple(caller.scenarios)),
                    media_type="application/json")


@functools.lru_cache(maxsize=256)
def _providers_json(registry: Any, env: str, scenarios: tuple[str, ...]) -> bytes:
    """The list's body, encoded once per process for what it depends on (jobs_service.provider_listing)."""
    listing = jobs_service.provider_listing(registry, env, scenarios)
    return JSONBody({"providers": [provider_body(p) for p in listing]}).body


@profiles.post("", status_code=201, summary="Store a traveler profile", openapi_extra=doc.json_body(
    bodies.PROFILE, "The traveler: name, email and phone; flights also need dob and passport details."),
    **doc.describe(bodies.ProfileCreated, status=201))
async def create_profile(request: Request, caller: Caller) -> JSONBody:
    """Store a traveler profile (encrypted at rest) so jobs can send ``profileId`` instead of the data."""
    profile = jobs_service.validate_profile(await _json(request))
    async with _writing(request) as session:
        profile_id = await jobs_service.create_profile(session, caller, profile)
    return JSONBody({"profileId": profile_id}, status_code=201)


@provider_events.post("", summary="Receive a provider event", openapi_extra={
    **doc.json_body(bodies.PROVIDER_EVENT, "What happened: `type` (payment_completed, human_takeover, "
                                           "hold_expired), the provider, and the hold or reference."),
    "parameters": bodies.PROVIDER_EVENT_HEADERS,
}, **doc.describe(bodies.ProviderEventReceipt, 401))
async def receive_provider_event(request: Request) -> JSONBody:
    """Where providers report what the end user did after the autopilot stopped (payment, takeover, lapsed hold).

    Signed with Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) under the
    provider events secret; a bad or stale signature is 401 ``invalid_signature`` and changes nothing. Each
    ``webhook-id`` is applied once: a redelivery answers 200 with ``duplicate: true``."""
    event = jobs_service.verify_provider_event(core_of(request).settings, request.headers, await request.body())
    async with _writing(request) as session:
        receipt = await jobs_service.receive_provider_event(session, event)
    return JSONBody({"received": True, "eventId": receipt.event_id, "type": receipt.type,
                     "duplicate": receipt.duplicate, "jobId": receipt.job_id})
