"""The web sites' checkout pages (the handoff URLs) and one-time continue links.

``/web/{pid}/checkout/{token}``: the hold's summary and the card form, for whoever has the
URL (no cookie, no session: the token is the secret). The test card books the hold,
another is declined; an expired hold says so. Card data is validated, compared and
dropped (:mod:`errand.sandbox.cards`).

``/web/{pid}/resume/{token}``: the continue link an obstacle page offers; opening it once
moves the session into the opener's browser (:func:`errand.sandbox.web.sessions.take_over`).

Both tell Errand what happened (:mod:`errand.sandbox.notify`): ``payment_completed``,
``human_takeover``, and ``hold_expired`` when a checkout page finds its hold lapsed.
"""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit.db import Database
from errand.kit.errors import DomainError, NotFound
from errand.models.sandbox_booking import SandboxBooking
from errand.sandbox import cards, inventory, service
from errand.sandbox.faults import FaultInjector
from errand.sandbox.notify import ProviderEvents, event, hold_event
from errand.sandbox.web import pages, sessions
from errand.sandbox.web.routes import OBSTACLE_STEP, Visit, visit_dependency

class Checkouts:
    """The checkout pages and continue links of the web sites, over the database and Errand's event sender."""

    def __init__(self, db: Database, events: ProviderEvents) -> None:
        self.db = db
        self.events = events

    @staticmethod
    async def _hold(on: Visit, session: AsyncSession, token: str, *, lock: bool) -> SandboxBooking:
        booking = await inventory.load_by_handoff(session, token, lock=lock)
        if booking.provider_id != on.provider.id:
            raise NotFound("There is no checkout at this address.")
        return booking

    async def _report_if_expired(self, booking: SandboxBooking) -> None:
        """Tell Errand, once, that a web hold lapsed unpaid (found while serving its page)."""
        if inventory.public_status(booking) != "expired":
            return
        async with self.db.unit_of_work() as session:
            row = await sessions.claim_expiry_report(session, booking.id)
        if row is not None:
            self.events.send(hold_event("hold_expired", booking, occurred_at=booking.hold_expires_at))

    async def _show(self, on: Visit, token: str, booking: SandboxBooking) -> Response:
        shown = service.summary(booking)
        if shown["status"] == "held":
            return pages.checkout(on.site, on.urls, token, shown)
        if shown["status"] == "booked":
            return pages.confirmation(on.site, on.urls, shown)
        await self._report_if_expired(booking)
        return pages.checkout_expired(on.site, on.urls, shown)

    async def page(self, on: Visit, token: str) -> Response:
        async with self.db.unit_of_work(read_only=True) as session:
            booking = await self._hold(on, session, token, lock=False)
        return await self._show(on, token, booking)

    async def pay(self, on: Visit, token: str) -> Response:
        """Pay with the form's card: the test card books the hold (and Errand is told), another is declined."""
        form = cards.read_form(await on.request.body())
        number, problems = cards.card_number(form or {})
        paid = None
        async with self.db.unit_of_work() as session:
            booking = await self._hold(on, session, token, lock=True)
            if inventory.public_status(booking) != "held":
                pass
            elif number is None:
                return pages.checkout(on.site, on.urls, token, service.summary(booking), problems=problems, status=400)
            else:
                try:
                    booking = await service.pay(session, booking, number)
                except DomainError:
                    shown = service.summary(booking)
                    return pages.checkout(on.site, on.urls, token, shown, declined=True, status=402)
                paid = hold_event("payment_completed", booking)
        if paid is None:  # not payable (any more): show why, outside the transaction
            return await self._show(on, token, booking)
        self.events.send(paid)
        return on.go(on.urls.checkout(token))

    async def resume(self, on: Visit, token: str) -> Response:
        """Move the session into this browser, once, and continue it where it stood."""
        async with self.db.unit_of_work() as session:
            outcome, row = await sessions.take_over(session, on.provider.id, token)
        if outcome == "used":
            return pages.message(on.site, "takeover-used", "This link was already used",
                                 "This continue link works once, and it was already used.", 410, home=on.urls.home)
        if row is None:
            return pages.message(on.site, "session-expired" if outcome == "expired" else "not-found",
                                 "This link no longer works", "This booking session has ended.",
                                 410 if outcome == "expired" else 404, home=on.urls.home)
        self.events.send(event(
            "human_takeover", on.provider.id, subject=row.id, hold_id=row.hold_id, reference=row.reference,
        ))
        pending = row.obstacle if row.obstacle_cleared_at is None and row.choice else None
        step = OBSTACLE_STEP.get(pending or "", "details" if row.choice else "results")
        return on.go_step(step, row)


def routes(db: Database, faults: FaultInjector, events: ProviderEvents) -> APIRouter:
    """``/web/{provider_id}/checkout/{token}`` (GET shows, POST pays) and ``/web/{provider_id}/resume/{token}``."""
    checkouts = Checkouts(db, events)
    router = APIRouter(prefix="/web/{provider_id}", include_in_schema=False)
    On = Annotated[Visit, Depends(visit_dependency(faults))]

    @router.get("/checkout/{token}", name="web_checkout")
    async def checkout_page(on: On, token: str) -> Response:
        return await checkouts.page(on, token)

    @router.post("/checkout/{token}")
    async def pay(on: On, token: str) -> Response:
        return await checkouts.pay(on, token)

    @router.get("/resume/{token}", name="web_resume")
    async def resume(on: On, token: str) -> Response:
        return await checkouts.resume(on, token)

    return router
