"""A ``product_action`` step: one Errand operation, run as the organization (issue 12, "Steps").

:func:`run` is what the engine calls for the step, outside any transaction and inside
``outbox_service.acting_for(execution_id)`` (so every event the operation records names the
execution, and no agent reacts to it: the loop guard). Each operation goes through the very
service function its REST route calls, so an automation meets the same rules as an API key:

- **Who acts.** The organization in the execution's mode, through its agent
  (:func:`errand.identity.service.agent_principal`): role ``agent``, so it may decide no approval
  (a gate is for people); every scenario; ``api_key_id`` ``agent:<agent id>``, which transactions
  and jobs keep as their maker; audit ``actor`` ``agent:<agent id>``.
- **Policies.** Bookings are judged as REST's are: a denial raises the same PolicyViolation
  (``policy_violation``, after its audit record), a RATE_LIMIT policy the same RateLimited, and a
  booking that needs approval answers ``status: requires_approval`` with its ``approval_id`` (the
  step completes; a later gate or agent may wait for the decision).
- **Idempotency.** Every write runs under the idempotency key ``automation:<execution id>:<step id>``
  (:func:`errand.guard.service.run_idempotent` in the scope of the REST route: ``restaurant.book``,
  ``restaurant.modify``, ``restaurant.cancel``, ``execution_job.cancel``; a job's
  ``clientMetadata.idempotencyKey``, replacing any the params give): a step resumed or retried after
  a crash replays the first answer and never books twice. A retried *execution* has a new id and
  books again, as intended. The same step with other params is ``idempotency_conflict``.
- **Rate limit.** REST counts each request against its key's daily limit; here each operation
  counts against the agent's, per organization (the organization default,
  ``ERRAND_DEFAULT_RATE_LIMIT_PER_DAY``), and a breach is the same RateLimited ``rate_limited``.
- **Validation.** ``params`` (templates already rendered) are the REST body of the operation and
  are checked by the same rules as the dialect's request models (camelCase or snake_case fields,
  bounded text without control characters, the party-size limit, ISO date-times): a bad value is
  InvalidRequest ``invalid_request`` whose ``details`` are ``[{path, message}]`` relative to
  ``params``. An unknown operation is InvalidRequest naming ``operation``.

Operations, their params and their output (JSON, snake_case; no customer contact: outputs are
shown in the execution trace):

``restaurant.book``
    params ``{restaurant_name, city, party_size, datetime, customer: {name, email?, phone?}}``
    (``POST /api/v1/agent/restaurant/book``).
``restaurant.modify``
    params ``{transaction_id, updates: {party_size?, datetime?, customer?}}``.
``restaurant.cancel``
    params ``{transaction_id, reason?}``.
    The three answer a transaction: ``transaction_id``, ``status`` (confirmed | requires_approval |
    modified | cancelled …), ``restaurant_name``, ``city``, ``party_size``, ``datetime`` (UTC ISO
    8601), ``local_datetime``, ``timezone``, ``reservation_id``, ``confirmation_code``,
    ``amount_usd``, ``provider_id``, ``replayed`` (the answer is the first run's); with an approval
    also ``approval_id``, ``approval_status``, ``approval_expires_at``; once cancelled ``cancelled_at``.
``execution_job.create``
    params: the ``POST /api/v1/jobs`` body ``{request: {scenario, params}, profile | profileId,
    consent?, clientMetadata?}``. Output ``{job_id, status, scenario, created}`` (``created`` false
    when the step's job already existed).
``execution_job.cancel``
    params ``{job_id}``. Output ``{job_id, status, scenario, replayed}``.
``approval.get``
    params ``{approval_id}``: one of the organization's approvals in the execution's mode, whatever
    it gates. Output ``{id, status, subject_type, subject_id, amount_usd, expires_at}``;
    ApprovalNotFound ``approval_not_found`` for another organization's.
"""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, Field, ValidationError
from pydantic.alias_generators import to_camel

from errand.automations.schemas import PRODUCT_OPERATIONS
from errand.bookings import service as bookings_service
from errand.bookings.schemas import (
    BookingChanges, BookingCreate, CamelIn, Customer, CustomerIn, CustomerPatch, CustomerPatchIn, DateTime, Name,
    PartySize, Reason, TransactionId, TransactionView,
)
from errand.guard import service as guard_service
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.jobs import service as jobs_service
from errand.kit import clock, inputs
from errand.kit.core import Core
from errand.kit.errors import InvalidRequest, RateLimited

__all__ = ["idempotency_key", "run"]

M = TypeVar("M", bound=BaseModel)
Operation = Callable[[Core, Principal, str, dict[str, Any]], Awaitable[dict[str, Any]]]


def idempotency_key(execution_id: str, step_id: str) -> str:
    """The key a step's write runs under: the same for a resumed step, new for a retried execution."""
    return f"automation:{execution_id}:{step_id}"


async def run(core: Core, *, organization_id: str, env: str, agent_id: str, execution_id: str, step_id: str,
              operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run ``operation`` (one of :data:`errand.automations.schemas.PRODUCT_OPERATIONS`) with ``params``
    for organization ``organization_id`` in mode ``env`` (live | test), as its agent ``agent_id``,
    for step ``step_id`` of execution ``execution_id``; returns the step's output (see the module).

    Opens its own units of work (call it outside any). Raises InvalidRequest (an unknown operation,
    bad params), RateLimited (the agent's daily limit, a RATE_LIMIT policy) and whatever the
    operation's REST route would answer: PolicyViolation, NotFound, TransactionNotFound,
    JobNotFound, ApprovalNotFound, InvalidState, Conflict (capacity, ``idempotency_conflict``),
    Unavailable (a provider or the database: a retry of the step converges)."""
    handler = _OPERATIONS.get(operation)
    if handler is None:
        raise InvalidRequest(f"operation: must be one of {', '.join(PRODUCT_OPERATIONS)}.",
                             details=[{"path": "operation", "message": "unknown operation"}])
    if not isinstance(params, dict):
        raise InvalidRequest(f"The {operation} params must be an object.",
                             details=[{"path": "", "message": "expected an object"}])
    async with core.db.unit_of_work(read_only=True) as session:
        principal = await identity_service.agent_principal(
            session, organization_id, env, agent_id, rate_limit_per_day=core.settings.default_rate_limit_per_day)
    # A system agent's id is the same in every organization: its count is kept per organization.
    retry_after = await core.rate_limits.hit_key_daily(f"{organization_id}:{principal.api_key_id}",
                                                       principal.rate_limit_per_day)
    if retry_after is not None:
        raise RateLimited(f"Agent {agent_id} may run {principal.rate_limit_per_day} operations per day.",
                          retry_after=retry_after)
    return await handler(core, principal, idempotency_key(execution_id, step_id), params)


# --- params: the reservations dialect's request fields (errand.bookings.schemas) -----------------------


class _Book(CamelIn):
    restaurant_name: Name
    city: Name
    party_size: PartySize
    datetime: DateTime
    customer: CustomerIn


class _Updates(CamelIn):
    party_size: PartySize | None = None
    datetime: DateTime | None = None
    customer: CustomerPatchIn | None = None


def _id_field(name: str) -> Any:
    return Field(validation_alias=AliasChoices(name, to_camel(name)))


class _Modify(CamelIn):
    transaction_id: TransactionId = _id_field("transaction_id")  # type: ignore[valid-type]
    updates: _Updates


class _Cancel(CamelIn):
    transaction_id: TransactionId = _id_field("transaction_id")  # type: ignore[valid-type]
    reason: Reason | None = None  # type: ignore[valid-type]


class _JobRef(CamelIn):
    job_id: TransactionId = _id_field("job_id")  # type: ignore[valid-type]


class _ApprovalRef(CamelIn):
    approval_id: TransactionId = _id_field("approval_id")  # type: ignore[valid-type]


def _parse(model: type[M], operation: str, params: dict[str, Any]) -> M:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        found = inputs.issues(exc)
        raise InvalidRequest(f"The {operation} params are invalid: {inputs.summarize(found)}.",
                             details=found) from None


# --- operations -----------------------------------------------------------------------------------------


def _transaction(txn: TransactionView, replayed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "transaction_id": txn.id, "status": txn.status, "restaurant_name": txn.restaurant_name, "city": txn.city,
        "party_size": txn.party_size, "datetime": clock.iso(txn.starts_at), "local_datetime": txn.local_start,
        "timezone": txn.timezone, "reservation_id": txn.reservation_id, "confirmation_code": txn.confirmation,
        "amount_usd": txn.amount_usd, "provider_id": txn.provider_id, "replayed": replayed,
    }
    if txn.approval is not None:
        out.update(approval_id=txn.approval.id, approval_status=txn.approval.status,
                   approval_expires_at=clock.iso(txn.approval.expires_at))
    if txn.status == "cancelled":
        out["cancelled_at"] = clock.iso(txn.cancelled_at)
    return out


async def _book(core: Core, principal: Principal, key: str, params: dict[str, Any]) -> dict[str, Any]:
    body = _parse(_Book, "restaurant.book", params)
    data = BookingCreate(restaurant_name=body.restaurant_name, city=body.city, party_size=body.party_size,
                         starts_at=body.datetime, customer=Customer(**body.customer.model_dump()))
    return _transaction(*await bookings_service.book(core, principal, data, key))


async def _modify(core: Core, principal: Principal, key: str, params: dict[str, Any]) -> dict[str, Any]:
    body = _parse(_Modify, "restaurant.modify", params)
    customer = None
    if body.updates.customer is not None and body.updates.customer.model_fields_set:
        customer = CustomerPatch(**body.updates.customer.model_dump(exclude_unset=True))
    changes = BookingChanges(party_size=body.updates.party_size, starts_at=body.updates.datetime, customer=customer)
    return _transaction(*await bookings_service.modify(core, principal, body.transaction_id, changes, key))


async def _cancel(core: Core, principal: Principal, key: str, params: dict[str, Any]) -> dict[str, Any]:
    body = _parse(_Cancel, "restaurant.cancel", params)
    return _transaction(*await bookings_service.cancel(core, principal, body.transaction_id, body.reason, key))


async def _create_job(core: Core, principal: Principal, key: str, params: dict[str, Any]) -> dict[str, Any]:
    metadata = params.get("clientMetadata")
    if metadata is None or isinstance(metadata, dict):
        params = {**params, "clientMetadata": {**(metadata or {}), "idempotencyKey": key}}
    data = jobs_service.validate_job_request(params)
    async with core.db.unit_of_work() as session:
        job, created = await jobs_service.create_job(session, principal, data, core.providers)
    return {"job_id": job.id, "status": job.status, "scenario": job.scenario, "created": created}


async def _cancel_job(core: Core, principal: Principal, key: str, params: dict[str, Any]) -> dict[str, Any]:
    body = _parse(_JobRef, "execution_job.cancel", params)
    job, replayed = await jobs_service.cancel_job(core, principal, body.job_id, key)
    return {"job_id": job.id, "status": job.status, "scenario": job.scenario, "replayed": replayed}


async def _get_approval(core: Core, principal: Principal, key: str, params: dict[str, Any]) -> dict[str, Any]:
    body = _parse(_ApprovalRef, "approval.get", params)
    async with core.db.unit_of_work(read_only=True) as session:
        # Whatever it gates (a booking, a job, an automation's gate): the organization's own, in this mode.
        approval = guard_service.approvals.view(
            await guard_service.approvals.get(session, principal.organization_id, body.approval_id, principal.env))
    return {"id": approval.id, "status": approval.status, "subject_type": approval.subject_type,
            "subject_id": approval.subject_id, "amount_usd": approval.amount_usd,
            "expires_at": clock.iso(approval.expires_at)}


_OPERATIONS: dict[str, Operation] = {
    "restaurant.book": _book,
    "restaurant.modify": _modify,
    "restaurant.cancel": _cancel,
    "execution_job.create": _create_job,
    "execution_job.cancel": _cancel_job,
    "approval.get": _get_approval,
}
