from typing import Annotated

from fastapi import Depends, Header, Request

from errand.api.common import core_of
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit.errors import RateLimited, Unavailable


async def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller's API key, checked, with its daily request limit applied."""
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


Caller = Annotated[Principal, Depends(principal)]
