"""The autopilot: carries one job through its provider chain and says where it stopped.

For each provider in the plan: search (retrying transient errors with backoff, each
attempt a ``step_attempt``), choose an offer within the user's consent (``time_adjusted``
when the time moved), judge it against the organization's policies (``action_allowed`` /
``action_denied``, or a pause for approval), then check out: stop at the payment page
(``paused_payment``) or complete. A login wall, a CAPTCHA, a venue the provider does not
serve or no availability moves on to the next provider (``provider_fallback``).

Venues: a name no provider knows (under any spelling: names are compared through
:func:`errand.kit.names.normalise`) ends the job ``no_availability`` with the nearest names
("did you mean Le Bernardin?") and no switch (:func:`_unknown_venue`). When a venue that
exists cannot be booked and the user allowed it (``allowVenueSwitch``), a venue like it in
the same city is tried (``venue_switched``, :func:`_switch_venue`; what "like it" means is
:func:`errand.jobs.selection.likeness`). A switched venue is never booked on the autopilot's
word alone: it stops at the payment page, or asks a human (``awaiting_approval``) where the
provider would complete the booking, unless ``consent.allowAlternativeBooking``.

Every provider call that books carries an idempotency key derived from the job and the
offer, so a job re-run after a crash finds its first hold.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from errand.guard import service as guard_service
from errand.guard.schemas import ActionContext, Decision
from errand.jobs import journal, planner, snapshots
from errand.jobs.selection import Choice, Likeness, choose, likeness, query_for
from errand.kit import clock, crypto, names
from errand.kit.core import Core
from errand.kit.errors import DomainError
from errand.kit.ids import new_id
from errand.models import Job, ProviderOutcome
from errand.providers.base import Checkout, Offer, SearchQuery, VenueFacts
from errand.providers.errors import (
    CaptchaRequired, NeedsLogin, NoAvailability, ProviderUnavailable, VenueNotServed, VenueUnknown,
)

ACTOR = "executor"
# Final status when every provider failed, most telling first.
_FAILURE_ORDER = ("no_availability", "captcha", "needs_login", "error")
# How many times one provider's checkout may lose its slot to another booking and choose again: a
# job loses at most once per slot it aims at, and a site that keeps refusing (each checkout costs a
# browser session) is left for the next provider soon enough.
_MAX_RECHOICES = 5


@dataclass
class Outcome:
    status: str
    summary: str
    provider_id: str | None = None
    handoff_url: str | None = None
    session_url: str | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    pending_action: dict[str, Any] | None = None


@dataclass
class Failure:
    status: str  # the job status this failure alone would give
    reason: str  # provider_fallback reason
    message: str
    session_url: str | None = None
    suggestions: list[str] = field(default_factory=list)  # unknown_venue: the provider's nearest names


@dataclass
class Run:
    """One run of one job: its snapshot, the step being worked on, and what was tried."""

    core: Core
    job: Job
    step: int = 0
    attempts: int = 0
    used_fallback: bool = False
    failures: list[Failure] = field(default_factory=list)

    @property
    def consent(self) -> dict[str, Any]:
        return self.job.consent

    async def event(self, type: str, message: str, **extra: Any) -> None:
        async with self.core.db.unit_of_work() as session:
            await journal.record(session, organization_id=self.job.organization_id, job_id=self.job.id, type=type,
                                message=message, actor=ACTOR, step_index=self.step, **extra)

    async def outcome(self, provider_id: str, outcome: str, reason: str | None = None) -> None:
        async with self.core.db.unit_of_work() as session:
            session.add(ProviderOutcome(id=new_id("pout"), organization_id=self.job.organization_id,
                                        provider_id=provider_id, job_id=self.job.id, outcome=outcome, reason=reason))

    async def cancelled(self) -> bool:
        async with self.core.db.unit_of_work(read_only=True) as session:
            status = (await session.execute(select(Job.status).where(Job.id == self.job.id))).scalar_one_or_none()
        return status != "running"


def _checkout_key(job: Job, offer: Offer) -> str:
    return crypto.sha256_hex(f"job:{job.id}:{offer.provider_id}:{offer.venue_id}:{offer.unit}:{offer.start}")[:48]


def _backoff(attempt: int, retry_after: int | None) -> float:
    if retry_after:
        return float(min(retry_after, 5))
    return min(0.1 * 2 ** attempt, 2.0)


def _describe(offer: Offer) -> str:
    when = offer.start.replace("T", " ")
    if offer.scenario == "hotel":
        return f"{offer.unit_name} at {offer.venue_name}, {offer.start[:10]} to {offer.end}"
    if offer.scenario == "flight":
        return f"{offer.attributes.get('flight_number', offer.venue_name)} {offer.unit_name} on {when}"
    if offer.scenario == "activity":
        return f"{offer.quantity} × {offer.unit_name} for {offer.venue_name} on {when}"
    return f"{offer.venue_name} for {offer.quantity} at {when}"


async def _retrying(run: Run, provider: Any, what: str, call: Any) -> Any:
    """Call the provider, retrying transient failures up to maxRetries with backoff."""
    retries = run.consent.get("maxRetries", 3)
    for attempt in range(retries + 1):
        try:
            return await call()
        except ProviderUnavailable as exc:
            await run.event("step_attempt", f"{provider.id}: {what} attempt {attempt + 1} failed (transient error)",
                            providerId=provider.id, attempt=attempt + 1, error="transient_error")
            if attempt == retries:
                raise
            await asyncio.sleep(_backoff(attempt, exc.retry_after))
    raise AssertionError("unreachable")


async def _judge(run: Run, offer: Offer) -> Decision:
    """The organization's policies on this offer; allow and deny are recorded as decisions."""
    start = datetime.fromisoformat(offer.start)
    amount = float(offer.total_price_usd)
    fields = {
        "scenario": offer.scenario, "operation": "job", "restaurantName": offer.venue_name,
        "venueName": offer.venue_name, "city": offer.city, "partySize": offer.quantity,
        "amountUsd": amount, "pricePerPersonUsd": float(offer.unit_price_usd), "datetime": offer.start,
        "localTime": start.strftime("%H:%M"), "localHour": start.hour, "weekday": start.weekday(),
        "keyEnv": run.job.key_env, "providerId": offer.provider_id,
    }
    ctx = ActionContext(organization_id=run.job.organization_id, amount_usd=amount, local_hour=start.hour,
                        fields=fields)
    decision = await guard_service.policies.evaluate(run.core, ctx)
    if decision.outcome == "deny":
        await run.event("action_denied", f"Policy '{decision.policy_name}' denied {_describe(offer)}: {decision.reason}",
                        policyId=decision.policy_id, decision="deny")
    elif decision.outcome == "allow":
        await run.event("action_allowed", f"Policies allow {_describe(offer)} (${amount:.2f})", decision="allow")
    return decision


async def _request_approval(run: Run, offer: Offer, decision: Decision) -> Outcome:
    action = {"operation": "job", "scenario": offer.scenario, "providerId": offer.provider_id,
              "venueId": offer.venue_id, "venueName": offer.venue_name, "city": offer.city, "unit": offer.unit,
              "start": offer.start, "end": offer.end, "quantity": offer.quantity,
              "amountUsd": str(offer.total_price_usd)}
    async with run.core.db.unit_of_work() as session:
        approval = await guard_service.approvals.request(
            session, organization_id=run.job.organization_id, env=run.job.key_env, scenario=run.job.scenario,
            subject_type=journal.SUBJECT, subject_id=run.job.id,
            action=action, amount_usd=Decimal(offer.total_price_usd), policy_id=decision.policy_id,
            message=f"Job {run.job.id}: book {_describe(offer)} for ${offer.total_price_usd}. {decision.reason or ''}".strip(),
            ttl=timedelta(minutes=run.core.settings.approval_ttl_minutes),
        )
        await journal.record(session, organization_id=run.job.organization_id, job_id=run.job.id,
                            type="awaiting_approval", message=f"Waiting for a human decision on {_describe(offer)}",
                            actor=ACTOR, step_index=run.step, approvalId=approval.id, decision="requires_approval")
    return Outcome("awaiting_approval", f"Awaiting approval to book {_describe(offer)}", provider_id=offer.provider_id,
                   pending_action={"approval_id": approval.id, "offer": offer.model_dump(mode="json")})


async def _record_intent(run: Run, offer: Offer) -> None:
    # The key travels with the intent: provider events name it as their reference.
    intent = {"offer": offer.model_dump(mode="json"), "key": _checkout_key(run.job, offer)}
    async with run.core.db.unit_of_work() as session:
        await session.execute(update(Job).where(Job.id == run.job.id).values(checkout_intent=intent))
    run.job.checkout_intent = intent


async def _checkout(run: Run, provider: Any, offer: Offer) -> Outcome | Failure:
    traveler = run.job.profile
    await _record_intent(run, offer)
    try:
        checkout: Checkout = await _retrying(run, provider, "checkout", lambda: provider.checkout(
            offer, traveler, idempotency_key=_checkout_key(run.job, offer)))
    except NoAvailability as exc:
        return Failure("no_availability", "sold_out", f"{provider.id}: {exc.message}")
    except (NeedsLogin, CaptchaRequired, ProviderUnavailable) as exc:
        return _obstacle(provider, exc)
    result = {"providerId": provider.id, "venueId": offer.venue_id, "venueName": offer.venue_name,
              "city": offer.city, "unit": offer.unit_name, "start": offer.start, "end": offer.end,
              "quantity": offer.quantity, "totalPriceUsd": float(offer.total_price_usd),
              "holdId": checkout.hold_id, "confirmation": checkout.confirmation,
              "holdExpiresAt": clock.iso(checkout.expires_at)}
    if checkout.status == "completed":
        await run.event("job_completed", f"Booked {_describe(offer)} at {provider.id}, confirmation "
                        f"{checkout.confirmation}", providerId=provider.id, confirmation=checkout.confirmation)
        return Outcome("completed", f"Booked {_describe(offer)} (confirmation {checkout.confirmation})",
                       provider_id=provider.id, result=result)
    await run.event("paused_payment", f"Paused at the payment page for {_describe(offer)}", providerId=provider.id,
                    handoffUrl=checkout.handoff_url)
    return Outcome("paused_payment", f"Paused at payment gate for {_describe(offer)}", provider_id=provider.id,
                   handoff_url=checkout.handoff_url, result=result)


async def _nothing_chosen(provider: Any, query: SearchQuery, reason: str) -> Failure:
    """Why nothing at ``provider`` could be chosen, in the user's words.

    Where the provider can describe the venue (``find_venue``, restaurants) and the venue
    seats fewer per booking than the party, that is the reason (``party_too_large``), e.g.
    "party of 8; Le Bernardin seats at most 6 per booking"."""
    why = {"no_offers": "nothing bookable matches the request",
           "over_budget": "everything available is over budget",
           "no_time_in_window": "no time within the allowed adjustment"}[reason]
    find_venue = getattr(provider, "find_venue", None)
    if reason == "no_offers" and query.scenario == "restaurant" and find_venue is not None and query.venue:
        try:
            venue = await find_venue(query.venue, query.city or "")
        except DomainError:
            venue = None
        if venue is not None and venue.max_party_size and query.quantity > venue.max_party_size:
            return Failure("no_availability", "party_too_large", f"{provider.id}: party of {query.quantity}; "
                           f"{venue.name} seats at most {venue.max_party_size} per booking")
    return Failure("no_availability", reason, f"{provider.id}: {why}")


def _obstacle(provider: Any, exc: DomainError) -> Failure:
    if isinstance(exc, NeedsLogin):
        return Failure("needs_login", "login_wall", exc.message, exc.session_url)
    if isinstance(exc, CaptchaRequired):
        return Failure("captcha", "captcha", exc.message, exc.session_url)
    return Failure("error", "transient_error", f"{provider.id}: still failing after retries")


async def _try(run: Run, provider: Any, query: SearchQuery, offers: list[Offer] | None = None,
               switched: bool = False) -> Outcome | Failure:
    """One provider: search (unless offers are given), choose, judge, check out.

    ``switched``: the offers are at another venue than the one asked for, so the checkout
    must leave the end user the last word (:func:`_may_book_alternative`)."""
    run.attempts += 1
    await run.event("step_started", f"Trying {provider.display_name} ({provider.id})", providerId=provider.id)
    searched = offers is None
    if offers is None:
        try:
            offers = await _retrying(run, provider, "search", lambda: provider.search(query))
        except VenueUnknown as exc:
            return Failure("no_availability", "unknown_venue", exc.message, suggestions=exc.suggestions)
        except VenueNotServed as exc:
            return Failure("no_availability", "venue_not_served", exc.message)
        except (NeedsLogin, CaptchaRequired, ProviderUnavailable) as exc:
            return _obstacle(provider, exc)
    if await run.cancelled():  # cancelled while the provider searched: hold nothing
        return Outcome("cancelled", "Cancelled by the client")
    choice: Choice = choose(run.job.scenario, run.job.params, run.consent, offers)
    if choice.offer is None:
        return await _nothing_chosen(provider, query, choice.reason or "no_offers")
    offer = choice.offer
    if choice.from_time:
        await run.event("time_adjusted", f"No slot at {choice.from_time}, switching to {choice.to_time}",
                        fromTime=choice.from_time, toTime=choice.to_time, providerId=provider.id)
    # A re-search after a lost race asks the same place again: a switched venue is among the alternatives.
    refresh = (lambda: provider.search(query)) if searched else (lambda: provider.alternatives(query))
    return await _book_within_consent(run, provider, offer, refresh, switched)


async def _book_within_consent(run: Run, provider: Any, offer: Offer, refresh: Any,
                              switched: bool = False) -> Outcome | Failure:
    """Judge the offer and check it out; a checkout refused for capacity (another booking took the
    slot between search and checkout) goes back to the choice of time within the consent.

    The provider is searched again (``refresh``) and :func:`choose` picks among the offers of
    the same venue that are left, the slots already lost excluded, so the user's
    ``allowTimeAdjustment`` and ``maxTimeAdjustmentMinutes`` still bound the choice. Each
    new choice is audited as ``time_adjusted`` with reason ``slot taken at checkout``. The
    provider is given up (the ``sold_out`` Failure) when nothing within consent is left, the
    search fails, or after :data:`_MAX_RECHOICES` lost checkouts. ``switched`` as in :func:`_try`.
    """
    lost: set[tuple[str, str, str]] = set()
    while True:
        decision = await _judge(run, offer)
        if decision.outcome == "deny":
            return Outcome("error", f"Policy '{decision.policy_name}' denied the booking", provider_id=provider.id,
                           error=f"Policy '{decision.policy_name}' ({decision.policy_id}) denied this booking: "
                                 f"{decision.reason}")
        if decision.outcome == "requires_approval":
            return await _request_approval(run, offer, decision)
        if switched and not _may_book_alternative(run, provider):
            return await _request_approval(run, offer, Decision(
                "requires_approval", reason=f"{offer.venue_name} is an alternative to the venue asked for, and "
                f"{provider.id} would book it outright (consent.allowAlternativeBooking is false)."))
        result = await _checkout(run, provider, offer)
        if not isinstance(result, Failure) or result.reason != "sold_out" or len(lost) >= _MAX_RECHOICES:
            return result
        lost.add((offer.venue_id, offer.unit, offer.start))
        try:
            fresh = await _retrying(run, provider, "search", refresh)
        except DomainError:
            return result
        left = [o for o in fresh if o.venue_id == offer.venue_id and (o.venue_id, o.unit, o.start) not in lost]
        choice = choose(run.job.scenario, run.job.params, run.consent, left)
        if choice.offer is None:
            return result
        taken, offer = offer, choice.offer
        await run.event("time_adjusted", f"{_describe(taken)} was taken at checkout; switching to {_describe(offer)}",
                        fromTime=_when(taken), toTime=_when(offer), providerId=provider.id,
                        reason="slot taken at checkout")


def _when(offer: Offer) -> str:
    """The offer's venue-local HH:MM, or its date when it has no time."""
    return offer.start[11:16] if "T" in offer.start else offer.start


async def _fallback_or_finish(run: Run, chain: list[Any], index: int, failure: Failure) -> None:
    following = chain[index + 1] if index + 1 < len(chain) else None
    if following is not None:
        run.used_fallback = True
    await _leave(run, chain[index], failure, following.id if following is not None else None)


# A provider left for these reasons did nothing wrong: a misspelt or made-up venue name must not
# lower its success rate (metrics order the providers of later jobs).
_THE_REQUESTS_FAULT = frozenset({"unknown_venue"})


async def _leave(run: Run, provider: Any, failure: Failure, next_provider_id: str | None) -> None:
    """Give up ``provider``: count the failure and record its ``provider_fallback`` with the reason, the last
    provider of the chain included (``nextProviderId`` null: a venue switch or the job's failure follows)."""
    run.failures.append(failure)
    if failure.reason not in _THE_REQUESTS_FAULT:
        await run.outcome(provider.id, "failed", failure.reason)
    then = f"falling back to {next_provider_id}" if next_provider_id else "no other provider to try"
    await run.event("provider_fallback", f"{failure.message}; {then}", providerId=provider.id,
                    nextProviderId=next_provider_id, reason=failure.reason)


async def _resume_approved(run: Run) -> Outcome:
    """Execute exactly the offer a human approved."""
    offer = Offer.model_validate(run.job.pending_action["offer"])
    # This run finishes the attempt the run that asked for approval made: keep what it counted.
    run.attempts, run.used_fallback = run.job.attempt_count, run.job.used_fallback
    provider = run.core.providers.get(offer.provider_id)
    if provider is None:
        return Outcome("error", "The approved provider is no longer configured", error="provider_unavailable")
    await run.event("action_allowed", f"Approved by a human: {_describe(offer)}", decision="approved",
                    approvalId=run.job.pending_action.get("approval_id"))
    result = await _checkout(run, provider, offer)
    if isinstance(result, Failure):
        await run.outcome(provider.id, "failed", result.reason)
        return Outcome(result.status, f"The approved booking could not be made: {result.message}",
                       provider_id=provider.id, error=result.message, session_url=result.session_url)
    await run.outcome(provider.id, "accepted")
    return result


async def _resume_checkout(run: Run) -> Outcome | None:
    """A previous run of this job was checking out when it died: finish that same checkout."""
    offer = Offer.model_validate(run.job.checkout_intent["offer"])
    provider = run.core.providers.get(offer.provider_id)
    if provider is None:
        return None
    await run.event("step_started", f"Resuming the checkout a previous run started at {provider.id}",
                    providerId=provider.id)
    result = await _checkout(run, provider, offer)
    if isinstance(result, Failure):
        run.failures.append(result)
        await run.outcome(provider.id, "failed", result.reason)
        return None  # the hold is gone; plan afresh
    await run.outcome(provider.id, "accepted")
    return result


async def execute(run: Run) -> Outcome:
    with snapshots.collecting(run.core, run.job):
        return await _execute(run)


async def _execute(run: Run) -> Outcome:
    job = run.job
    await run.event("job_started", f"Executing {job.scenario} booking")
    if (job.pending_action or {}).get("approved"):
        return await _resume_approved(run)
    if job.checkout_intent:
        resumed = await _resume_checkout(run)
        if resumed is not None:
            return resumed
    async with run.core.db.unit_of_work(read_only=True) as session:
        chain = await planner.plan(session, run.core.providers, organization_id=job.organization_id,
                                   scenario=job.scenario, key_env=job.key_env, consent=job.consent)
    if chain and not (chain := await _skip_unusable(run, chain)):
        return Outcome("error", "No browser for the providers that could serve this job", error=(
            "browser_unavailable: the only providers that may serve this job drive a browser, and none can be "
            "started on this server."))
    if not chain:
        return Outcome("error", "No provider may serve this job", error=(
            "No provider can serve this scenario with this key and the allowed/blocked providers."))
    query = query_for(job.scenario, job.params)
    for index, provider in enumerate(chain):
        if await run.cancelled():
            return Outcome("cancelled", "Cancelled by the client")
        run.step = index
        result = await _try(run, provider, query)
        if isinstance(result, Outcome):
            if result.status in ("paused_payment", "completed"):
                await run.outcome(provider.id, "accepted")
            return result
        await _fallback_or_finish(run, chain, index, result)
    unknown = _unknown_venue(run, query)
    if unknown is not None:
        return unknown
    switched = await _switch_venue(run, chain, query)
    if switched is not None:
        return switched
    return _final_failure(run)


async def _skip_unusable(run: Run, chain: list[Any]) -> list[Any]:
    ready, missing = await planner.usable(chain)
    for provider in missing:
        later = chain[chain.index(provider) + 1:]
        after = next((p.id for p in later if p in ready), None)
        await run.event("provider_fallback", f"{provider.id}: no browser can be started here; "
                        + (f"falling back to {after}" if after else "no other provider"),
                        providerId=provider.id, nextProviderId=after, reason="browser_unavailable")
    return ready


_VENUE_KINDS = {"restaurant": "restaurant", "hotel": "hotel", "activity": "event"}


def _unknown_venue(run: Run, query: SearchQuery) -> Outcome | None:
    """Every provider tried knows no venue of that name: the job ends ``no_availability`` with the
    nearest names they suggested, and nothing is switched or booked. None when any knew the venue."""
    if not run.failures or any(f.reason != "unknown_venue" for f in run.failures):
        return None
    suggestions = list(dict.fromkeys(s for f in run.failures for s in f.suggestions))[:names.MAX_SUGGESTIONS]
    kind = _VENUE_KINDS.get(run.job.scenario, "venue")
    where = f" in {query.city}" if query.city else ""
    hint = f" Did you mean {' or '.join(suggestions)}?" if suggestions else ""
    return Outcome("no_availability", f"No {kind} named {query.venue!r}{where}.{hint}",
                   error=f"unknown_venue: no provider this job may use knows a {kind} named "
                         f"{query.venue!r}{where}.{hint}")


def _may_book_alternative(run: Run, provider: Any) -> bool:
    """Whether a switched venue may be checked out without asking: the user allowed booking an
    alternative, or the provider stops at its payment page (the end user decides by paying)."""
    return bool(run.consent.get("allowAlternativeBooking", False) or getattr(provider, "stops_at_payment", False))


async def _original(chain: list[Any], query: SearchQuery) -> VenueFacts | None:
    """The venue asked for, as the first provider able to describe it does (its kind and price)."""
    for provider in chain:
        describe = getattr(provider, "describe", None)
        if describe is None:
            continue
        try:
            return await describe(query)
        except DomainError:
            continue
    return None


def _most_similar(run: Run, alternatives: list[Offer], like: Likeness, asked: str) -> Choice:
    """An offer at the first venue (in the provider's order, most similar first) that is like the one
    asked for; within the venue, what the consent and budget allow."""
    fitting = [o for o in alternatives if like.fits(o) and not names.same(o.venue_name, asked)]
    for venue_id in dict.fromkeys(o.venue_id for o in fitting):
        choice = choose(run.job.scenario, run.job.params, run.consent, [o for o in fitting if o.venue_id == venue_id])
        if choice.offer is not None:
            return choice
    return Choice(None, reason="no_offers")


async def _switch_venue(run: Run, chain: list[Any], query: SearchQuery) -> Outcome | None:
    """A venue like the one asked for, in the same city, when the user allowed it and the venue
    exists but cannot be booked (every failure a no_availability, and some provider knew it)."""
    if not run.consent.get("allowVenueSwitch", True) or run.job.scenario == "flight":
        return None
    if not all(f.status == "no_availability" for f in run.failures):
        return None
    like = likeness(run.job.scenario, run.job.params, await _original(chain, query))
    if like is None:
        return None
    # Why the venue itself could not be had: the last reason a provider gave that is not "unknown".
    cause = next((f for f in reversed(run.failures) if f.reason != "unknown_venue"), run.failures[-1])
    for provider in chain:
        try:
            alternatives = await _retrying(run, provider, "alternatives", lambda p=provider: p.alternatives(query))
        except DomainError:
            continue
        choice = _most_similar(run, alternatives, like, query.venue or "")
        if choice.offer is None:
            continue
        offer = choice.offer
        run.step += 1
        run.used_fallback = True
        await run.event("venue_switched", f"{query.venue} could not be booked ({cause.reason}: {cause.message}); "
                        f"switching to {offer.venue_name} ({like.basis})", fromVenue=query.venue,
                        toVenue=offer.venue_name, providerId=provider.id, why=like.basis, reason=cause.reason)
        same_venue = [o for o in alternatives if o.venue_id == offer.venue_id and like.fits(o)]
        result = await _try(run, provider, query, offers=same_venue, switched=True)
        if isinstance(result, Outcome):
            if result.status in ("paused_payment", "completed"):
                await run.outcome(provider.id, "accepted")
            return result
        await _leave(run, provider, result, None)
    return None


# Which no_availability reason explains a job best when providers gave several, most telling first.
_REASON_ORDER = {"party_too_large": 0, "over_budget": 1, "no_time_in_window": 2, "sold_out": 3, "no_offers": 4,
                 "venue_not_served": 5}


def _reason(message: str) -> str:
    """A failure's message without the provider id it starts with."""
    head, sep, rest = message.partition(": ")
    return rest if sep and " " not in head else message


def _final_failure(run: Run) -> Outcome:
    statuses = {f.status for f in run.failures}
    # An obstacle the end user can get past with a takeover link is the most useful answer.
    takeover = next((f for f in reversed(run.failures) if f.session_url), None)
    status = takeover.status if takeover else next(s for s in _FAILURE_ORDER if s in statuses or s == "error")
    last = takeover or next((f for f in reversed(run.failures) if f.status == status), run.failures[-1])
    if status == "no_availability":  # say why: the most specific reason any provider gave
        last = min((f for f in run.failures if f.status == status), key=lambda f: _REASON_ORDER.get(f.reason, 9))
    summary = {
        "no_availability": f"Nothing matches the request at any provider: {_reason(last.message)}",
        "captcha": "Blocked by a CAPTCHA at every provider that could serve the request",
        "needs_login": "Every provider that could serve the request wants a login",
        "error": "Every provider failed",
    }[status]
    return Outcome(status, summary, error=last.message if status == "error" else None,
                   session_url=last.session_url)
