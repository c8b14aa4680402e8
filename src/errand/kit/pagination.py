"""Opaque cursors for keyset pagination: a list's sort key, sealed from casual editing by nothing
more than base64url (a cursor grants nothing: every page is still filtered by the caller's
organization and key scope).

A list encodes the sort key of its page's last row with :func:`encode`; the next request
hands the cursor back, and :func:`decode` returns the key or raises InvalidRequest 400 naming
the ``cursor`` parameter, so a forged or truncated cursor is a clear error, never a 500.
"""

import base64
import json
from collections.abc import Callable
from typing import Any

from errand.kit import inputs
from errand.kit.errors import InvalidRequest


def encode(key: list[Any]) -> str:
    """``key`` (JSON values: the sort columns of the last row shown) as a URL-safe cursor."""
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str, parse: Callable[[list[Any]], Any] = lambda key: key) -> Any:
    """The key ``cursor`` carries, passed through ``parse`` (which may raise ValueError or TypeError
    for a key of the wrong shape). Raises InvalidRequest (400, ``details[0].path`` = ``cursor``)
    for anything this API did not hand out."""
    try:
        key = inputs.parse_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, list):
            raise TypeError("a cursor is a list")
        return parse(key)
    except (ValueError, TypeError, InvalidRequest) as exc:
        raise InvalidRequest("cursor: not a cursor this API returned.",
                             details=[{"path": "cursor", "message": "invalid"}]) from exc
