"""The execution dialect's request and response bodies as documented models (OpenAPI only).

The routes read their bodies with the core's validation (``errand.jobs.service.validate_*``) and build
their answers with :mod:`errand.api.execution.schemas`; these models describe the same bytes for
the OpenAPI document, and the schemathesis conformance test holds the two together. Request
schemas come from the core's own models (``errand.jobs.schemas``), so a rule changes in one place.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from errand.api import openapi
from errand.jobs.schemas import (
    MAX_SIGNATURE_LENGTH, MAX_TIMESTAMP_LENGTH, PROVIDER_ID, STATUSES, WEBHOOK_ID, ActivityParams, ClientMetadata,
    Consent, FlightParams, HotelParams, Profile, ProviderEventIn, RestaurantParams,
)
from errand.kit import inputs, webhooks

JobStatus = Literal[STATUSES]  # type: ignore[valid-type]


class Links(BaseModel):
    self: str
    audit: str
    cancel: str


class JobCreated(BaseModel):
    """The job was accepted (202), or an earlier job with the same idempotency key is returned (200)."""

    jobId: str
    status: JobStatus
    scenario: str
    organizationName: str
    links: Links = Field(alias="_links")


class DecisionEntry(BaseModel):
    """One step or autonomous decision; more fields depending on ``type``."""

    timestamp: str
    type: str
    message: str


class Job(BaseModel):
    jobId: str
    status: JobStatus
    scenario: str
    organizationName: str
    handoffUrl: str | None = Field(description="Where the end user pays, once the job is `paused_payment`.")
    sessionUrl: str | None = Field(description="One-time link to continue where the autopilot stopped "
                                               "(`captcha`, `needs_login`).")
    summary: str | None
    error: str | None
    decisionLog: list[DecisionEntry]
    attemptCount: int
    usedFallback: bool
    providerId: str | None
    result: dict[str, Any] | None
    approvalId: str | None
    clientMetadata: dict[str, Any]
    createdAt: str
    updatedAt: str
    completedAt: str | None
    webhookDeliveries: int | None = Field(default=None, description="On a job's GET: how many webhook deliveries "
                                                                   "its events made (`/api/v1/webhooks`).")
    links: Links = Field(alias="_links")


class JobList(BaseModel):
    jobs: list[Job]
    count: int
    nextCursor: str | None = Field(description="Send as `cursor` for the next page; null on the last one.")


class AuditEvent(BaseModel):
    """One audit event of a job; more fields depending on ``type``."""

    jobId: str
    stepIndex: int
    type: str
    timestamp: str
    message: str


class JobAudit(BaseModel):
    jobId: str
    count: int
    events: list[AuditEvent]


class Snapshot(BaseModel):
    snapshotId: str
    step: str
    url: str | None
    timestamp: str


class SnapshotList(BaseModel):
    jobId: str
    count: int
    snapshots: list[Snapshot]


class ProviderMetrics(BaseModel):
    providerId: str
    successRate: float
    totalAttempts: int
    acceptedCount: int
    manualOverrideCount: int
    failedCount: int
    lastEventAt: str | None
    timeRangeDays: int


class Provider(BaseModel):
    id: str
    displayName: str
    scenarios: list[str]
    kind: Literal["api", "browser"]
    sandbox: bool
    enabled: bool = Field(description="Whether this key may use it.")


class ProviderList(BaseModel):
    providers: list[Provider]


class ProfileCreated(BaseModel):
    profileId: int


class ProviderEventReceipt(BaseModel):
    received: bool
    eventId: str
    type: str
    duplicate: bool = Field(description="True when this `webhook-id` was applied before.")
    jobId: str | None


# Request bodies: the core's models, one request shape per scenario.

class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RestaurantRequest(_Request):
    scenario: Literal["restaurant"]
    params: RestaurantParams


class HotelRequest(_Request):
    scenario: Literal["hotel"]
    params: HotelParams


class FlightRequest(_Request):
    scenario: Literal["flight"]
    params: FlightParams


class ActivityRequest(_Request):
    scenario: Literal["activity"]
    params: ActivityParams


class ExecutionJobRequest(BaseModel):
    """What to book (``request``), for whom (exactly one of ``profileId`` and ``profile``; flights need
    ``dob``, ``passport_number`` and ``passport_country``), within what ``consent``."""

    model_config = ConfigDict(extra="forbid")

    request: Annotated[RestaurantRequest | HotelRequest | FlightRequest | ActivityRequest,
                       Field(discriminator="scenario")]
    profileId: int | None = Field(default=None, ge=1, description="A profile stored with POST /api/v1/profiles.")
    profile: Profile | None = None
    consent: Consent | None = None
    clientMetadata: ClientMetadata | None = Field(
        default=None, description="Yours, echoed on the job; `idempotencyKey` returns the job created first.")


def _job_request_schema(components: dict[str, Any]) -> dict[str, Any]:
    ref = openapi.model_schema(ExecutionJobRequest, components)
    schema = components["ExecutionJobRequest"]
    # Exactly one of profileId and profile is given (null counts as not given).
    schema["oneOf"] = [
        {"required": ["profileId"], "properties": {"profileId": {"type": "integer"}}},
        {"required": ["profile"], "properties": {"profile": {"type": "object"}}},
    ]
    schema["allOf"] = [{
        "if": {"required": ["request", "profile"],
               "properties": {"request": {"properties": {"scenario": {"const": "flight"}}}}},
        "then": {"properties": {"profile": {"required": ["dob", "passport_number", "passport_country"]}}},
    }]
    return ref


def _profile_schema(components: dict[str, Any]) -> dict[str, Any]:
    ref = openapi.model_schema(Profile, components)
    properties = components["Profile"]["properties"]
    # The core checks these in validators; the patterns say the same for clients.
    # Stripped first (Unicode White_Space), then matched with Python's ``\s`` (which adds \x1c-\x1f).
    edge, space = openapi.STRIPPED, openapi.STRIPPED[:-1] + r"\x1c-\x1f]"
    part = f"[^@{space[1:-1]}{inputs.CONTROL_CHARACTERS}]"
    # Lengths are the stripped value's (at most 254), so the pattern bounds them, not maxLength.
    properties["email"]["pattern"] = f"^{edge}*{part}{{1,64}}@{part}{{1,94}}\\.{part}{{1,94}}{edge}*$"
    properties["email"].pop("maxLength", None)
    # Stripped first, then 6 to 20 of digits, spaces and ()-. after an optional +.
    properties["phone"]["pattern"] = (f"^{edge}*(?:\\+[0-9 ()\\-.]{{5,19}}|[0-9()\\-.][0-9 ()\\-.]{{4,18}})"
                                      f"[0-9()\\-.]{edge}*$")
    properties["phone"].pop("maxLength", None)
    return ref


COMPONENTS: dict[str, Any] = {}
JOB_REQUEST = _job_request_schema(COMPONENTS)
PROFILE = _profile_schema(COMPONENTS)
PROVIDER_EVENT = openapi.model_schema(ProviderEventIn, COMPONENTS)
PROVIDER_EVENT_HEADERS = [
    openapi.header("webhook-id", "Standard Webhooks message id: 1 to 120 printable ASCII characters, no spaces.",
                   {"type": "string", "pattern": f"^{WEBHOOK_ID.pattern}$"}, required=True),
    openapi.header("webhook-timestamp", "Standard Webhooks timestamp: Unix seconds.",
                   {"type": "string", "maxLength": MAX_TIMESTAMP_LENGTH}, required=True),
    openapi.header("webhook-signature", "Standard Webhooks signatures (`v1,<base64>`, space-separated).",
                   {"type": "string", "maxLength": MAX_SIGNATURE_LENGTH}, required=True),
    openapi.header(webhooks.PROVIDER_HEADER, "The provider that signed the event, whose secret verifies it.",
                   {"type": "string", "pattern": f"^{PROVIDER_ID.pattern}$"}, required=True),
]
