"""The execution-job tools: the execution API's create, read, audit and cancel, as tools.

``create_execution_job`` takes the REST body's shape (``request``, ``profile`` or
``profileId``, ``consent``, ``clientMetadata``) and validates it with the same function
as REST; its ``idempotency_key`` is ``clientMetadata.idempotencyKey``, the execution API's
own idempotency key, so a job created over REST is found again over MCP. Cancelling a job
has no key in REST; over MCP its key makes a retried cancel replay the first answer
instead of reporting INVALID_STATE.
"""

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from errand.api.mcp import schemas
from errand.api.mcp.schemas import ExecutionJob, IdempotencyKey, JobAudit, either
from errand.api.mcp.tooldef import Call, ToolDef
from errand.jobs import service as jobs_service
from errand.jobs.schemas import PARAMS_MODELS, SCENARIOS, ClientMetadata, Consent, Profile
from errand.kit.errors import InvalidRequest
from errand.kit.inputs import StrictInt, text

_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["scenario", "params"],
    "properties": {
        "scenario": {"type": "string", "enum": list(SCENARIOS)},
        "params": {
            "description": "The fields of the scenario (restaurant_name, city, date, time, covers for a restaurant; "
                           "see each variant's required list).",
            "anyOf": [{**PARAMS_MODELS[s].model_json_schema(), "title": s} for s in SCENARIOS],
        },
    },
    "additionalProperties": False,
}

JobId = Annotated[text(100, min_length=1), either("job_id", "The jobId returned by create_execution_job.")]


def _rest_body(*, request: dict[str, Any], profile: dict[str, Any] | None, profile_id: int | None,
               consent: dict[str, Any] | None, client_metadata: dict[str, Any] | None,
               idempotency_key: str | None) -> dict[str, Any]:
    """The execution API's create body from the tool's arguments; ``idempotency_key`` becomes
    ``clientMetadata.idempotencyKey``. Raises InvalidRequest when the two name different keys."""
    body: dict[str, Any] = {"request": request}
    if profile is not None:
        body["profile"] = profile
    if profile_id is not None:
        body["profileId"] = profile_id
    if consent is not None:
        body["consent"] = consent
    metadata = dict(client_metadata or {})
    if idempotency_key is not None:
        if metadata.get("idempotencyKey") not in (None, idempotency_key):
            raise InvalidRequest(
                "idempotency_key: differs from client_metadata.idempotencyKey; give one of them.",
                details=[{"path": "idempotency_key", "message": "conflicts with clientMetadata.idempotencyKey"}],
            )
        metadata["idempotencyKey"] = idempotency_key
    if metadata:
        body["clientMetadata"] = metadata
    return body


async def create_execution_job(
    call: Call,
    request: Annotated[dict[str, Any], WithJsonSchema(_REQUEST_SCHEMA), Field(description=(
        "{scenario, params}: what to book. restaurant: restaurant_name, city, date (YYYY-MM-DD), time (HH:MM), "
        "covers; hotel: hotel_name, city, checkin, checkout, adults; flight: origin, dest, date, passengers; "
        "activity: event_name, city, event_date, num_tickets."))],
    profile: Annotated[dict[str, Any] | None, WithJsonSchema(Profile.model_json_schema()), Field(description=(
        "The traveler: first_name, last_name, email, phone (flights also dob, passport_number, "
        "passport_country). Give profile or profile_id."))] = None,
    profile_id: Annotated[StrictInt | None, either("profile_id", "A stored booking profile's id, instead of "
                                                                 "profile.")] = None,
    consent: Annotated[dict[str, Any] | None, WithJsonSchema(Consent.model_json_schema()), Field(description=(
        "What the autopilot may do on its own: allowTimeAdjustment (default true), maxTimeAdjustmentMinutes "
        "(90), allowVenueSwitch (true), allowAlternativeBooking (false: a switched venue stops at payment "
        "or asks for approval), maxRetries (3), allowedProviders, blockedProviders, "
        "maxJobDurationSeconds (420)."))] = None,
    client_metadata: Annotated[dict[str, Any] | None, WithJsonSchema(ClientMetadata.model_json_schema()),
                               either("client_metadata", "Your own ids (agentId, userId, sessionId), "
                                                         "returned with the job.")] = None,
    idempotency_key: Annotated[IdempotencyKey | None, either(
        "idempotency_key",
        "A unique string for this one job. Calling again with the same key and arguments returns the job "
        "created first (replayed true); the same key with other arguments is IDEMPOTENCY_CONFLICT. It is the "
        "execution API's clientMetadata.idempotencyKey.")] = None,
) -> ExecutionJob:
    """Start a booking job that Errand carries out in the background, for any scenario.

    Use it for hotels, flights and event tickets, and for restaurants when the user accepts
    a nearby time or another provider (within `consent`). Errand searches the providers,
    picks the offer, falls back to other providers on failure, and stops before card entry.

    Result: the job, status 'pending' at first. Poll get_execution_job every few seconds
    until `terminal` is true (typically under a few minutes), then act on the status:
    paused_payment: success, give the user handoffUrl to pay; completed: booked;
    no_availability: nothing matched, offer other dates or venues; needs_login / captcha /
    error: the booking could not be made automatically, tell the user (summary, error).
    awaiting_approval: a person in the organization must approve first; tell the user.

    Errors (isError, JSON {"error": {code, message, details}}):
    - INVALID_REQUEST: details lists each problem by path (e.g. request.params.time); fix and retry.
    - POLICY_VIOLATION: your API key may not book this scenario.
    - IDEMPOTENCY_CONFLICT: the key was used for a different job; use a new key.
    - RATE_LIMITED: wait retryAfterSeconds.
    """
    body = _rest_body(request=request, profile=profile, profile_id=profile_id, consent=consent,
                      client_metadata=client_metadata, idempotency_key=idempotency_key)
    data = jobs_service.validate_job_request(body)
    async with call.core.db.unit_of_work() as session:
        job, created = await jobs_service.create_job(session, call.principal, data, call.core.providers)
    return schemas.execution_job(job, replayed=not created)


async def get_execution_job(call: Call, job_id: JobId) -> ExecutionJob:
    """Read a job's current status, decisions so far and, when it paused at payment, the handoffUrl.

    Poll it every 3-5 seconds after create_execution_job until `terminal` is true.
    Statuses: pending, running, awaiting_approval (a person must approve; keep polling less
    often) are not final; paused_payment (success: the user pays at handoffUrl), completed,
    no_availability, needs_login, captcha, error and cancelled are.

    After a handoff, `payment` says what became of it: awaiting (payable at handoffUrl until
    expiresAt), paid (the job is then completed, with the confirmation in summary and result)
    or expired (the hold lapsed unpaid: nothing was booked, handoffUrl is null, the status
    stays paused_payment). Read the job again later to learn whether the user paid.

    Errors: NOT_FOUND when no job with that id exists in your organization.
    """
    async with call.core.db.unit_of_work(read_only=True) as session:
        job = await jobs_service.get_job(session, call.principal, job_id)
    return schemas.execution_job(job)


async def get_execution_job_audit(
    call: Call,
    job_id: JobId,
    limit: Annotated[int, Field(ge=1, le=2000, strict=True,
                                description="At most this many events (default 500).")] = 500,
) -> JobAudit:
    """Every event of a job, oldest first: lifecycle (job_created, job_started, paused_payment,
    job_completed, job_failed, job_aborted) and each autonomous decision (time_adjusted,
    venue_switched, provider_fallback, …), with its reasons.

    Use it to explain to the user what Errand did and why.

    Errors: NOT_FOUND when no job with that id exists in your organization.
    """
    async with call.core.db.unit_of_work(read_only=True) as session:
        events = await jobs_service.job_audit(session, call.principal, job_id, limit)
    return schemas.job_audit(job_id, events)


async def cancel_execution_job(
    call: Call,
    job_id: JobId,
    idempotency_key: Annotated[IdempotencyKey | None, either(
        "idempotency_key", "A unique string for this cancellation; a retry with it returns the first "
                           "answer instead of INVALID_STATE.")] = None,
) -> ExecutionJob:
    """Stop a job that is still pending, running or awaiting approval; it ends as 'cancelled'.

    A job that already finished (paused_payment, completed, …) cannot be cancelled; a
    booking it already made is not undone by this.

    Errors (isError, JSON {"error": {code, message}}):
    - NOT_FOUND: no job with that id in your organization.
    - INVALID_STATE: the job has already finished; read it with get_execution_job.
    """
    job, replayed = await jobs_service.cancel_job(call.core, call.principal, job_id, idempotency_key)
    return schemas.execution_job(job, replayed=replayed)


TOOLS = [
    ToolDef(name="create_execution_job", title="Start an execution job", handler=create_execution_job,
            read_only=False, destructive=False, idempotent=False, open_world=True),
    ToolDef(name="get_execution_job", title="Read an execution job", handler=get_execution_job,
            read_only=True, destructive=False, idempotent=True, open_world=False),
    ToolDef(name="get_execution_job_audit", title="Read a job's audit trail", handler=get_execution_job_audit,
            read_only=True, destructive=False, idempotent=True, open_world=False),
    ToolDef(name="cancel_execution_job", title="Cancel an execution job", handler=cancel_execution_job,
            read_only=False, destructive=True, idempotent=True, open_world=False),
]
