"""What every dialect needs and nothing dialect-specific: status per error kind, the core handle."""

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit.core import Core
from errand.kit.errors import RateLimited, Unavailable

STATUS_BY_KIND = {
    "invalid": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404, "conflict": 409,
    "rate_limited": 429, "unavailable": 503, "internal": 500,
}


def core_of(request: Request) -> Core:
    return request.app.state.core


def validation_issues(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{field, message}``, field paths in the client's own names."""
    issues = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        if err.get("type") == "json_invalid":
            issues.append({"field": "body", "message": "Request body is not valid JSON."})
            continue
        msg = err.get("msg", "invalid")
        if err.get("type") == "missing" and not loc:
            msg = "A JSON request body is required."
        issues.append({"field": ".".join(loc) or "body", "message": msg})
    return issues


def summarize(issues: list[dict[str, Any]]) -> str:
    return "; ".join(f"{i['field']}: {i['message']}" for i in issues)


async def bearer_principal(request: Request, authorization: str | None) -> Principal:
    """The caller of an ``Authorization: Bearer`` key, checked, with its daily request limit applied.

    A database that cannot be reached fails closed: Unavailable ``auth_backend_unavailable``.
    """
    core = core_of(request)
    raw = identity_service.parse_authorization(authorization)
    try:
        caller = await identity_service.authenticate(core.db, raw)
    except Unavailable as exc:
        raise Unavailable("auth_backend_unavailable", "Authentication is unavailable; retry shortly.") from exc
    retry_after = await core.rate_limits.hit_key_daily(caller.api_key_id, caller.rate_limit_per_day)
    if retry_after is not None:
        raise RateLimited("rate_limited", f"This API key allows {caller.rate_limit_per_day} requests per day.",
                          retry_after=retry_after)
    return caller
