"""The event catalog: every event type an agent may be triggered by.

Errand's own (``source_product`` ``errand``: one vocabulary with outbound webhooks and the
dashboard, RESOLUTIONS.md "Errand's own event types") beside the example products of the
contract (psa, defend, rmm). Payloads carry ids, statuses, amounts and venue names, never
personal data. ``id`` is ``source_product:event_type``.
"""

from typing import Any

CATEGORIES: tuple[str, ...] = ("service_desk", "security", "operations", "finance", "compliance", "communications",
                               "onboarding", "client_success")


def _field(path: str, label: str, kind: str, enum_values: list[str] | None = None) -> dict[str, Any]:
    field: dict[str, Any] = {"path": path, "label": label, "type": kind}
    if enum_values is not None:
        field["enum_values"] = enum_values
    return field


def _event(source: str, event_type: str, category: str, display_name: str, description: str,
           fields: list[dict[str, Any]], sample: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{source}:{event_type}", "source_product": source, "event_type": event_type,
            "category": category, "display_name": display_name, "description": description,
            "filterable_fields": fields, "sample_payload": sample}


_SCENARIO = _field("scenario", "Scenario", "enum", ["restaurant", "hotel", "flight", "activity"])
_PROVIDER = _field("provider_id", "Provider", "string")
_VENUE = _field("venue_name", "Venue", "string")
_JOB = {"job_id": "job_01hxyz4k2m9q8r7s6t5v4w3x2y", "scenario": "restaurant", "provider_id": "sandbox-tables",
        "venue_name": "Le Bernardin", "mode": "live"}
_TRANSACTION = {"transaction_id": "txn_01hxyz4k2m9q8r7s6t5v4w3x2y", "restaurant_id": "rst_le-bernardin-new-york",
                "venue_name": "Le Bernardin", "party_size": 4, "amount_usd": 900.0, "mode": "live"}
_APPROVAL = {"approval_id": "apr_01hxyz4k2m9q8r7s6t5v4w3x2y", "subject_type": "transaction",
             "subject_id": "txn_01hxyz4k2m9q8r7s6t5v4w3x2y", "amount_usd": 1350.0, "policy_id": "pol_01hxyz4k2m",
             "expires_at": "2026-03-09T16:23:01Z", "mode": "live"}
_EXECUTION = {"execution_id": "exec_01hxyz4k2m9q8r7s6t5v4w3x2y", "agent_id": "agent_system_payment_text",
              "credits_used": 20, "mode": "live"}

ERRAND_EVENTS: list[dict[str, Any]] = [
    _event("errand", "job.created", "operations", "Job Created",
           "An execution job was accepted and waits for the autopilot.", [_SCENARIO],
           {**_JOB, "status": "pending"}),
    _event("errand", "job.awaiting_approval", "operations", "Job Awaiting Approval",
           "A policy holds an execution job until an admin decides.", [_SCENARIO, _PROVIDER, _VENUE],
           {**_JOB, "status": "awaiting_approval", "approval_id": _APPROVAL["approval_id"], "amount_usd": 450.0}),
    _event("errand", "job.paused_payment", "finance", "Job Waiting For Payment",
           "A hold is placed and waits for the traveler to pay at the provider's checkout.",
           [_SCENARIO, _PROVIDER, _VENUE, _field("amount_usd", "Amount (USD)", "number")],
           {**_JOB, "status": "paused_payment", "amount_usd": 450.0, "hold_expires_at": "2026-03-09T14:38:01Z"}),
    _event("errand", "job.payment_completed", "finance", "Job Payment Completed",
           "The traveler paid; the booking is being confirmed.", [_SCENARIO, _PROVIDER, _VENUE],
           {**_JOB, "status": "payment_completed", "amount_usd": 450.0}),
    _event("errand", "job.hold_expired", "operations", "Job Hold Expired",
           "The traveler did not pay in time and the provider released the hold.", [_SCENARIO, _PROVIDER],
           {**_JOB, "status": "hold_expired"}),
    _event("errand", "job.completed", "operations", "Job Completed",
           "An execution job booked what was asked.", [_SCENARIO, _PROVIDER, _VENUE],
           {**_JOB, "status": "completed", "confirmation_code": "LB-4821", "amount_usd": 450.0}),
    _event("errand", "job.failed", "operations", "Job Failed",
           "An execution job ended without a booking; `reason` says why.",
           [_SCENARIO, _field("reason", "Reason", "enum", ["no_availability", "needs_login", "captcha", "error"])],
           {**_JOB, "status": "failed", "reason": "no_availability"}),
    _event("errand", "job.cancelled", "operations", "Job Cancelled", "An execution job was cancelled.",
           [_SCENARIO], {**_JOB, "status": "cancelled"}),
    _event("errand", "transaction.confirmed", "finance", "Booking Confirmed",
           "A restaurant booking was confirmed.",
           [_field("amount_usd", "Amount (USD)", "number"), _field("party_size", "Party size", "number"), _VENUE],
           {**_TRANSACTION, "status": "confirmed"}),
    _event("errand", "transaction.modified", "finance", "Booking Modified",
           "A confirmed restaurant booking was changed.",
           [_field("amount_usd", "Amount (USD)", "number"), _VENUE], {**_TRANSACTION, "status": "modified"}),
    _event("errand", "transaction.cancelled", "finance", "Booking Cancelled", "A restaurant booking was cancelled.",
           [_VENUE], {**_TRANSACTION, "status": "cancelled"}),
    _event("errand", "approval.requested", "compliance", "Approval Requested",
           "A policy asks a human to approve an action.",
           [_field("subject_type", "Subject", "enum", ["transaction", "job", "execution"]),
            _field("amount_usd", "Amount (USD)", "number")], {**_APPROVAL, "status": "pending"}),
    _event("errand", "approval.decided", "compliance", "Approval Decided", "An approval was approved or denied.",
           [_field("status", "Decision", "enum", ["approved", "denied"])], {**_APPROVAL, "status": "approved"}),
    _event("errand", "approval.expired", "compliance", "Approval Expired",
           "Nobody decided an approval before its deadline.", [], {**_APPROVAL, "status": "expired"}),
    _event("errand", "execution.completed", "operations", "Automation Completed",
           "An agent's execution finished all its steps.", [_field("agent_id", "Agent", "string")],
           {**_EXECUTION, "status": "completed"}),
    _event("errand", "execution.failed", "operations", "Automation Failed",
           "An agent's execution failed; `reason` says why.", [_field("agent_id", "Agent", "string")],
           {**_EXECUTION, "status": "failed", "reason": "credit_insufficient"}),
]

_PRIORITY = _field("priority", "Priority", "enum", ["p1", "p2", "p3", "p4"])
_CLIENT = _field("client_id", "Client", "string")

PRODUCT_EVENTS: list[dict[str, Any]] = [
    _event("psa", "ticket.created", "service_desk", "Ticket Created",
           "Fires when a new PSA ticket is opened by a client or technician", [_PRIORITY, _CLIENT],
           {"ticket_id": "tkt_abc123", "priority": "p2", "client_id": "cli_acme"}),
    _event("psa", "ticket.escalated", "service_desk", "Ticket Escalated", "A ticket moved to a higher priority.",
           [_field("escalated_to", "Escalated to", "enum", ["p1", "p2", "p3"]), _CLIENT],
           {"ticket_id": "tkt_abc123", "escalated_to": "p1", "client_id": "cli_acme"}),
    _event("psa", "ticket.sla_warning", "service_desk", "SLA Warning",
           "A ticket will breach its SLA within 30 minutes.",
           [_PRIORITY, _field("minutes_left", "Minutes left", "number")],
           {"ticket_id": "tkt_abc123", "priority": "p1", "minutes_left": 30, "client_id": "cli_acme"}),
    _event("defend", "threat.detected", "security", "Threat Detected", "Endpoint protection found a threat.",
           [_field("severity", "Severity", "enum", ["low", "medium", "high", "critical"]),
            _field("confidence", "Confidence", "number")],
           {"device_id": "dev_ws01", "device_name": "WORKSTATION-01", "threat": "ransomware", "severity": "critical",
            "confidence": 0.97, "client_id": "cli_acme"}),
    _event("defend", "device.isolated", "security", "Device Isolated", "A device was cut off the network.",
           [_CLIENT], {"device_id": "dev_ws01", "device_name": "WORKSTATION-01", "client_id": "cli_acme"}),
    _event("rmm", "device.offline", "operations", "Device Offline", "A monitored device stopped reporting.",
           [_field("device_type", "Device type", "enum", ["server", "workstation", "network"]), _CLIENT],
           {"device_id": "dev_srv02", "device_type": "server", "minutes_offline": 15, "client_id": "cli_acme"}),
    _event("rmm", "patch.failed", "operations", "Patch Failed", "A patch could not be installed.",
           [_field("patch_severity", "Patch severity", "enum", ["critical", "important", "moderate"])],
           {"device_id": "dev_ws01", "patch_id": "KB5034441", "patch_severity": "critical", "client_id": "cli_acme"}),
    _event("billing", "invoice.overdue", "finance", "Invoice Overdue", "A client invoice passed its due date.",
           [_field("days_overdue", "Days overdue", "number"), _CLIENT],
           {"invoice_id": "inv_2026_0311", "amount_usd": 4200.0, "days_overdue": 14, "client_id": "cli_acme"}),
    _event("hr", "employee.onboarded", "onboarding", "Employee Onboarded", "A new employee account was created.",
           [_field("department", "Department", "string")],
           {"employee_id": "emp_0042", "department": "engineering", "start_date": "2026-04-01"}),
]

EVENTS: list[dict[str, Any]] = ERRAND_EVENTS + PRODUCT_EVENTS
ERRAND_EVENT_TYPES: tuple[str, ...] = tuple(e["event_type"] for e in ERRAND_EVENTS)
