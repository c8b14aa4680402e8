"""The core's one exception family.

Every failure the core reports to a caller is a :class:`DomainError` with a stable
snake_case ``code`` and a ``kind``. Kinds, not codes, decide the HTTP status in each
dialect, so a dialect maps a handful of kinds and renders its own body:

- ``invalid``        the input cannot be acted on (400)
- ``unauthorized``   no valid credential (401)
- ``forbidden``      the credential may not do this, or a policy refuses it (403)
- ``not_found``      nothing of that id in the caller's organization (404)
- ``conflict``       the state of the world refuses it: capacity, idempotency, state (409)
- ``payment_required`` the organization cannot pay for it: no credits left (402)
- ``rate_limited``   too many requests; ``retry_after`` seconds says when to come back (429)
- ``unavailable``    a backend (database, provider) cannot be reached; safe to retry (503)
- ``internal``       a bug; never cached, never detailed (500)

An error with ``replayed`` true is the stored outcome of an earlier request with the same
idempotency key (:mod:`errand.guard.idempotency`), answered again; each dialect says so as
it says it for a replayed success (REST: ``Idempotent-Replayed: true``; MCP: ``replayed``).
"""

from typing import Any, ClassVar, Literal

Kind = Literal[
    "invalid", "unauthorized", "payment_required", "forbidden", "not_found", "conflict",
    "rate_limited", "unavailable", "internal",
]


class DomainError(Exception):
    """A failure the core reports: ``code`` (stable snake_case), ``kind`` (which decides the status),
    a human ``message``, optional ``details`` (JSON) and ``retry_after`` (seconds).

    Each domain declares its errors in its ``errors.py`` as small subclasses that name their
    code (and inherit their kind), and raises those::

        class JobNotFound(NotFound):
            code = "job_not_found"

        raise JobNotFound(f"Job {job_id} not found.")

    Every declared code is listed in :attr:`declared` (one class per code), which the dialects'
    code tables are checked against (``tests/kit/test_declared_errors.py``). The two-argument form
    ``DomainError(code, message)`` remains for an error rebuilt from its stored form
    (:meth:`from_dict`) and for the generic classes below.
    """

    kind: Kind = "internal"
    code: str = "internal_error"
    replayed: bool = False
    declared: ClassVar[dict[str, type["DomainError"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if code is None:
            return
        other = DomainError.declared.setdefault(code, cls)
        if other is not cls and (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"Error code {code!r} is declared twice: {other.__module__}.{other.__qualname__} "
                            f"and {cls.__module__}.{cls.__qualname__}.")

    def __init__(
        self,
        *args: str,
        kind: Kind | None = None,
        details: Any = None,
        retry_after: int | None = None,
    ) -> None:
        if len(args) == 2:
            code, message = args
        elif len(args) == 1:
            code, message = type(self).code, args[0]
        else:
            raise TypeError("DomainError takes (message) when its class declares a code, else (code, message).")
        super().__init__(message)
        self.code = code
        self.message = message
        if kind is not None:
            self.kind = kind
        self.details = details
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code, "message": self.message, "kind": self.kind,
            "details": self.details, "retry_after": self.retry_after,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DomainError":
        return DomainError(
            data["code"], data["message"], kind=data["kind"],
            details=data.get("details"), retry_after=data.get("retry_after"),
        )


class InvalidRequest(DomainError):
    kind = "invalid"
    code = "invalid_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(code or type(self).code, message, details=details)


class NotFound(DomainError):
    kind = "not_found"
    code = "not_found"


class Conflict(DomainError):
    kind = "conflict"
    code = "conflict"


class Forbidden(DomainError):
    kind = "forbidden"
    code = "forbidden"


class Unauthorized(DomainError):
    kind = "unauthorized"
    code = "unauthorized"


class PaymentRequired(DomainError):
    kind = "payment_required"
    code = "payment_required"


class RateLimited(DomainError):
    kind = "rate_limited"
    code = "rate_limited"


class Unavailable(DomainError):
    kind = "unavailable"
    code = "unavailable"


class InvalidState(Conflict):
    """The object is not in a state that allows this (a decided approval, a finished job or
    booking): the one code every domain uses for it, 409."""

    code = "invalid_state"


class InvalidJson(InvalidRequest):
    """A body that is not a JSON document this API accepts: bad syntax, invalid UTF-8, nesting too deep (400)."""

    code = "invalid_json"


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached (503, Retry-After)."""

    code = "database_unavailable"


class DatabaseBusy(Unavailable):
    """The database is busy (SQLite's writer lock held past the busy timeout); retry shortly (503)."""

    code = "database_busy"


class IdempotencyConflict(Conflict):
    """The idempotency key was used with another request, or its request is still being processed
    or was taken over by a retry (409). Errand's guard and the sandbox's providers both answer it."""

    code = "idempotency_conflict"
