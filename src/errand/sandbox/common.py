"""What the sandbox's HTTP modules share: its one error body, request headers, date and time input.

The sandbox is a separate origin in spirit, so it has its own error body,
``{"error": "<code>", "message": "…", "nearest": ["HH:MM", …]}``, shared by every API it
serves and by nothing of Errand's dialects.
"""

import re
from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator

from errand.kit.errors import InvalidRequest

STATUS_BY_KIND = {
    "invalid": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404, "conflict": 409, "unavailable": 503,
}


def error_response(
    status: int, code: str, message: str, nearest: list[str] | None = None, retry_after: int | None = None
) -> JSONResponse:
    headers = {"Retry-After": str(retry_after or 1)} if status == 503 else None
    return JSONResponse({"error": code, "message": message, "nearest": nearest or []}, status, headers=headers)


async def _idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
    if not idempotency_key or len(idempotency_key) > 128:
        raise InvalidRequest("An Idempotency-Key header of 1 to 128 characters is required.", code="invalid")
    return idempotency_key


IdempotencyKey = Annotated[str, Depends(_idempotency_key)]


def _strict(pattern: str, parse: Any, shape: str) -> Any:
    """Accept only strings of one exact shape: no timestamps, no lenient date formats."""

    def validate(value: Any) -> Any:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ValueError(f"must be {shape}")
        return parse(value)

    return BeforeValidator(validate)


Day = Annotated[date, _strict(r"\d{4}-\d{2}-\d{2}", date.fromisoformat, "a date, YYYY-MM-DD")]
Clock = Annotated[time, _strict(r"\d{2}:\d{2}", time.fromisoformat, "a time, HH:MM")]
LocalStart = Annotated[
    datetime,
    _strict(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", datetime.fromisoformat, "a venue-local start, YYYY-MM-DDTHH:MM"),
]
