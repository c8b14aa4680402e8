"""The obstacles of the job API, as the adapters report them to the job executor.

The catalog (errand/sandbox/providers.json) is deterministic: for each scenario, the
venues below meet the same obstacle on every run. Each test uses dates of its own, since
a flaky venue counts calls per search body and per Idempotency-Key.
"""

import uuid
from typing import Any

import pytest

from errand.providers.base import Checkout, SearchQuery
from errand.providers.errors import CaptchaRequired, NeedsLogin, ProviderUnavailable, VenueNotServed
from errand.providers.sandbox import SandboxAir, SandboxApiProvider, SandboxTables
from tests.sandbox.conftest import SETTINGS

Adapters = dict[str, SandboxApiProvider]
TRAVELER = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1 212 555 0100",
            "dob": "1990-12-10", "passport_number": "X1234567", "passport_country": "GB"}


def query(scenario: str, venue: str, day: str, city: str = "New York") -> SearchQuery:
    """A search for ``venue`` (for flights, a route ``"<origin>-<dest>"``) on ``day``."""
    if scenario == "flight":
        origin, dest = venue.split("-")
        return SearchQuery(scenario=scenario, origin=origin, dest=dest, date=day, quantity=1)
    end = {"end_date": day[:8] + f"{int(day[8:]) + 1:02d}"} if scenario == "hotel" else {}
    return SearchQuery(scenario=scenario, venue=venue, city=city, date=day, quantity=2, **end)


OBSTACLES = [
    # (scenario, venue or route, city, {provider: what it answers})
    ("restaurant", "Gramercy Tavern", "New York", {"sandbox-tables": NeedsLogin, "sandbox-dine": None}),
    ("restaurant", "Peter Luger", "New York", {"sandbox-tables": CaptchaRequired, "sandbox-dine": CaptchaRequired}),
    ("restaurant", "Tatiana", "New York", {"sandbox-tables": NeedsLogin, "sandbox-dine": NeedsLogin}),
    ("restaurant", "Via Carota", "New York", {"sandbox-tables": VenueNotServed, "sandbox-dine": None}),
    ("restaurant", "Alinea", "Chicago", {"sandbox-tables": None, "sandbox-dine": VenueNotServed}),
    ("hotel", "Ace Hotel New York", "New York", {"sandbox-stays": NeedsLogin, "sandbox-rooms": None}),
    ("hotel", "The Greenwich Hotel", "New York", {"sandbox-stays": CaptchaRequired, "sandbox-rooms": CaptchaRequired}),
    ("hotel", "Pod 51", "New York", {"sandbox-stays": NeedsLogin, "sandbox-rooms": NeedsLogin}),
    ("hotel", "Hotel Zetta", "San Francisco", {"sandbox-stays": VenueNotServed, "sandbox-rooms": None}),
    ("flight", "New York-Tokyo", None, {"sandbox-air": NeedsLogin, "sandbox-fares": None}),
    ("flight", "SFO-NRT", None, {"sandbox-air": CaptchaRequired, "sandbox-fares": CaptchaRequired}),
    ("flight", "Tokyo-Paris", None, {"sandbox-air": NeedsLogin, "sandbox-fares": NeedsLogin}),
    ("flight", "ORD-Paris", None, {"sandbox-air": VenueNotServed, "sandbox-fares": None}),
    ("activity", "Knicks vs Celtics", "New York", {"sandbox-tickets": CaptchaRequired}),
    ("activity", "New York Philharmonic", "New York", {"sandbox-tickets": NeedsLogin}),
    ("activity", "Louvre Night Tour", "Paris", {"sandbox-tickets": VenueNotServed}),
]


@pytest.mark.parametrize(("scenario", "venue", "city", "answers"), OBSTACLES, ids=[o[1] for o in OBSTACLES])
async def test_each_venue_meets_its_obstacle_at_each_provider(
    providers: Adapters, scenario: str, venue: str, city: str | None, answers: dict[str, Any]
) -> None:
    search = query(scenario, venue, "2027-04-08", city or "")
    for provider_id, obstacle in answers.items():
        if obstacle is None:
            offers = await providers[provider_id].search(search)
            assert offers, f"{provider_id} should sell {venue}"
        else:
            with pytest.raises(obstacle) as caught:
                await providers[provider_id].search(search)
            assert caught.value.provider_id == provider_id


async def test_checkout_meets_the_obstacles_of_the_offer(providers: Adapters) -> None:
    """An offer found at one provider cannot be checked out at another that walls its venue off."""
    offer = (await providers["sandbox-dine"].search(query("restaurant", "Gramercy Tavern", "2027-04-09")))[0]
    with pytest.raises(NeedsLogin):
        await providers["sandbox-tables"].checkout(offer, TRAVELER, idempotency_key=str(uuid.uuid4()))
    fare = (await providers["sandbox-fares"].search(query("flight", "New York-Tokyo", "2027-04-09")))[0]
    with pytest.raises(NeedsLogin):  # the route's wall, met by one of its flights
        await providers["sandbox-air"].checkout(fare, TRAVELER, idempotency_key=str(uuid.uuid4()))


FLAKY = [
    ("sandbox-tables", "restaurant", "Balthazar"),
    ("sandbox-stays", "hotel", "The Standard High Line"),
    ("sandbox-air", "flight", "London-Paris"),
    ("sandbox-tickets", "activity", "The Lion King"),
]


@pytest.mark.parametrize(("provider_id", "scenario", "venue"), FLAKY, ids=[f[0] for f in FLAKY])
async def test_flaky_venue_fails_twice_then_answers_the_same_call(
    providers: Adapters, provider_id: str, scenario: str, venue: str
) -> None:
    provider = providers[provider_id]
    search = query(scenario, venue, "2027-04-10")
    for _ in range(2):
        with pytest.raises(ProviderUnavailable) as caught:
            await provider.search(search)
        assert caught.value.retry_after == 1
    offers = await provider.search(search)
    assert offers
    key = str(uuid.uuid4())
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await provider.checkout(offers[0], TRAVELER, idempotency_key=key)
    checkout = await provider.checkout(offers[0], TRAVELER, idempotency_key=key)
    assert isinstance(checkout, Checkout)
    assert await provider.checkout(offers[0], TRAVELER, idempotency_key=key) == checkout
    # The second provider of the chain is not flaky: it answers at once.
    if provider_id != "sandbox-tickets":
        other = {"restaurant": "sandbox-dine", "hotel": "sandbox-rooms", "flight": "sandbox-fares"}[scenario]
        assert await providers[other].search(query(scenario, venue, "2027-04-11"))


async def test_configured_fault_rates_raise_captcha_login_and_transient_errors(serve_with_faults: Any) -> None:
    search = query("flight", "JFK-SFO", "2027-04-12")
    cases = [({"captcha_rate": 1.0}, CaptchaRequired), ({"login_rate": 1.0}, NeedsLogin),
             ({"error_rate": 1.0}, ProviderUnavailable)]
    for faults, raised in cases:
        async with serve_with_faults({"sandbox-air": faults}) as url:
            air = SandboxAir(SETTINGS.model_copy(update={"sandbox_url": url, "provider_timeout_seconds": 30}))
            try:
                with pytest.raises(raised):
                    await air.search(search)
            finally:
                await air.aclose()


async def test_captcha_and_login_rates_spare_the_reservations_api(serve_with_faults: Any) -> None:
    async with serve_with_faults({"sandbox-tables": {"captcha_rate": 1.0, "login_rate": 1.0}}) as url:
        tables = SandboxTables(SETTINGS.model_copy(update={"sandbox_url": url, "provider_timeout_seconds": 30}))
        try:
            assert await tables.find_venue("Le Bernardin", "New York") is not None
            with pytest.raises(CaptchaRequired):
                await tables.search(query("restaurant", "Le Bernardin", "2027-04-12"))
        finally:
            await tables.aclose()
