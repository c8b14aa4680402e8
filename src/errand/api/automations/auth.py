from typing import Annotated

from fastapi import Depends, Request

from errand.api.common import core_of, key_principal
from errand.api.openapi import KeyHeader
from errand.identity.schemas import Principal
from errand.kit.errors import Unauthorized


async def _integration_key(request: Request, x_integration_key: str | None) -> Principal:
    """A service caller: an Errand API key in ``X-Integration-Key``, counted against its daily limit
    like every other request of that key (429 ``rate_limited`` with ``Retry-After`` past it)."""
    if not x_integration_key or not x_integration_key.strip():
        raise Unauthorized("Send an API key in the X-Integration-Key header.")
    return await key_principal(core_of(request), x_integration_key.strip())


principal = KeyHeader("X-Integration-Key", _integration_key)

Caller = Annotated[Principal, Depends(principal)]
