from typing import Annotated

from fastapi import Depends, Header, Request

from errand.api.common import core_of
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit.errors import Unauthorized, Unavailable


async def principal(request: Request,
                    x_integration_key: Annotated[str | None, Header(alias="X-Integration-Key")] = None) -> Principal:
    """A service caller: an Errand API key in ``X-Integration-Key``."""
    if not x_integration_key or not x_integration_key.strip():
        raise Unauthorized("unauthorized", "Send an API key in the X-Integration-Key header.")
    try:
        return await identity_service.authenticate(core_of(request).db, x_integration_key.strip())
    except Unavailable as exc:
        raise Unavailable("auth_backend_unavailable", "Authentication is unavailable; retry shortly.") from exc


Caller = Annotated[Principal, Depends(principal)]
