"""The reservations contract's vocabulary, shared by the two surfaces that speak it.

REST (``/api/v1/agent/…``) and MCP (``/api/v1/mcp``) both serve the AgentReserve contract,
so they name failures with the same UPPER_CASE codes; the customer, date-time and id fields they
take are :mod:`errand.bookings.schemas`' request inputs, shared with automations' product actions.
"""

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
