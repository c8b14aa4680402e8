"""The reservations contract's vocabulary, shared by the two surfaces that speak it.

REST (``/api/v1/agent/…``) and MCP (``/api/v1/mcp``) both serve the AgentReserve contract,
so they take a customer the same way and name failures with the same UPPER_CASE codes.
"""

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, field_validator, model_validator
from pydantic.alias_generators import to_camel

from errand.kit import limits
from errand.kit.inputs import check_spellings, text

# Core codes whose name differs in this contract; every other code is upper-cased.
CODES = {
    "scenario_not_allowed": "POLICY_VIOLATION",
    "missing_authorization": "UNAUTHORIZED",
    "invalid_auth_scheme": "UNAUTHORIZED",
    "empty_api_key": "UNAUTHORIZED",
    "malformed_api_key": "UNAUTHORIZED",
    "invalid_api_key": "UNAUTHORIZED",
    "database_unavailable": "SERVICE_UNAVAILABLE",
    "database_busy": "SERVICE_UNAVAILABLE",
    "approval_not_found": "NOT_FOUND",
    "transaction_not_found": "NOT_FOUND",
    "policy_not_found": "NOT_FOUND",
    "job_not_found": "NOT_FOUND",
    "venue_not_served": "NOT_FOUND",
    "invalid_json": "INVALID_REQUEST",
    "missing_job_id": "INVALID_REQUEST",
}


def code_for(core_code: str) -> str:
    """The contract's UPPER_CASE code for a core code (REST and MCP alike)."""
    return CODES.get(core_code, core_code.upper())


def _matches(pattern: str, message: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


Name = text(200, min_length=1, strip=True)
Email = Annotated[text(254, strip=True), _matches(r"[^@\s]+@[^@\s]+\.[^@\s]+", "must be an e-mail address")]
Phone = Annotated[text(40, strip=True), _matches(r"\+?[0-9 ()\-.]{4,}", "must be a phone number, e.g. +15551234567")]


# One party-size limit for REST, MCP and execution jobs (errand.kit.limits).
PartySize = limits.PartySize
# Ids Errand minted are short ASCII (the column holds 40).
TransactionId = text(60, min_length=1)
Reason = text(500, multiline=True)


def _iso_datetime(value: object) -> object:
    """Only an ISO 8601 date and time: a bare date or a number is too easy to misread."""
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value.strip()):
        raise ValueError("must be an ISO 8601 date and time, e.g. 2027-03-20T19:00:00Z")
    return value.strip()


DateTime = Annotated[dt.datetime, BeforeValidator(_iso_datetime)]


class CamelIn(BaseModel):
    """Input accepted in camelCase (as the contract shows) and snake_case (as agents often send),
    but never both spellings of one field in one object (:func:`errand.kit.inputs.check_spellings`)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              hide_input_in_errors=True)  # what agents send may name a person

    _one_spelling = model_validator(mode="before")(check_spellings)


class CustomerIn(CamelIn):
    """The person the booking is for."""

    name: Name
    email: Email | None = None
    phone: Phone | None = None


class CustomerPatchIn(CamelIn):
    """Only the fields given change; email and phone may be cleared with null."""

    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None

    @field_validator("name")
    @classmethod
    def _name_cannot_be_cleared(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("cannot be null; leave it out to keep the current name")
        return value
