"""What the MCP tools take and give back.

Inputs accept snake_case (what the JSON Schema shows) and the REST bodies' camelCase
(``restaurantName``, ``partySize``, ``transactionId``…). Outputs are the REST responses'
camelCase bodies, so a transaction or a job reads the same over MCP as over REST, plus
``replayed`` where REST would have said it in a header.
"""

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from errand.bookings.schemas import CamelIn, CustomerPatchIn, DateTime, PartySize
from errand.bookings.schemas import TransactionView
from errand.jobs.schemas import TERMINAL, JobEvent, JobView, Offer
from errand.kit import clock, inputs

# --- inputs ------------------------------------------------------------------------------

# 1 to 255 printable ASCII characters, as REST's Idempotency-Key header (errand.kit.inputs).
IdempotencyKey = inputs.IdempotencyKey


def either(name: str, description: str, **constraints: Any) -> Any:
    """A tool argument known by its snake_case name and by the REST body's camelCase one."""
    camel = to_camel(name)
    names = (name, camel) if camel != name else (name,)
    return Field(validation_alias=AliasChoices(*names), description=description, **constraints)


class TimeSlot(CamelIn):
    """The generic booking shape's time: ``start`` is the seating time; ``end`` is optional."""

    start: DateTime = Field(description="ISO 8601; with an offset it is converted to the venue's local time, "
                                        "without one it is the venue's local time.")
    end: DateTime | None = Field(default=None, description="Optional; must be after start. The restaurant "
                                                           "decides how long a table is kept.")


class Updates(CamelIn):
    """The REST modify body's ``updates``: only the fields given change."""

    party_size: PartySize | None = None
    datetime: DateTime | None = None
    customer: CustomerPatchIn | None = None


# --- outputs -----------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True)


class Reservation(_Out):
    reservation_id: str | None = Field(description="The restaurant's reservation id; null while awaiting approval.")
    restaurant_name: str
    city: str
    party_size: int
    datetime: str = Field(description="Start, UTC, ISO 8601.")
    local_datetime: str = Field(description="Start in the restaurant's local time.")
    timezone: str
    confirmation: str | None = None
    cancelled_at: str | None = None


class Approval(_Out):
    approval_id: str
    status: str
    expires_at: str
    amount_usd: float
    action_digest: str


class Transaction(_Out):
    """A booking transaction, as the REST booking endpoints answer it."""

    transaction_id: str = Field(description="Use it to cancel or modify the booking.")
    status: str = Field(description="confirmed | modified | requires_approval | cancelled | denied | expired")
    reservation: Reservation
    amount_usd: float = Field(description="Price per person × party size, what spending policies see.")
    provider_id: str
    approval: Approval | None = Field(default=None, description="Present while a human must approve the booking.")
    pending_change: dict[str, Any] | None = Field(
        default=None, description="A modification awaiting approval; the booking is unchanged until then.")
    replayed: bool = Field(description="True when this is the stored answer to an earlier call with the same "
                                       "idempotency_key; nothing was done again.")


def transaction(txn: TransactionView, replayed: bool) -> Transaction:
    return Transaction(
        transaction_id=txn.id,
        status=txn.status,
        reservation=Reservation(
            reservation_id=txn.reservation_id, restaurant_name=txn.restaurant_name, city=txn.city,
            party_size=txn.party_size, datetime=clock.iso(txn.starts_at), local_datetime=txn.local_start,
            timezone=txn.timezone, confirmation=txn.confirmation,
            cancelled_at=clock.iso(txn.cancelled_at) if txn.status == "cancelled" else None,
        ),
        amount_usd=txn.amount_usd,
        provider_id=txn.provider_id,
        approval=Approval(
            approval_id=txn.approval.id, status=txn.approval.status, expires_at=clock.iso(txn.approval.expires_at),
            amount_usd=txn.approval.amount_usd, action_digest=txn.approval.action_digest,
        ) if txn.approval is not None else None,
        pending_change=txn.pending_change,
        replayed=replayed,
    )


class OfferOut(_Out):
    provider_id: str
    scenario: str
    venue_id: str
    venue_name: str
    city: str
    unit: str = Field(description="'table', a room type, a cabin or a seat type.")
    unit_name: str
    start: str = Field(description="Venue-local YYYY-MM-DDTHH:MM (hotels: the check-in date).")
    end: str | None = Field(default=None, description="Hotels: the checkout date.")
    quantity: int
    unit_price_usd: float
    total_price_usd: float
    remaining: int = Field(description="How many more the provider can still sell at this start.")
    attributes: dict[str, Any] = {}


class Availability(_Out):
    """Offers nearest to the asked time first."""

    scenario: str
    date: str
    time: str | None
    count: int
    truncated: bool = Field(description="True when more offers exist than `limit` allowed to show.")
    offers: list[OfferOut]


def availability(scenario: str, date: str, time: str | None, offers: list[Offer], limit: int) -> Availability:
    shown = offers[:limit]
    return Availability(
        scenario=scenario, date=date, time=time, count=len(shown), truncated=len(offers) > limit,
        offers=[OfferOut(**o.model_dump()) for o in shown],
    )


class JobEventOut(_Out):
    """One event; decision events carry more fields (fromTime, toTime, providerId…)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True,
                              extra="allow")

    type: str
    timestamp: str
    message: str
    step_index: int | None = None


_EVENT_FIELDS = {"type", "timestamp", "message", "stepIndex", "step_index"}


def _event(event: JobEvent, with_step: bool) -> JobEventOut:
    extra = {k: v for k, v in event.extra.items() if k not in _EVENT_FIELDS}
    return JobEventOut(type=event.type, timestamp=clock.iso(event.timestamp), message=event.message,
                       step_index=event.step_index if with_step else None, **extra)


class JobPayment(_Out):
    """The payment after a handoff, as the job's GET shows it."""

    status: str = Field(description="awaiting (the end user can pay at handoffUrl until expiresAt) | paid "
                                    "(the job is completed; see confirmation) | expired (the hold lapsed unpaid; "
                                    "nothing was booked and handoffUrl is null)")
    expires_at: str | None = Field(description="When the provider's hold lapses, if it said.")
    paid_at: str | None = None
    confirmation: str | None = None


class ExecutionJob(_Out):
    """An execution job, as ``GET /api/v1/execution-jobs/{jobId}`` answers it."""

    job_id: str
    status: str = Field(description="pending | running | awaiting_approval | paused_payment | completed | "
                                    "no_availability | needs_login | captcha | error | cancelled")
    terminal: bool = Field(description="True once the status will not change again: stop polling.")
    scenario: str
    organization_name: str
    handoff_url: str | None = Field(description="On paused_payment: the page where the end user pays.")
    session_url: str | None
    summary: str | None
    error: str | None
    decision_log: list[JobEventOut]
    attempt_count: int
    used_fallback: bool
    provider_id: str | None
    result: dict[str, Any] | None
    payment: JobPayment | None = Field(default=None, description="Null before a handoff; after one, whether the "
                                                                 "end user paid or the hold expired.")
    approval_id: str | None
    client_metadata: dict[str, Any]
    created_at: str
    updated_at: str
    completed_at: str | None
    replayed: bool = Field(default=False, description="True when the idempotency key returned the answer of an "
                                                      "earlier call (the job created or cancelled first).")


def execution_job(job: JobView, replayed: bool = False) -> ExecutionJob:
    return ExecutionJob(
        job_id=job.id, status=job.status, terminal=job.status in TERMINAL, scenario=job.scenario,
        organization_name=job.organization_name, handoff_url=job.handoff_url, session_url=job.session_url,
        summary=job.summary, error=job.error, decision_log=[_event(e, False) for e in job.decision_log],
        attempt_count=job.attempt_count, used_fallback=job.used_fallback, provider_id=job.provider_id,
        result=job.result, approval_id=job.approval_id, client_metadata=job.client_metadata,
        payment=None if job.payment is None else JobPayment(
            status=job.payment.status, expires_at=clock.iso(job.payment.expires_at),
            paid_at=clock.iso(job.payment.paid_at), confirmation=job.payment.confirmation),
        created_at=clock.iso(job.created_at), updated_at=clock.iso(job.updated_at),
        completed_at=clock.iso(job.completed_at), replayed=replayed,
    )


class JobAudit(_Out):
    """Every event of a job, oldest first."""

    job_id: str
    count: int
    events: list[JobEventOut]


def job_audit(job_id: str, events: list[JobEvent]) -> JobAudit:
    return JobAudit(job_id=job_id, count=len(events), events=[_event(e, True) for e in events])
