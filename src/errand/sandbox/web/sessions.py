"""A visitor's session at a sandbox web site, and what each step of the flow does to it.

Sessions live in ``sandbox_web_sessions`` (not in memory), found by the unguessable token
in their URLs, so every process serving the sandbox continues them and a person can take
one over from another browser (:func:`take_over`, which moves it to a new token: the old
URLs stop working). Offers are recomputed from the stored search at every step, with the
same scenario code the job API uses; a hold goes through :func:`errand.sandbox.service.checkout`,
so it is atomic and never oversells.

Obstacles, per provider and venue (``providers.json``) or rolled per session from the
injected fault rates: a login wall or a CAPTCHA meets the visitor when the details form is
submitted; a ``sold_out_while_typing`` venue loses the first offer chosen in a session at
that same moment.
"""

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit import clock
from errand.kit.ids import new_id
from errand.models.sandbox_booking import SandboxBooking
from errand.models.sandbox_web_session import SandboxWebSession
from errand.sandbox import inventory, service
from errand.sandbox.catalog import Provider
from errand.sandbox.errors import NotServed, VenueNotServed
from errand.sandbox.notify import SESSION_KEY_PREFIX
from errand.sandbox.offers import Offer, Pick, Query

SESSION_TTL = timedelta(hours=2)
# Letters a person cannot confuse with one another.
_CAPTCHA_LETTERS = "ACDEFHJKMNPRTUVWXY34679"


@dataclass(frozen=True)
class Listing:
    """What a results page shows: offers, or the reason there are none."""

    offers: list[Offer]
    reason: str | None  # unknown-venue | not-served | none-available


def offer_key(offer: Offer) -> str:
    return f"{offer.venue_id}|{offer.unit}|{offer.start.isoformat(timespec='minutes')}"


def token() -> str:
    return secrets.token_urlsafe(24)


async def start(
    session: AsyncSession, provider: Provider, search: dict[str, Any], obstacle: str | None
) -> SandboxWebSession:
    """A new session for a search that passed validation; ``obstacle`` comes from the fault rates."""
    row = SandboxWebSession(
        id=new_id("sws"), provider_id=provider.id, token=token(), scenario=provider.scenarios[0],
        search=search, obstacle=obstacle, vanished=[], holds_placed=0, expires_at=clock.now() + SESSION_TTL,
    )
    session.add(row)
    await session.flush()
    return row


async def load(
    session: AsyncSession, provider_id: str, url_token: str, *, lock: bool = False
) -> SandboxWebSession | None:
    """The live session behind a URL token; None when unknown, expired or moved by a takeover."""
    stmt = select(SandboxWebSession).where(
        SandboxWebSession.token == url_token, SandboxWebSession.provider_id == provider_id
    )
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()
    if row is None or row.expires_at <= clock.now():
        return None
    return row


def query_of(row: SandboxWebSession) -> Query:
    search = row.search
    return Query(
        scenario=row.scenario, day=date.fromisoformat(search["date"]), quantity=int(search["quantity"]),
        city=search.get("city") or None, venue=search.get("venue") or None, origin=search.get("origin") or None,
        dest=search.get("dest") or None,
        end_day=date.fromisoformat(search["end_date"]) if search.get("end_date") else None,
    )


async def listing(session: AsyncSession, provider: Provider, row: SandboxWebSession) -> Listing:
    """The offers the results page lists now, less those that vanished under this visitor."""
    scenario = service.SCENARIOS[row.scenario]
    query = query_of(row)
    try:
        found = scenario.target(provider, query)
    except VenueNotServed:
        return Listing([], "unknown-venue")
    if not provider.serves(found.keys):
        return Listing([], "not-served")
    offers = [
        offer for venue in found.venues for offer in await scenario.offers(session, venue, query)
        if offer_key(offer) not in row.vanished
    ]
    return Listing(offers, None if offers else "none-available")


def choice_of(offer: Offer) -> dict[str, Any]:
    return {
        "offer": offer_key(offer), "venue_id": offer.venue_id, "venue_name": offer.venue_name,
        "unit": offer.unit, "unit_name": offer.unit_name, "start": offer.start.isoformat(timespec="minutes"),
        "end": offer.end.isoformat() if offer.end else None, "quantity": offer.quantity,
        "unit_usd": offer.unit_price_usd, "total_usd": offer.total_price_usd,
    }


def pick_of(choice: dict[str, Any]) -> Pick:
    start = datetime.fromisoformat(choice["start"])
    end = date.fromisoformat(choice["end"]) if choice.get("end") else None
    return Pick(venue_id=choice["venue_id"], unit=choice["unit"], day=start.date(), at=start.time(),
                end_day=end, quantity=int(choice["quantity"]))


def venue_keys(row: SandboxWebSession) -> tuple[str, ...]:
    """The obstacle keys of the chosen offer's venue (a flight: its number and route)."""
    found = service.SCENARIOS[row.scenario].lookup(row.choice["venue_id"]) if row.choice else None
    return found[1] if found else ()


def vanishes(provider: Provider, row: SandboxWebSession) -> bool:
    """Whether the chosen offer sells out now, while the visitor typed: the first choice at such a venue."""
    keys = venue_keys(row)
    return bool(row.choice) and not provider.sold_out_while_typing.isdisjoint(keys) and not row.vanished


def pending_obstacle(provider: Provider, row: SandboxWebSession) -> str | None:
    """The obstacle standing between this session's details and a hold, unless already passed."""
    if row.obstacle_cleared_at is not None:
        return None
    keys = venue_keys(row)
    if not provider.captcha.isdisjoint(keys):
        return "captcha"
    if not provider.login_wall.isdisjoint(keys):
        return "login"
    return row.obstacle


def meet_obstacle(row: SandboxWebSession, kind: str) -> None:
    """Record the obstacle and make sure its page can offer a one-time continue link."""
    row.obstacle = kind
    if row.takeover_token is None and row.takeover_used_at is None:
        row.takeover_token = token()
    if kind == "captcha" and row.captcha_answer is None:
        new_captcha(row)


def new_captcha(row: SandboxWebSession) -> None:
    row.captcha_answer = "".join(secrets.choice(_CAPTCHA_LETTERS) for _ in range(5))


def clear_obstacle(row: SandboxWebSession) -> None:
    row.obstacle_cleared_at = clock.now()
    row.captcha_answer = None


async def take_over(session: AsyncSession, provider_id: str, link: str) -> tuple[str, SandboxWebSession | None]:
    """Use a one-time continue link: ``("ok", session)``, or ``("used"|"unknown"|"expired", None)``.

    One conditional UPDATE marks the link used and moves the session to a new token, so of
    two openers exactly one wins, on every backend; the other sees ``used``.
    """
    now = clock.now()
    moved = await session.execute(
        update(SandboxWebSession)
        .where(
            SandboxWebSession.takeover_token == link, SandboxWebSession.provider_id == provider_id,
            SandboxWebSession.takeover_used_at.is_(None), SandboxWebSession.expires_at > now,
        )
        .values(takeover_used_at=now, token=token(), expires_at=now + SESSION_TTL)
        .returning(SandboxWebSession.id),
        execution_options={"synchronize_session": False},
    )
    session_id = moved.scalar_one_or_none()
    if session_id is not None:
        row = await session.get(SandboxWebSession, session_id, populate_existing=True)
        return "ok", row
    stmt = select(SandboxWebSession).where(
        SandboxWebSession.takeover_token == link, SandboxWebSession.provider_id == provider_id
    )
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        return "unknown", None
    return ("used" if row.takeover_used_at is not None else "expired"), None


async def hold_by_reference(session: AsyncSession, provider_id: str, reference: str) -> SandboxBooking | None:
    stmt = select(SandboxBooking).where(
        SandboxBooking.provider_id == provider_id, SandboxBooking.idempotency_key == reference
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def place_hold(
    session: AsyncSession, provider: Provider, row: SandboxWebSession, traveler: dict[str, str], ttl_seconds: int
) -> SandboxBooking:
    """Hold the chosen offer for the session's guest, under its reference (or a key of its own).

    Without a reference, a session's earlier live hold is released first: a visitor who
    went back and chose again holds one offer, not two. Raises ``Unbookable`` when the
    offer is gone and ``InvalidRequest`` when the venue refuses it; the caller runs it in a
    savepoint, since a refused hold may have written before it failed.
    """
    assert row.choice is not None
    scenario = service.SCENARIOS[row.scenario]
    found = scenario.lookup(row.choice["venue_id"])
    if found is None:
        raise NotServed("This offer is no longer sold here.")
    if row.hold_id is not None:
        earlier = await session.get(SandboxBooking, row.hold_id, with_for_update=True)
        if earlier is not None and earlier.status == "held":
            await inventory.release(session, earlier)
    key = row.reference or f"{SESSION_KEY_PREFIX}{row.id}:{row.holds_placed + 1}"
    booking = await service.checkout(
        session, provider, scenario, found[0], pick_of(row.choice),
        traveler=traveler, ttl_seconds=ttl_seconds, idempotency_key=key,
    )
    row.hold_id, row.holds_placed = booking.id, row.holds_placed + 1
    return booking


async def claim_expiry_report(session: AsyncSession, hold_id: str) -> SandboxWebSession | None:
    """The session whose hold this is, if its expiry was not reported yet (then it is marked reported)."""
    claimed = await session.execute(
        update(SandboxWebSession)
        .where(SandboxWebSession.hold_id == hold_id, SandboxWebSession.expiry_reported_at.is_(None))
        .values(expiry_reported_at=clock.now())
        .returning(SandboxWebSession.id),
        execution_options={"synchronize_session": False},
    )
    session_id = claimed.scalar_one_or_none()
    return None if session_id is None else await session.get(SandboxWebSession, session_id)
