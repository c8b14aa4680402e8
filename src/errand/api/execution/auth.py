from typing import Annotated

from fastapi import Depends

from errand.api.common import bearer_principal
from errand.api.openapi import KeyHeader
from errand.identity.schemas import Principal

# The caller of the request's ``Authorization: Bearer`` key (errand.api.common.bearer_principal).
principal = KeyHeader("Authorization", bearer_principal)

Caller = Annotated[Principal, Depends(principal)]
