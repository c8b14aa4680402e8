"""What the sandbox marketplace answers when it refuses, one declared class per code.

The sandbox's error body is ``{"error": code, "message", "nearest"}`` (:mod:`errand.sandbox.common`),
its status the class's kind; the web sites show the same as an HTML page.

- :class:`Invalid`              ``invalid`` (400): a malformed field, header or time;
- :class:`UnsupportedScenario`  ``unsupported_scenario`` (400): the provider sells no such bookings;
- :class:`LoginRequired`        ``login_required`` (401): a login wall before the venue (or by fault);
- :class:`CaptchaRequired`      ``captcha_required`` (403): a CAPTCHA before the venue (or by fault);
- :class:`NotServed`            ``venue_not_served`` (404): this provider does not sell that venue or route;
- :class:`UnknownVenue`         ``unknown_venue`` (404): no venue of that name, with ``suggestions``;
- :class:`Unbookable`           ``no_availability`` (409): full, closed, too large; ``nearest`` may help;
- :class:`CardDeclined`         ``card_declined`` (409): a card other than the test card;
- :class:`Flaky`                ``provider_flaky`` (503): a flaky venue's first calls fail on purpose;
- :class:`InjectedFault`        ``injected_fault`` (503): a configured error rate (:mod:`errand.sandbox.faults`);
- :class:`KeyInFlight`          ``busy`` (503): a concurrent request with the same key did not finish.

Generic refusals are the kit's own classes: ``not_found`` is :class:`~errand.kit.errors.NotFound`,
``invalid_state`` :class:`~errand.kit.errors.InvalidState`, ``unauthorized``
:class:`~errand.kit.errors.Unauthorized`. ``venue_not_served`` and ``unknown_venue`` are declared
once, by the provider adapters' errors (:mod:`errand.providers.errors`), which the two classes
here specialise: the sandbox speaks for itself, so their messages name no provider.
``idempotency_conflict`` (409, a key reused with another request) is raised with the kit's
:class:`~errand.kit.errors.Conflict`, its declaration belonging to the core's idempotency guard.
"""

from errand.kit.errors import Conflict, Forbidden, InvalidRequest, Unauthorized, Unavailable
from errand.providers.errors import VenueNotServed, VenueUnknown

__all__ = [
    "CaptchaRequired", "CardDeclined", "Flaky", "InjectedFault", "Invalid", "KeyInFlight", "LoginRequired",
    "NotServed", "Unbookable", "UnknownVenue", "UnsupportedScenario", "VenueNotServed",
]


class Invalid(InvalidRequest):
    code = "invalid"


class UnsupportedScenario(InvalidRequest):
    code = "unsupported_scenario"


class LoginRequired(Unauthorized):
    code = "login_required"


class CaptchaRequired(Forbidden):
    code = "captcha_required"


class NotServed(VenueNotServed):
    """This provider does not sell the venue or route (another sandbox provider may)."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


class UnknownVenue(VenueUnknown):
    """No venue of that name (in that city) exists at all, as opposed to one this provider does not sell.

    ``details["suggestions"]`` holds the nearest names the provider sells, best first. Both this
    and :class:`NotServed` are a :class:`VenueNotServed`, which is what to catch for either.
    """

    def __init__(self, message: str, suggestions: list[str]) -> None:
        super().__init__(None, message, suggestions)


class Unbookable(Conflict):
    """The request cannot be booked (full, closed, too large); ``nearest`` may suggest what could."""

    code = "no_availability"

    def __init__(self, message: str, nearest: list[str] | None = None) -> None:
        super().__init__(message, details={"nearest": nearest or []})
        self.nearest = nearest or []


class CardDeclined(Conflict):
    code = "card_declined"


class Flaky(Unavailable):
    code = "provider_flaky"

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=1)


class InjectedFault(Unavailable):
    code = "injected_fault"

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=1)


class KeyInFlight(Unavailable):
    code = "busy"
