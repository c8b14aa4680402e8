"""The booking flow of the web sites: search → results → details → (obstacle) → checkout.

Real HTML forms: every successful POST answers 303 to the next page, every refused one
renders its page again with a 4xx status and the messages. State lives in the visitor's
session row (:mod:`errand.sandbox.web.sessions`), found by the token in the URL; a token
that names no live session answers 410. Each request is one unit of work; a page rendered
inside it is returned once it commits.

:class:`Flow` holds one method per step; :func:`routes` maps the site's URLs onto them.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit.crypto import constant_time_equal
from errand.kit.db import Database
from errand.kit.errors import Conflict, InvalidRequest
from errand.models.sandbox_web_session import SandboxWebSession
from errand.sandbox import catalog
from errand.sandbox.cards import read_form
from errand.sandbox.catalog import Provider
from errand.sandbox.common import absolute_url
from errand.sandbox.faults import FaultInjector
from errand.sandbox.errors import Unbookable, VenueNotServed
from errand.sandbox.web import pages, sessions
from errand.sandbox.web.pages import Urls
from errand.sandbox.web.sites import SITES, Site, first, read_details, read_search, traveler

SANDBOX_PASSWORD = "sandbox"
_NOTICES = {
    "taken": "Sorry, that option was just taken. Please choose another.",
    "signed-in": "You are signed in. Check your details and continue.",
    "verified": "Thanks, you are verified. Check your details and continue.",
}
# The step (route name) where each obstacle is met.
OBSTACLE_STEP = {"login": "sign_in", "captcha": "verify"}


class Visit:
    """One request to a site: its provider, its look, its URLs."""

    def __init__(self, request: Request, provider: Provider) -> None:
        self.request = request
        self.provider = provider
        self.site: Site = SITES[provider.id]
        self.urls = Urls(lambda name, **params: absolute_url(request, name, **params), provider.id)

    def go(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def go_step(self, name: str, row: SandboxWebSession, notice: str | None = None) -> RedirectResponse:
        return self.go(self.urls.step(name, row.token) + (f"?notice={notice}" if notice else ""))

    def expired(self) -> Response:
        return pages.message(self.site, "session-expired", "Your session has ended",
                             "This booking session has ended or continues in another browser.", 410,
                             home=self.urls.home)

    def notice(self) -> str | None:
        return _NOTICES.get(self.request.query_params.get("notice", ""))


def visit_dependency(faults: FaultInjector) -> Callable[[Request, str], Awaitable[Visit]]:
    async def visit(request: Request, provider_id: str) -> Visit:
        """The site's provider (404 for one without a site), after its injected faults."""
        provider = catalog.require_browser(provider_id)
        await faults.apply(provider_id, job_api=False)
        return Visit(request, provider)

    return visit


class _Ended(Exception):
    """The visitor's session has ended or continues in another browser: the step answers 410."""


class Flow:
    """The steps of one sandbox's web sites, over its database, faults and hold lifetime."""

    def __init__(self, db: Database, faults: FaultInjector, hold_ttl_seconds: int) -> None:
        self.db = db
        self.faults = faults
        self.hold_ttl_seconds = hold_ttl_seconds

    @staticmethod
    async def _row(session: AsyncSession, on: Visit, sid: str, *, lock: bool = False) -> SandboxWebSession:
        row = await sessions.load(session, on.provider.id, sid, lock=lock)
        if row is None:
            raise _Ended
        return row

    async def _read(self, on: Visit, sid: str) -> SandboxWebSession:
        """The visitor's session, read in a unit of its own."""
        async with self.db.unit_of_work(read_only=True) as session:
            return await self._row(session, on, sid)

    # --- search and results -------------------------------------------------------------

    async def search(self, on: Visit) -> Response:
        form = read_form(await on.request.body())
        values, problems = read_search(on.site, form or {})
        if problems:
            return pages.search(on.site, on.urls, values, problems, status=400)
        async with self.db.unit_of_work() as session:
            row = await sessions.start(session, on.provider, values, self.faults.roll_obstacle(on.provider.id))
        return on.go_step("results", row)

    async def results(self, on: Visit, sid: str) -> Response:
        async with self.db.unit_of_work(read_only=True) as session:
            row = await self._row(session, on, sid)
            found = await sessions.listing(session, on.provider, row)
        return pages.results(on.site, on.urls, row, found, on.notice())

    async def select(self, on: Visit, sid: str) -> Response:
        wanted = first(read_form(await on.request.body()) or {}, "offer")
        async with self.db.unit_of_work() as session:
            row = await self._row(session, on, sid, lock=True)
            found = await sessions.listing(session, on.provider, row)
            offer = next((o for o in found.offers if sessions.offer_key(o) == wanted), None)
            if offer is None:
                return on.go_step("results", row, "taken")
            row.choice = sessions.choice_of(offer)
        return on.go_step("details", row)

    # --- the traveler's details and the hold ----------------------------------------------

    async def details(self, on: Visit, sid: str) -> Response:
        row = await self._read(on, sid)
        if row.choice is None:
            return on.go_step("results", row)
        values = {**(row.guest or {}), "reference": row.reference or ""}
        return pages.details(on.site, on.urls, row, values, message=on.notice())

    async def submit_details(self, on: Visit, sid: str) -> Response:
        """Keep the details, then: the reference's earlier hold, an obstacle, a sell-out, or a new hold."""
        form = read_form(await on.request.body())
        values, problems = read_details(on.site, form or {})
        if form is None:
            problems = {"form": "The form could not be read; please try again."}
        reference = values.get("reference") or None
        async with self.db.unit_of_work() as session:
            row = await self._row(session, on, sid, lock=True)
            if reference and "reference" not in problems:
                existing = await sessions.hold_by_reference(session, on.provider.id, reference)
                if existing is not None and existing.handoff_token:
                    return on.go(on.urls.checkout(existing.handoff_token))
            if row.choice is None:
                return on.go_step("results", row)
            if problems:
                return pages.details(on.site, on.urls, row, values, problems, status=400)
            row.guest = {k: v for k, v in values.items() if k != "reference" and v}
            row.reference = reference
            return await self._hold(session, on, row, values)

    async def _hold(self, session: AsyncSession, on: Visit, row: SandboxWebSession,
                    values: dict[str, str]) -> Response:
        """Past the details: the offer vanishes, an obstacle stands, or the offer is held for checkout."""
        if sessions.vanishes(on.provider, row):
            return _sell_out(on, row, vanished=True)
        obstacle = sessions.pending_obstacle(on.provider, row)
        if obstacle is not None:
            sessions.meet_obstacle(row, obstacle)
            return on.go_step(OBSTACLE_STEP[obstacle], row)
        try:
            async with session.begin_nested():
                booking = await sessions.place_hold(session, on.provider, row, traveler(row.guest),
                                                    self.hold_ttl_seconds)
        except (Unbookable, VenueNotServed):
            return _sell_out(on, row, vanished=False)
        except InvalidRequest as exc:
            return pages.details(on.site, on.urls, row, values, {"form": exc.message}, status=400)
        except Conflict:
            # A twin submission with the same reference won the race: show its hold.
            existing = await sessions.hold_by_reference(session, on.provider.id, row.reference or "")
            if existing is None or not existing.handoff_token:
                raise
            return on.go(on.urls.checkout(existing.handoff_token))
        assert booking.handoff_token is not None
        return on.go(on.urls.checkout(booking.handoff_token))

    # --- obstacles: a login wall, a CAPTCHA -------------------------------------------------

    async def obstacle_page(self, on: Visit, sid: str, kind: str) -> Response:
        row = await self._read(on, sid)
        if row.obstacle != kind or row.obstacle_cleared_at is not None or row.choice is None:
            return on.go_step("details", row)
        return pages.login_wall(on.site, on.urls, row) if kind == "login" else pages.captcha(on.site, on.urls, row)

    async def sign_in(self, on: Visit, sid: str) -> Response:
        form = read_form(await on.request.body()) or {}
        async with self.db.unit_of_work() as session:
            row = await self._row(session, on, sid, lock=True)
            if row.obstacle != "login" or row.obstacle_cleared_at is not None:
                return on.go_step("details", row)
            if not first(form, "username") or not constant_time_equal(first(form, "password"), SANDBOX_PASSWORD):
                return pages.login_wall(on.site, on.urls, row, "Wrong username or password.", status=401)
            sessions.clear_obstacle(row)
        return on.go_step("details", row, "signed-in")

    async def verify(self, on: Visit, sid: str) -> Response:
        answer = first(read_form(await on.request.body()) or {}, "captcha_answer").replace(" ", "").upper()
        async with self.db.unit_of_work() as session:
            row = await self._row(session, on, sid, lock=True)
            if row.obstacle != "captcha" or row.obstacle_cleared_at is not None:
                return on.go_step("details", row)
            if not row.captcha_answer or not constant_time_equal(answer, row.captcha_answer):
                sessions.new_captcha(row)
                return pages.captcha(on.site, on.urls, row, "That was not right. Try these letters.", status=403)
            sessions.clear_obstacle(row)
        return on.go_step("details", row, "verified")


def _sell_out(on: Visit, row: SandboxWebSession, *, vanished: bool) -> Response:
    """The chosen offer is gone: forget it (and hide it from this visitor, if it vanished on purpose)."""
    choice: dict[str, Any] = row.choice or {}
    if vanished:
        row.vanished = [*row.vanished, choice.get("offer")]
    row.choice = None
    what = " ".join(str(choice.get(k) or "") for k in ("venue_name", "unit_name", "start")).strip()
    return pages.sold_out(on.site, on.urls, row, what or "this option")


async def _answer(on: Visit, step: Awaitable[Response]) -> Response:
    """What a step answers; 410 when the visitor's session has ended."""
    try:
        return await step
    except _Ended:
        return on.expired()


def routes(db: Database, faults: FaultInjector, hold_ttl_seconds: int) -> APIRouter:
    """The sites' URLs under ``/web/{provider_id}``, each answered by one step of a :class:`Flow`."""
    flow = Flow(db, faults, hold_ttl_seconds)
    router = APIRouter(prefix="/web/{provider_id}", include_in_schema=False)
    On = Annotated[Visit, Depends(visit_dependency(faults))]

    @router.get("/", name="web_home")
    async def home(on: On) -> Response:
        return pages.search(on.site, on.urls)

    @router.get("")
    async def home_without_slash(on: On) -> Response:
        """The site's address as people type it; redirects to its home under the configured URL."""
        return on.go(on.urls.home)

    @router.post("/search", name="web_search")
    async def search(on: On) -> Response:
        return await flow.search(on)

    @router.get("/s/{sid}/results", name="web_results")
    async def results(on: On, sid: str) -> Response:
        return await _answer(on, flow.results(on, sid))

    @router.post("/s/{sid}/select", name="web_select")
    async def select(on: On, sid: str) -> Response:
        return await _answer(on, flow.select(on, sid))

    @router.get("/s/{sid}/details", name="web_details")
    async def details(on: On, sid: str) -> Response:
        return await _answer(on, flow.details(on, sid))

    @router.post("/s/{sid}/details")
    async def submit_details(on: On, sid: str) -> Response:
        return await _answer(on, flow.submit_details(on, sid))

    @router.get("/s/{sid}/sign-in", name="web_sign_in")
    async def sign_in_page(on: On, sid: str) -> Response:
        return await _answer(on, flow.obstacle_page(on, sid, "login"))

    @router.get("/s/{sid}/verify", name="web_verify")
    async def verify_page(on: On, sid: str) -> Response:
        return await _answer(on, flow.obstacle_page(on, sid, "captcha"))

    @router.post("/s/{sid}/sign-in")
    async def sign_in(on: On, sid: str) -> Response:
        return await _answer(on, flow.sign_in(on, sid))

    @router.post("/s/{sid}/verify")
    async def verify(on: On, sid: str) -> Response:
        return await _answer(on, flow.verify(on, sid))

    return router
