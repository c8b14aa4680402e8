"""The errors bookings, the guard and identity declare: one class per code, raised with the message
only, and answered with the same wire code as before in the reservations dialect and MCP."""

import pytest

from errand.api.reservations import vocabulary
from errand.bookings import errors as bookings_errors
from errand.guard import errors as guard_errors
from errand.identity import errors as identity_errors
from errand.kit import errors as kit_errors
from errand.kit.errors import DomainError

# Every class these domains declare, with the kind and the reservations (and MCP) code it answers.
WIRE = {
    bookings_errors.TransactionNotFound: ("not_found", "NOT_FOUND"),
    guard_errors.ApprovalNotFound: ("not_found", "NOT_FOUND"),
    guard_errors.PolicyNotFound: ("not_found", "NOT_FOUND"),
    guard_errors.PolicyViolation: ("forbidden", "POLICY_VIOLATION"),
    kit_errors.IdempotencyConflict: ("conflict", "IDEMPOTENCY_CONFLICT"),
    identity_errors.MissingAuthorization: ("unauthorized", "UNAUTHORIZED"),
    identity_errors.InvalidAuthScheme: ("unauthorized", "UNAUTHORIZED"),
    identity_errors.EmptyApiKey: ("unauthorized", "UNAUTHORIZED"),
    identity_errors.MalformedApiKey: ("unauthorized", "UNAUTHORIZED"),
    identity_errors.InvalidApiKey: ("unauthorized", "UNAUTHORIZED"),
    identity_errors.AuthBackendUnavailable: ("unavailable", "AUTH_BACKEND_UNAVAILABLE"),
    identity_errors.ScenarioNotAllowed: ("forbidden", "POLICY_VIOLATION"),
    identity_errors.AmbiguousPrefix: ("conflict", "AMBIGUOUS_PREFIX"),
}


def _declared_in(module: object) -> set[type[DomainError]]:
    return {v for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, DomainError) and v.__module__ == module.__name__}  # type: ignore[attr-defined]


def test_every_declared_class_is_listed() -> None:
    declared = _declared_in(bookings_errors) | _declared_in(guard_errors) | _declared_in(identity_errors)
    assert declared == {cls for cls in WIRE if cls.__module__ != kit_errors.__name__}


@pytest.mark.parametrize("cls", list(WIRE), ids=lambda cls: cls.__name__)
def test_declared_once_raised_with_its_message_and_same_wire_code(cls: type[DomainError]) -> None:
    kind, wire = WIRE[cls]
    assert DomainError.declared[cls.code] is cls
    error = cls("Something is wrong.")
    assert (error.code, error.kind, error.message) == (cls.code, kind, "Something is wrong.")
    assert vocabulary.code_for(error.code) == wire


def test_a_second_declaration_of_a_code_is_refused() -> None:
    with pytest.raises(TypeError, match="declared twice"):
        type("Another", (bookings_errors.TransactionNotFound,), {"code": "policy_not_found"})
