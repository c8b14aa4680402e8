"""Errand's own agents (``org_id`` "system"): visible to every organization, read-only but for
pausing and resuming, which each organization does for itself (``agent_statuses``)."""

from typing import Any

from errand.automations.schemas import SYSTEM_ORG


def _agent(agent_id: str, name: str, description: str, category: str, trigger: dict[str, Any],
           steps: list[dict[str, Any]], conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"id": agent_id, "org_id": SYSTEM_ORG, "name": name, "description": description, "type": "system",
            "status": "active", "category": category, "trigger": trigger, "conditions": conditions or [],
            "steps": steps, "conflict_behavior": "additive", "client_scope": "all", "execution_limit": None}


def _errand(event_type: str, filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "bus_event", "source_product": "errand", "event_type": event_type, "filters": filters or []}


SYSTEM_AGENTS: list[dict[str, Any]] = [
    _agent(
        "agent_system_payment_text", "Payment Reminder",
        "Texts the traveler when a booking is held and waits for payment, with the amount and the deadline.",
        "finance", _errand("job.paused_payment"),
        [{"type": "notification", "id": "text_traveler", "channel": "sms", "recipients": ["role:traveler"],
          "body": "Your booking at {{ event_payload.venue_name }} is held: pay {{ event_payload.amount_usd }} USD "
                  "before {{ event_payload.hold_expires_at }} to confirm it."}],
    ),
    _agent(
        "agent_system_approval_escalation", "Approval Escalation",
        "Escalates an approval nobody has decided after 30 minutes to the organization's admins.",
        "compliance", _errand("approval.requested"),
        [{"type": "wait", "id": "wait_30_minutes", "duration": "30m"},
         {"type": "product_action", "id": "check_approval", "operation": "approval.get",
          "params": {"approval_id": "{{ event_payload.approval_id }}"}},
         {"type": "branch", "id": "still_pending", "condition": 'steps.check_approval.output.status == "pending"',
          "if_false": "end"},
         {"type": "notification", "id": "escalate", "channel": "email", "recipients": ["role:admins"],
          "subject": "Approval {{ event_payload.approval_id }} is still waiting",
          "body": "An approval of {{ event_payload.amount_usd }} USD ({{ event_payload.subject_type }} "
                  "{{ event_payload.subject_id }}) has waited 30 minutes. It expires at "
                  "{{ event_payload.expires_at }}."}],
    ),
    _agent(
        "agent_system_finance_notify", "Large Booking Alert",
        "Tells finance about every confirmed booking above 1,000 USD.",
        "finance", _errand("transaction.confirmed", [{"field": "amount_usd", "operator": "gt", "value": 1000}]),
        [{"type": "notification", "id": "notify_finance", "channel": "email", "recipients": ["role:finance"],
          "subject": "Booking of {{ event_payload.amount_usd }} USD confirmed",
          "body": "Booking {{ event_payload.transaction_id }} at {{ event_payload.venue_name }} for "
                  "{{ event_payload.party_size }} was confirmed: {{ event_payload.amount_usd }} USD."}],
    ),
]

BY_ID: dict[str, dict[str, Any]] = {agent["id"]: agent for agent in SYSTEM_AGENTS}
