"""Routes of the reservations dialect. Each only translates; the rules live in the core."""

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from errand.api import openapi as doc
from errand.api.common import JSONBody, core_of
from errand.api.reservations import bodies
from errand.api.reservations.auth import Caller
from errand.api.reservations.schemas import (
    BookRequest, CancelRequest, ModifyRequest, PolicyIn, PolicyPatch, policy_body, transaction_body,
    transaction_detail_body,
)
from errand.bookings import service as bookings_service
from errand.bookings.schemas import TransactionView
from errand.guard import service as guard_service
from errand.guard.schemas import PolicyCreate, PolicyUpdate
from errand.identity import service as identity_service
from errand.kit import inputs
from errand.kit.errors import InvalidRequest

router = APIRouter()
# 1 to 255 printable ASCII characters, as over MCP (errand.kit.inputs.IdempotencyKey).
IdempotencyKey = Annotated[inputs.IdempotencyKey | None, Header(alias="Idempotency-Key")]


def _respond(txn: TransactionView, replayed: bool, ok_status: int) -> JSONBody:
    status = 202 if txn.status == "requires_approval" else ok_status
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONBody(transaction_body(txn), status_code=status, headers=headers)


@router.post("/agent/restaurant/book", status_code=201, summary="Book a table",
             **doc.describe(bodies.Transaction, 403, 404, 409, status=201, also=(202,), replayable=True))
async def book(body: BookRequest, request: Request, caller: Caller, idempotency_key: IdempotencyKey = None) -> JSONBody:
    """Book a table. 201 when confirmed; 202 with ``status: requires_approval`` when a policy
    asks for a human decision (capacity is held until then). Send an ``Idempotency-Key``:
    a retry with the same key and body replays the first response instead of booking again."""
    txn, replayed = await bookings_service.book(core_of(request), caller, body.to_core(), idempotency_key)
    return _respond(txn, replayed, 201)


@router.post("/agent/restaurant/cancel", summary="Cancel a reservation",
             **doc.describe(bodies.Transaction, 403, 404, 409, also=(202,), replayable=True))
async def cancel(body: CancelRequest, request: Request, caller: Caller, idempotency_key: IdempotencyKey = None) -> JSONBody:
    """Cancel a reservation by its transaction id and free its capacity. Cancelling a
    transaction that is already cancelled (or denied, or expired) is 409 INVALID_STATE."""
    txn, replayed = await bookings_service.cancel(
        core_of(request), caller, body.transaction_id, body.reason, idempotency_key
    )
    return _respond(txn, replayed, 200)


@router.post("/agent/restaurant/modify", summary="Modify a reservation",
             **doc.describe(bodies.Transaction, 403, 404, 409, also=(202,), replayable=True))
async def modify(body: ModifyRequest, request: Request, caller: Caller, idempotency_key: IdempotencyKey = None) -> JSONBody:
    """Change party size, time or customer details. Capacity and policies are checked again
    for the new slot; a change that needs approval answers 202 and keeps the current booking
    until it is decided."""
    txn, replayed = await bookings_service.modify(
        core_of(request), caller, body.transaction_id, body.to_core(), idempotency_key
    )
    return _respond(txn, replayed, 200)


@router.get("/transactions/{transaction_id}", summary="Get a transaction",
            **doc.describe(bodies.TransactionDetail, 403, 404))
async def get_transaction(transaction_id: str, request: Request, caller: Caller) -> JSONBody:
    """A transaction of your organization with its full audit trail."""
    async with core_of(request).db.unit_of_work(read_only=True) as session:
        detail = await bookings_service.get_transaction(session, caller, transaction_id)
    return JSONBody(transaction_detail_body(detail))


@router.get("/policies", summary="List policies", **doc.describe(bodies.PolicyList))
async def list_policies(request: Request, caller: Caller) -> JSONBody:
    """Your organization's policies, oldest first."""
    async with core_of(request).db.unit_of_work(read_only=True) as session:
        policies = await guard_service.policies.list_all(session, caller.organization_id)
    return JSONBody({"policies": [policy_body(p) for p in policies]})


@router.post("/policies", status_code=201, summary="Create a policy",
             **doc.describe(bodies.Policy, 403, status=201))
async def create_policy(body: PolicyIn, request: Request, caller: Caller) -> JSONBody:
    """Create a policy. Its config is validated for its type; a CUSTOM rule is compiled and
    trial-evaluated now, so a broken rule is refused here rather than at booking time."""
    identity_service.require_admin(caller, "Changing policies")
    try:
        data = PolicyCreate(name=body.name, type=body.type, config=body.config, enabled=body.enabled)
    except ValueError:
        raise InvalidRequest(
            "type: must be one of SPENDING_LIMIT, TIME_RESTRICTION, RATE_LIMIT, APPROVAL_REQUIRED, CUSTOM.",
            details=[{"field": "type", "message": "unknown policy type"}],
        ) from None
    async with core_of(request).db.unit_of_work() as session:
        policy = await guard_service.policies.create(session, caller.organization_id, data)
    return JSONBody(policy_body(policy), status_code=201)


@router.patch("/policies/{policy_id}", summary="Change a policy", **doc.describe(bodies.Policy, 403, 404))
async def update_policy(policy_id: str, body: PolicyPatch, request: Request, caller: Caller) -> JSONBody:
    """Change a policy's name, config or enabled flag (its type is fixed)."""
    identity_service.require_admin(caller, "Changing policies")
    data = PolicyUpdate(**body.model_dump(exclude_unset=True))
    async with core_of(request).db.unit_of_work() as session:
        policy = await guard_service.policies.update(session, caller.organization_id, policy_id, data)
    return JSONBody(policy_body(policy))


@router.delete("/policies/{policy_id}", status_code=204, summary="Delete a policy", response_class=Response,
               **doc.describe(None, 403, 404, status=204))
async def delete_policy(policy_id: str, request: Request, caller: Caller) -> Response:
    """Delete a policy."""
    identity_service.require_admin(caller, "Changing policies")
    async with core_of(request).db.unit_of_work() as session:
        await guard_service.policies.delete(session, caller.organization_id, policy_id)
    return Response(status_code=204)
