"""What the jobs domain takes and answers: every type and constant a dialect needs from it.

A job request as the execution contract defines it, validated per scenario: these models are
the core's, shared by every dialect that creates jobs (REST and MCP): the required and
optional fields per scenario, the inline profile (flights also need passport details) and
every consent option with its default. Then what a job, its journal, its snapshots and its
payment look like, the job statuses, a search's query and offers (the providers' own
:class:`~errand.providers.base.SearchQuery` and :class:`~errand.providers.base.Offer`), and a
provider event's body and headers' limits (:mod:`errand.jobs.provider_events`).
"""

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator, model_validator,
)

from errand.kit import limits
from errand.kit.inputs import Date, IdempotencyKey, text
# A search's query and answer are the providers' own, re-exported for the dialects.
from errand.providers.base import Offer as Offer, SearchQuery as SearchQuery

# Job statuses: a job is active until it reaches a terminal one (the execution contract's list).
ACTIVE = ("pending", "running", "awaiting_approval")
TERMINAL = ("paused_payment", "completed", "no_availability", "needs_login", "captcha", "error", "cancelled")
STATUSES = ACTIVE + TERMINAL
# The task that runs a job (errand.jobs.tasks), enqueued in the unit of work that makes it pending.
RUN_JOB = "errand.run_job"

Scenario = Literal["restaurant", "hotel", "flight", "activity"]
SCENARIOS: tuple[str, ...] = ("restaurant", "hotel", "flight", "activity")
# Every string a job stores is bounded and free of control characters (errand.kit.inputs).
Text = text(200, min_length=1, strip=True)
HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Money = Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False, strict=True)]
CLIENT_METADATA_MAX_BYTES = 4096


def _bookable(day: date) -> date:
    problem = limits.date_problem(day)
    if problem is not None:
        raise ValueError(problem)
    return day


# A date a booking may be for, as YYYY-MM-DD: not past anywhere, within the horizon (errand.kit.limits).
BookingDate = Annotated[Date, AfterValidator(_bookable)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RestaurantParams(_Strict):
    restaurant_name: Text
    city: Text
    date: BookingDate
    time: HHMM
    covers: limits.PartySize
    cuisine: Text | None = None
    neighborhood: Text | None = None
    budget_per_person: Money | None = None


class HotelParams(_Strict):
    hotel_name: Text
    city: Text
    checkin: BookingDate
    checkout: Date
    adults: limits.Adults
    star_rating: int | None = Field(default=None, ge=1, le=5, strict=True)
    neighborhood: Text | None = None
    budget_max_per_night: Money | None = None
    room_preference: Text | None = None

    @model_validator(mode="after")
    def _stay(self) -> "HotelParams":
        if self.checkout <= self.checkin:
            raise ValueError("checkout must be after checkin")
        if (self.checkout - self.checkin).days > 30:
            raise ValueError("a stay is at most 30 nights")
        return self


class FlightParams(_Strict):
    origin: Text
    dest: Text
    date: BookingDate
    passengers: limits.Passengers
    return_date: BookingDate | None = None
    cabin_class: Literal["economy", "premium_economy", "business", "first"] | None = None
    targetAirline: Text | None = None
    targetPrice: Money | None = None
    targetDepartureTime: HHMM | None = None
    targetFlightNumber: Text | None = None

    @model_validator(mode="after")
    def _trip(self) -> "FlightParams":
        if self.origin.strip().lower() == self.dest.strip().lower():
            raise ValueError("origin and dest must differ")
        if self.return_date is not None and self.return_date < self.date:
            raise ValueError("return_date must not be before date")
        return self


class ActivityParams(_Strict):
    event_name: Text
    city: Text
    event_date: BookingDate
    num_tickets: limits.Tickets
    seat_type: Text | None = None
    budget_max_per_ticket: Money | None = None


PARAMS_MODELS: dict[str, type[BaseModel]] = {
    "restaurant": RestaurantParams, "hotel": HotelParams, "flight": FlightParams, "activity": ActivityParams,
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{6,20}$")


class Profile(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)  # personal data never reaches a log line

    first_name: Text
    last_name: Text
    email: text(254, strip=True)
    phone: text(40, strip=True)
    dob: Date | None = None
    passport_number: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9]{5,20}$")] | None = None
    passport_country: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]{2,3}$")] | None = None
    known_traveler_number: text(40, strip=True) | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("must be an e-mail address")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        if not _PHONE.match(value):
            raise ValueError("must be a phone number, e.g. +15551234567")
        return value


ProviderIds = Annotated[list[text(60, min_length=1, strip=True)], Field(max_length=50)]


class Consent(_Strict):
    allowTimeAdjustment: StrictBool = True
    maxTimeAdjustmentMinutes: int = Field(default=90, ge=0, le=720, strict=True)
    allowVenueSwitch: StrictBool = True
    # Errand's own: a switched venue may be booked outright (else it stops at payment or asks a human).
    allowAlternativeBooking: StrictBool = False
    maxRetries: int = Field(default=3, ge=0, le=10, strict=True)
    paymentPolicy: Literal["stop_before_cvc"] = "stop_before_cvc"
    allowedProviders: ProviderIds | None = None
    blockedProviders: ProviderIds = []
    maxJobDurationSeconds: int = Field(default=420, ge=5, le=3600, strict=True)


class ClientMetadata(BaseModel):
    """The caller's own ids, returned with the job; any further keys are kept as given.

    Strings are bounded and free of control characters; the whole object is at most
    :data:`CLIENT_METADATA_MAX_BYTES` bytes as JSON. ``idempotencyKey`` is 1 to 255 printable
    ASCII characters, as the ``Idempotency-Key`` header and MCP's ``idempotency_key``."""

    model_config = ConfigDict(extra="allow")

    agentId: text(200) | None = None
    userId: text(200) | None = None
    sessionId: text(200) | None = None
    idempotencyKey: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _bounded(self) -> "ClientMetadata":
        size = len(json.dumps(self.model_dump(), ensure_ascii=False, default=str).encode())
        if size > CLIENT_METADATA_MAX_BYTES:
            raise ValueError(f"must be at most {CLIENT_METADATA_MAX_BYTES} bytes as JSON")
        return self


class JobRequestBody(_Strict):
    scenario: Scenario
    params: dict[str, Any]


class JobCreate(BaseModel):
    """A validated job request: params already checked against the scenario's shape."""

    model_config = ConfigDict(hide_input_in_errors=True)  # personal data never reaches a log line

    scenario: Scenario
    params: dict[str, Any]
    profile_id: int | None = None
    profile: Profile | None = None
    consent: Consent
    client_metadata: ClientMetadata


class JobEvent(BaseModel):
    job_id: str
    step_index: int
    type: str
    timestamp: datetime
    message: str
    extra: dict[str, Any] = {}


class Payment(BaseModel):
    """The payment after a handoff (errand.jobs.payments): ``awaiting`` until the hold's
    ``expires_at``, then ``paid`` (with ``paid_at`` and the provider's ``confirmation``) or ``expired``."""

    status: Literal["awaiting", "paid", "expired"]
    expires_at: datetime | None
    paid_at: datetime | None = None
    confirmation: str | None = None


class JobView(BaseModel):
    id: str
    status: str
    scenario: str
    organization_name: str
    handoff_url: str | None
    session_url: str | None
    summary: str | None
    error: str | None
    decision_log: list[JobEvent]
    attempt_count: int
    used_fallback: bool
    provider_id: str | None
    result: dict[str, Any] | None
    client_metadata: dict[str, Any]
    approval_id: str | None = None
    payment: Payment | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class ProviderMetrics(BaseModel):
    provider_id: str
    success_rate: float
    total_attempts: int
    accepted_count: int
    manual_override_count: int
    failed_count: int
    last_event_at: datetime | None
    time_range_days: int


@dataclass
class SnapshotInfo:
    """One screenshot of a job (errand.jobs.snapshots), without its image."""

    id: str
    step: str
    url: str
    created_at: datetime


# A provider event's headers' limits, checked before anything else: what is stored fits its column
# (``webhook-id`` is the receipt's primary key), and nothing unbounded is hashed or compared.
WEBHOOK_ID = re.compile(r"[!-~]{1,120}")  # printable ASCII without spaces, at most 120
PROVIDER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,59}")
MAX_TIMESTAMP_LENGTH = 20
MAX_SIGNATURE_LENGTH = 1000  # a few ``v1,<base64>`` signatures, during a key rotation


class ProviderEventIn(BaseModel):
    """A provider event's body; fields beyond these are ignored and not stored: a provider may name
    the guest in its events, and Errand stores no personal data it has no use for."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["payment_completed", "human_takeover", "hold_expired"]
    provider_id: str = Field(min_length=1, max_length=60)
    hold_id: str | None = Field(default=None, max_length=120)
    reference: str | None = Field(default=None, max_length=255)
    confirmation: str | None = Field(default=None, max_length=120)
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class VerifiedEvent:
    """A provider event whose headers and signature checked out: its ``webhook-id`` and its body."""

    event_id: str
    event: ProviderEventIn


@dataclass
class Receipt:
    """What became of a provider event: applied to ``job_id`` (None: no job matched), or a ``duplicate``."""

    event_id: str
    type: str
    duplicate: bool = False
    job_id: str | None = None
