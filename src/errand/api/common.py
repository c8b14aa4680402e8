"""What every dialect needs and nothing dialect-specific: status per error kind, the core handle."""

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from errand.kit.core import Core

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
