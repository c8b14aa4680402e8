"""Provider events: what a sandbox provider tells Errand happened on its side.

A real booking site tells its partner, with a signed webhook, that the customer paid on its
payment page or that a person took over a session; the sandbox does the same, so that
Errand's audit log learns of it without polling. An event is POSTed to
``Settings.effective_provider_events_url`` (configuration only: ``provider_events_url``,
else this server's own ``http://{host}:{port}/api/v1/provider-events``; never the ``Host``
of the request that caused it, which anyone can set)::

    {"type": "payment_completed" | "human_takeover" | "hold_expired", "provider_id": "…",
     "hold_id": "…" | null, "reference": "…" | null, "confirmation": "…" | null,
     "occurred_at": "2027-06-01T18:01:02Z"}

signed with the Standard Webhooks scheme (:mod:`errand.kit.webhooks`; headers
``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) under the sending provider's
own secret, ``Settings.provider_events_signing_secret(provider_id)``, and naming that
provider in the ``errand-provider-id`` header. The ``webhook-id`` is stable per event
(``pev_<type>_<hold or session id>``), so retries and duplicates are recognisable.

Events are sent after the transaction that caused them commits, from a background task,
with a few retries; a failed delivery is logged (ids and codes only) and never reaches
the page the visitor sees.

A hold that lapses unpaid is reported without anyone opening its page: :func:`sweep_holds`,
which the composition root runs periodically, releases lapsed holds and sends one
``hold_expired`` per hold that waited at a checkout page (the job API's and the web sites'
alike), claimed once in the database so several processes never report it twice. The web
sites' checkout pages also report a lapsed hold they serve; both carry the same
``webhook-id``, so the receiver applies one.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from errand.kit import clock, logging, webhooks
from errand.kit.crypto import canonical_json
from errand.kit.db import Database
from errand.models.sandbox_booking import SandboxBooking
from errand.sandbox import inventory

RETRY_DELAYS_SECONDS = (0.5, 2.0, 5.0)
TIMEOUT_SECONDS = 5.0
# Holds placed by the web sites without a reference carry this idempotency-key prefix.
SESSION_KEY_PREFIX = "web-session:"

log = logging.get_logger(__name__)


def reference_of(idempotency_key: str) -> str | None:
    """The caller's reference behind a hold's idempotency key; None for a web session's own key."""
    return None if idempotency_key.startswith(SESSION_KEY_PREFIX) else idempotency_key


def event(
    kind: str, provider_id: str, *, subject: str, hold_id: str | None, reference: str | None,
    confirmation: str | None = None, occurred_at: datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    """An event's ``webhook-id`` and body; ``subject`` (a hold or session id) makes the id unique."""
    body = {
        "type": kind, "provider_id": provider_id, "hold_id": hold_id, "reference": reference,
        "confirmation": confirmation, "occurred_at": clock.iso(occurred_at or clock.now()),
    }
    return f"pev_{kind}_{subject}", body


def hold_event(kind: str, booking: SandboxBooking, occurred_at: datetime | None = None) -> tuple[str, dict[str, Any]]:
    """:func:`event` ``kind`` (``payment_completed``, ``hold_expired``) about the hold ``booking``."""
    return event(kind, booking.provider_id, subject=booking.id, hold_id=booking.id,
                 reference=reference_of(booking.idempotency_key), confirmation=booking.confirmation,
                 occurred_at=occurred_at)


class ProviderEvents:
    """Signs and delivers provider events in the background, for one sandbox app.

    ``secret`` maps a provider id to its signing secret (read at each event: deriving it may
    create the data dir's key); ``url`` is the receiver's, from configuration.
    """

    def __init__(self, secret: Callable[[str], str], url: str,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._secret = secret
        self.url = url
        self._retry_delays = retry_delays
        self._transport = transport
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(self, message: tuple[str, dict[str, Any]]) -> None:
        """Deliver ``message`` (from :func:`event`) in the background; call it after the commit."""
        msg_id, body = message
        task = asyncio.create_task(self.deliver(self.url, msg_id, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, url: str, msg_id: str, body: dict[str, Any]) -> bool:
        """POST one signed event, retrying on connection errors and non-2xx answers; True once accepted."""
        payload = canonical_json(body).encode()
        provider_id = str(body["provider_id"])
        attempts = len(self._retry_delays) + 1
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, transport=self._transport) as client:
            for attempt in range(1, attempts + 1):
                # Signed per attempt: a retry carries a fresh timestamp, within the receiver's tolerance.
                headers = webhooks.sign_headers(self._secret(provider_id), msg_id, payload, at=clock.now())
                headers.update({"content-type": "application/json", webhooks.PROVIDER_HEADER: provider_id})
                try:
                    response = await client.post(url, content=payload, headers=headers)
                    if response.is_success:
                        return True
                    problem = f"status {response.status_code}"
                except httpx.HTTPError as exc:
                    problem = type(exc).__name__
                log.warning("provider_event_not_delivered", event_id=msg_id, attempt=attempt, problem=problem)
                if attempt < attempts:
                    await asyncio.sleep(self._retry_delays[attempt - 1])
        return False

    async def drain(self) -> None:
        """Wait for the deliveries under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def sweep_holds(db: Database, events: ProviderEvents) -> int:
    """Release every lapsed hold, and tell Errand once of each that waited at a checkout page.

    Returns how many ``hold_expired`` events were sent (in the background, after the commit:
    :meth:`ProviderEvents.drain` waits for them).
    """
    async with db.unit_of_work() as session:
        await inventory.release_expired_holds(session)
        lapsed = await inventory.claim_expiry_reports(session)
    for hold in lapsed:
        events.send(event("hold_expired", hold.provider_id, subject=hold.hold_id, hold_id=hold.hold_id,
                          reference=reference_of(hold.idempotency_key), occurred_at=hold.expired_at))
    return len(lapsed)
