from typing import Annotated

from fastapi import Depends, Header, Request

from errand.api.common import bearer_principal
from errand.identity.schemas import Principal


async def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    return await bearer_principal(request, authorization)


Caller = Annotated[Principal, Depends(principal)]
