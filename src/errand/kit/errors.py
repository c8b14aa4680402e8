"""The core's one exception family.

Every failure the core reports to a caller is a :class:`DomainError` with a stable
snake_case ``code`` and a ``kind``. Kinds, not codes, decide the HTTP status in each
dialect, so a dialect maps a handful of kinds and renders its own body:

- ``invalid``        the input cannot be acted on (400)
- ``unauthorized``   no valid credential (401)
- ``forbidden``      the credential may not do this, or a policy refuses it (403)
- ``not_found``      nothing of that id in the caller's organization (404)
- ``conflict``       the state of the world refuses it: capacity, idempotency, state (409)
- ``rate_limited``   too many requests; ``retry_after`` seconds says when to come back (429)
- ``unavailable``    a backend (database, provider) cannot be reached; safe to retry (503)
- ``internal``       a bug; never cached, never detailed (500)

An error with ``replayed`` true is the stored outcome of an earlier request with the same
idempotency key (:mod:`errand.guard.idempotency`), answered again; each dialect says so as
it says it for a replayed success (REST: ``Idempotent-Replayed: true``; MCP: ``replayed``).
"""

from typing import Any, Literal

Kind = Literal[
    "invalid", "unauthorized", "forbidden", "not_found", "conflict",
    "rate_limited", "unavailable", "internal",
]


class DomainError(Exception):
    kind: Kind = "internal"
    replayed: bool = False

    def __init__(
        self,
        code: str,
        message: str,
        *,
        kind: Kind | None = None,
        details: Any = None,
        retry_after: int | None = None,
    ) -> None:
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
        return cls(
            data["code"], data["message"], kind=data["kind"],
            details=data.get("details"), retry_after=data.get("retry_after"),
        )


class InvalidRequest(DomainError):
    kind = "invalid"

    def __init__(self, message: str, *, details: Any = None, code: str = "invalid_request") -> None:
        super().__init__(code, message, details=details)


class NotFound(DomainError):
    kind = "not_found"


class Conflict(DomainError):
    kind = "conflict"


class Forbidden(DomainError):
    kind = "forbidden"


class Unauthorized(DomainError):
    kind = "unauthorized"


class RateLimited(DomainError):
    kind = "rate_limited"


class Unavailable(DomainError):
    kind = "unavailable"
