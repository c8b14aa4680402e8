"""INTERFACE (being built): queue messages in the notification outbox.

async def queue(session: AsyncSession, *, organization_id: str, env: str, execution_id: str, step_id: str,
                channel: str, recipients: list[str], subject: str | None, body: str,
                event_payload: dict[str, Any]) -> list[str]
    Resolves ``role:traveler`` (the job named by event_payload["job_id"]), ``role:admins``,
    ``role:finance`` (the organization's contacts), writes one row per recipient in the caller's
    transaction (idempotent per execution, step and recipient) and enqueues each delivery (sent
    after commit). Returns the notification ids. Raises errand.notify.errors.RecipientUnresolved
    (``recipient_unresolved``) or InvalidRecipient (``invalid_recipient``).
"""
