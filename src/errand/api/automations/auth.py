from typing import Annotated

from fastapi import Depends, Header, Request

from errand.api.common import core_of, key_principal
from errand.identity.schemas import Principal
from errand.kit.errors import Unauthorized


async def principal(request: Request,
                    x_integration_key: Annotated[str | None, Header(alias="X-Integration-Key")] = None) -> Principal:
    """A service caller: an Errand API key in ``X-Integration-Key``, counted against its daily limit
    like every other request of that key (429 ``rate_limited`` with ``Retry-After`` past it)."""
    if not x_integration_key or not x_integration_key.strip():
        raise Unauthorized("unauthorized", "Send an API key in the X-Integration-Key header.")
    return await key_principal(core_of(request), x_integration_key.strip())


Caller = Annotated[Principal, Depends(principal)]
