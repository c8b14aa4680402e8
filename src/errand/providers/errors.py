"""The errors a provider adapter raises, one declared class per code (see :mod:`errand.kit.errors`).

They split the way a fallback chain needs them:

- logical: the provider answered "no" and another provider would say the same of that request
    - :class:`NoAvailability`   ``capacity_exceeded`` (409): full, closed, too large a party;
      carries the nearest bookable times when the provider knows them;
    - :class:`ProviderRejected` ``provider_rejected`` (400): the provider refused the request's details;
    - :class:`ProviderConflict` ``provider_conflict`` (409): the provider's state refuses it;
- this provider only: another provider in the chain may still serve it
    - :class:`VenueNotServed`   ``venue_not_served`` (404): the venue or route is not sold here;
    - :class:`VenueUnknown`     ``unknown_venue`` (404): no venue of that name at all, with suggestions;
    - :class:`NeedsLogin`       ``needs_login`` (403): the site wants an account the autopilot lacks;
    - :class:`CaptchaRequired`  ``captcha`` (403): the site put up a CAPTCHA the autopilot will not solve;
- technical: the outcome is unknown; retry with the same idempotency key, or move down the chain
    - :class:`ProviderUnavailable` ``provider_unavailable`` (503): timeout, 5xx, unreadable answer;
- :class:`ProviderNotFound`  ``not_found`` (404): a reservation or hold the provider does not know;
- :class:`ProviderMismatch`  ``provider_mismatch`` (409): a provider's event names a job that
  checked out at another provider (raised where provider events are recorded, :mod:`errand.jobs`).

The sandbox marketplace (:mod:`errand.sandbox.errors`) answers ``venue_not_served`` and
``unknown_venue`` with these same classes: a code is declared once in the code base.
"""

from errand.kit.errors import Conflict, DomainError, Forbidden, NotFound, Unavailable


def _from(provider_id: str | None, message: str) -> str:
    """``message`` prefixed by the provider that said it, when one is named."""
    return f"{provider_id}: {message}" if provider_id else message


class NoAvailability(Conflict):
    """Nothing bookable for the request; ``nearest`` lists bookable times nearby (``HH:MM`` or ISO)."""

    code = "capacity_exceeded"

    def __init__(self, message: str, nearest: list[str] | None = None) -> None:
        super().__init__(message, details={"nearestAvailableTimes": nearest or []})
        self.nearest = nearest or []


class ProviderUnavailable(Unavailable):
    """The provider could not be reached or answered nonsense; ``retry_after`` seconds when it said so.

    ``provider_id`` prefixes the message when given (None: the message names the provider itself).
    """

    code = "provider_unavailable"

    def __init__(self, provider_id: str | None, message: str, retry_after: int | None = None) -> None:
        super().__init__(_from(provider_id, message), retry_after=retry_after)
        self.provider_id = provider_id


class ProviderNotFound(NotFound):
    """The provider knows no reservation or hold of that id (the generic ``not_found``)."""


class ProviderRejected(DomainError):
    """The provider refused the request's details (any other 4xx); ``details["provider_error"]`` is its code.

    A :class:`DomainError` of kind ``invalid``, not an :class:`~errand.kit.errors.InvalidRequest`: it
    describes the provider's answer, not the caller's input, and no input check may re-word it.
    """

    kind = "invalid"
    code = "provider_rejected"


class ProviderConflict(Conflict):
    """The provider's state refuses the request (any other 409); ``details["provider_error"]`` is its code."""

    code = "provider_conflict"


class ProviderMismatch(Conflict):
    """A provider's event names a job that checked out at another provider; nothing is recorded."""

    code = "provider_mismatch"


class VenueNotServed(NotFound):
    """This provider does not sell that venue (or route); another provider may.

    ``provider_id`` prefixes the message when given (the adapters); the sandbox marketplace,
    which speaks for itself, names none.
    """

    code = "venue_not_served"

    def __init__(self, provider_id: str | None, message: str) -> None:
        super().__init__(_from(provider_id, message))
        self.provider_id = provider_id


class VenueUnknown(VenueNotServed):
    """The provider knows no venue of that name at all (not merely one it does not sell).

    ``suggestions`` are the nearest names it knows, best first ("did you mean …?"), also in
    ``details["suggestions"]``. A job whose venue every provider calls unknown ends without a
    venue switch (:func:`errand.jobs.executor._unknown_venue`); the bookings service answers 404
    with them.
    """

    code = "unknown_venue"

    def __init__(self, provider_id: str | None, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(provider_id, message)
        self.suggestions = list(suggestions or [])
        self.details = {"suggestions": self.suggestions}


class _Obstacle(Forbidden):
    """A wall on the provider's site the autopilot will not pass; ``session_url`` is where it stands."""

    def __init__(self, provider_id: str, message: str, session_url: str | None = None) -> None:
        super().__init__(_from(provider_id, message))
        self.provider_id = provider_id
        self.session_url = session_url


class NeedsLogin(_Obstacle):
    """The provider's site wants an account the autopilot does not have."""

    code = "needs_login"


class CaptchaRequired(_Obstacle):
    """The provider's site put up a CAPTCHA the autopilot will not solve."""

    code = "captcha"


__all__ = [
    "CaptchaRequired", "NeedsLogin", "NoAvailability", "ProviderConflict", "ProviderMismatch", "ProviderNotFound",
    "ProviderRejected", "ProviderUnavailable", "VenueNotServed", "VenueUnknown",
]
