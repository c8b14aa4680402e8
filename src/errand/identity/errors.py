"""Identity's errors: credentials and key scopes (see :mod:`errand.kit.errors` for kinds and statuses).

Every Unauthorized reads UNAUTHORIZED in the reservations dialect, MCP and automations; the
execution dialect names the precise reason. A caller without the admin role is the generic
:class:`errand.kit.errors.Forbidden` (``forbidden``).
"""

from errand.kit.errors import Conflict, Forbidden, Unauthorized, Unavailable


class MissingAuthorization(Unauthorized):
    """No ``Authorization`` header (401)."""

    code = "missing_authorization"


class InvalidAuthScheme(Unauthorized):
    """An ``Authorization`` header that is not ``Bearer …`` (401)."""

    code = "invalid_auth_scheme"


class EmptyApiKey(Unauthorized):
    """``Authorization: Bearer`` with nothing after it (401)."""

    code = "empty_api_key"


class MalformedApiKey(Unauthorized):
    """A key that cannot be one Errand minted (401)."""

    code = "malformed_api_key"


class InvalidApiKey(Unauthorized):
    """A key that is unknown, revoked or expired (401)."""

    code = "invalid_api_key"


class AuthBackendUnavailable(Unavailable):
    """Keys cannot be checked: the database cannot be reached (503, fails closed)."""

    code = "auth_backend_unavailable"


class ScenarioNotAllowed(Forbidden):
    """The key is not scoped to the scenario (403; POLICY_VIOLATION in the reservations dialect and MCP)."""

    code = "scenario_not_allowed"


class AmbiguousPrefix(Conflict):
    """Several keys share the prefix given to revoke one (409)."""

    code = "ambiguous_prefix"
