"""What one booking may ask for: the one table of size and date limits every entry point uses.

REST reservations (``partySize``), MCP tools (``party_size``, ``quantity``), the execution
API's job params (``covers``, ``adults``, ``passengers``, ``num_tickets``) and the sandbox
providers' APIs all read their limits here, so the same request gets the same verdict and
the same words everywhere (issue 9).

=============  ===============================  =====
scenario       field(s)                         most
=============  ===============================  =====
restaurant     partySize, party_size, covers    50
hotel          adults (in one room)             10
flight         passengers                       9
activity       num_tickets                      20
=============  ===============================  =====

A venue may seat fewer per booking than the table allows (a restaurant's largest party);
that is the venue's own limit, reported by its provider as no availability, naming it.

Dates: a booking date is refused when it is before *yesterday in UTC* — the earliest date
that is still "today" somewhere on Earth (UTC−12), so a date refused here is past at every
venue; a date that is past only in the venue's own zone is refused by the provider with the
venue's local time (REST bookings check the exact venue-local time). A date more than
:data:`BOOKING_HORIZON_DAYS` after today (UTC) is refused too: no provider sells that far
ahead, and year 9999 is a typo, not a plan.
"""

from datetime import date, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from errand.kit import clock
from errand.kit.errors import InvalidRequest

PARTY_SIZE_MAX = 50
ADULTS_MAX = 10
PASSENGERS_MAX = 9
TICKETS_MAX = 20
# The most of anything one booking takes, per scenario, and what the limit is called in messages.
QUANTITY_MAX: dict[str, int] = {
    "restaurant": PARTY_SIZE_MAX, "hotel": ADULTS_MAX, "flight": PASSENGERS_MAX, "activity": TICKETS_MAX,
}
QUANTITY_NAMES: dict[str, str] = {
    "restaurant": "party size", "hotel": "adults per room", "flight": "passengers", "activity": "tickets",
}
# The largest quantity any scenario allows: the bound of a field that serves every scenario.
ANY_QUANTITY_MAX = max(QUANTITY_MAX.values())

# Two years: what restaurants, hotels, airlines and box offices sell at most.
BOOKING_HORIZON_DAYS = 730
# A date before today (UTC) minus this many days is past in every time zone.
PAST_GRACE_DAYS = 1


def over_limit(scenario: str) -> str:
    """The message for a quantity above the scenario's limit, e.g. ``must be at most 50 (the party size limit
    per booking)``: every dialect says it in these words."""
    return f"must be at most {QUANTITY_MAX[scenario]} (the {QUANTITY_NAMES[scenario]} limit per booking)"


def check_quantity(scenario: str, value: int, field: str) -> None:
    """Raises InvalidRequest naming ``field`` and the limit when ``value`` is outside 1..the scenario's limit."""
    if value < 1:
        raise InvalidRequest(f"{field}: must be at least 1.",
                             details=[{"field": field, "message": "must be at least 1"}])
    if value > QUANTITY_MAX[scenario]:
        message = over_limit(scenario)
        raise InvalidRequest(f"{field}: {message}.", details=[{"field": field, "message": message}])


def quantity(scenario: str) -> Any:
    """A pydantic int type for one booking's quantity in ``scenario``: strict, 1 to the table's limit.

    Above the limit the validation message names it (:func:`over_limit`); the JSON Schema
    carries ``maximum`` as usual."""
    most = QUANTITY_MAX[scenario]

    def check(value: int) -> int:
        if value > most:
            raise ValueError(over_limit(scenario))
        return value

    return Annotated[int, Field(ge=1, strict=True, json_schema_extra={"maximum": most}), AfterValidator(check)]


PartySize = quantity("restaurant")
Adults = quantity("hotel")
Passengers = quantity("flight")
Tickets = quantity("activity")


def today() -> date:
    """Today's date in UTC."""
    return clock.now().date()


def date_problem(day: date) -> str | None:
    """Why ``day`` cannot be booked (past everywhere, or beyond the horizon), or None when it can."""
    now = today()
    if day < now - timedelta(days=PAST_GRACE_DAYS):
        return "must not be in the past"
    if day > now + timedelta(days=BOOKING_HORIZON_DAYS):
        return f"must be at most {BOOKING_HORIZON_DAYS} days ahead (the booking horizon)"
    return None


def check_date(day: date, field: str) -> None:
    """Raises InvalidRequest naming ``field`` when :func:`date_problem` finds one."""
    problem = date_problem(day)
    if problem is not None:
        raise InvalidRequest(f"{field}: {problem}.", details=[{"field": field, "message": problem}])
