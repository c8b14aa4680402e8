"""The bookings' errors (see :mod:`errand.kit.errors` for kinds and statuses).

A booking also raises generic kit errors (``not_found`` for a restaurant no provider knows,
``invalid_request`` for a time in the past), :class:`errand.kit.errors.InvalidState` for a
transaction that cannot be changed any more, and the guard's and identity's own errors.
"""

from errand.kit.errors import NotFound


class TransactionNotFound(NotFound):
    """No transaction of that id in the caller's organization and mode (404; NOT_FOUND in the
    reservations dialect and MCP)."""

    code = "transaction_not_found"
