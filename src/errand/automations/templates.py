"""Agent templates: ready definitions an organization clones as a draft of type ``template``."""

from typing import Any

CATEGORIES: tuple[str, ...] = ("operations", "security", "billing", "hr", "custom")


def _template(template_id: str, category: str, name: str, description: str, trigger: dict[str, Any],
              steps: list[dict[str, Any]], conditions: list[dict[str, Any]] | None = None,
              definition_category: str | None = None) -> dict[str, Any]:
    return {"id": template_id, "category": category, "name": name, "description": description, "version": "1.0.0",
            "trigger": trigger, "conditions": conditions or [], "steps": steps, "conflict_behavior": "additive",
            "client_scope": "all", "agent_category": definition_category or category}


def _on(source: str, event_type: str, filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "bus_event", "source_product": source, "event_type": event_type, "filters": filters or []}


TEMPLATES: list[dict[str, Any]] = [
    _template(
        "tmpl_sla_escalation", "operations", "SLA Escalation",
        "Notifies the assigned technician and their manager 30 minutes before SLA breach",
        _on("psa", "ticket.sla_warning"),
        [{"type": "notification", "id": "notify_technician", "channel": "sms",
          "recipients": ["{{ event_payload.technician_phone }}"],
          "body": "SLA breach in {{ event_payload.minutes_left }} min: ticket {{ event_payload.ticket_id }}"},
         {"type": "notification", "id": "notify_manager", "channel": "email",
          "recipients": ["{{ event_payload.manager_email }}"],
          "subject": "SLA warning on {{ event_payload.ticket_id }}",
          "body": "Ticket {{ event_payload.ticket_id }} ({{ event_payload.priority }}) breaches its SLA in "
                  "{{ event_payload.minutes_left }} minutes."}],
    ),
    _template(
        "tmpl_p1_escalation", "operations", "P1 Escalation Notify",
        "SMS notify senior technicians when a ticket is escalated to P1",
        _on("psa", "ticket.escalated", [{"field": "escalated_to", "operator": "eq", "value": "p1"}]),
        [{"type": "notification", "id": "notify_senior", "channel": "sms", "recipients": ["+15551234567"],
          "body": "P1 escalation: {{ event_payload.ticket_id }}"}],
    ),
    _template(
        "tmpl_ransomware_isolation", "security", "Ransomware Isolation",
        "Classifies a critical threat, asks a human to confirm, then tells the RMM to isolate the device",
        _on("defend", "threat.detected", [{"field": "severity", "operator": "in", "value": ["high", "critical"]}]),
        [{"type": "ai_reason", "id": "assess_threat", "model": "premium",
          "prompt": "Assess this threat on {{ event_payload.device_name }}: {{ event_payload.threat }} "
                    "(confidence {{ event_payload.confidence }}). Should the device be isolated?",
          "output_schema": {"type": "object", "required": ["isolate", "reason"],
                            "properties": {"isolate": {"type": "boolean"}, "reason": {"type": "string"}}}},
         {"type": "branch", "id": "should_isolate", "condition": "steps.assess_threat.output.isolate",
          "if_false": "end"},
         {"type": "approval_gate", "id": "confirm_isolation", "timeout_minutes": 120,
          "message": "Confirm device isolation for {{ event_payload.device_name }}: "
                     "{{ steps.assess_threat.output.reason }}"},
         {"type": "notification", "id": "isolate_device", "channel": "webhook",
          "recipients": ["https://rmm.example.com/hooks/isolate"],
          "body": '{"device_id": "{{ event_payload.device_id }}", "action": "isolate"}'}],
        definition_category="security",
    ),
    _template(
        "tmpl_rebook_when_full", "operations", "Alternative When Full",
        "When a booking job finds no availability, proposes a similar venue and emails it to the admins",
        _on("errand", "job.failed", [{"field": "reason", "operator": "eq", "value": "no_availability"}]),
        [{"type": "ai_reason", "id": "propose_alternative", "model": "standard",
          "prompt": "{{ event_payload.venue_name }} had no table. Propose one similar restaurant in the same city.",
          "output_schema": {"type": "object", "required": ["restaurant_name", "city"],
                            "properties": {"restaurant_name": {"type": "string"}, "city": {"type": "string"}}}},
         {"type": "notification", "id": "suggest_alternative", "channel": "email", "recipients": ["role:admins"],
          "subject": "{{ event_payload.venue_name }} was full",
          "body": "Job {{ event_payload.job_id }} found no table at {{ event_payload.venue_name }}. A similar "
                  "choice: {{ steps.propose_alternative.output.restaurant_name }} "
                  "({{ steps.propose_alternative.output.city }})."}],
    ),
    _template(
        "tmpl_booking_digest", "operations", "Booking Confirmed Notice",
        "Emails the organization's admins whenever a restaurant booking is confirmed",
        _on("errand", "transaction.confirmed"),
        [{"type": "notification", "id": "notify_admins", "channel": "email", "recipients": ["role:admins"],
          "subject": "Booked: {{ event_payload.venue_name }}",
          "body": "Booking {{ event_payload.transaction_id }} for {{ event_payload.party_size }} at "
                  "{{ event_payload.venue_name }} is confirmed ({{ event_payload.amount_usd }} USD)."}],
    ),
    _template(
        "tmpl_large_approval_chat", "billing", "Large Approval To Chat",
        "Posts approvals above 5,000 USD to the team chat so someone decides quickly",
        _on("errand", "approval.requested", [{"field": "amount_usd", "operator": "gt", "value": 5000}]),
        [{"type": "notification", "id": "post_to_chat", "channel": "chat", "recipients": ["#approvals"],
          "body": "Approval {{ event_payload.approval_id }} waits: {{ event_payload.amount_usd }} USD, "
                  "expires {{ event_payload.expires_at }}."}],
        definition_category="finance",
    ),
    _template(
        "tmpl_invoice_overdue", "billing", "Overdue Invoice Reminder",
        "Sends the client a reminder when an invoice is two weeks overdue",
        _on("billing", "invoice.overdue", [{"field": "days_overdue", "operator": "gt", "value": 13}]),
        [{"type": "notification", "id": "remind_client", "channel": "email",
          "recipients": ["{{ event_payload.billing_email }}"],
          "subject": "Invoice {{ event_payload.invoice_id }} is overdue",
          "body": "Invoice {{ event_payload.invoice_id }} of {{ event_payload.amount_usd }} USD is "
                  "{{ event_payload.days_overdue }} days overdue."}],
        definition_category="finance",
    ),
    _template(
        "tmpl_onboarding_welcome", "hr", "New Hire Welcome",
        "Waits until the start date's morning, then welcomes a new employee in chat",
        _on("hr", "employee.onboarded"),
        [{"type": "wait", "id": "until_start", "duration": "1d"},
         {"type": "notification", "id": "welcome", "channel": "chat", "recipients": ["#general"],
          "body": "Please welcome our new colleague in {{ event_payload.department }}!"}],
        definition_category="onboarding",
    ),
]

BY_ID: dict[str, dict[str, Any]] = {template["id"]: template for template in TEMPLATES}
