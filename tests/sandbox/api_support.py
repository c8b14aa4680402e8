"""Calling the sandbox providers' JSON APIs directly, as Errand's adapters do: with each provider's credential.

The sandbox admits only the holder of a provider's token (``Settings.sandbox_api_token``) to
that provider's API. Tests that read availability, holds or the ledger behind the adapters'
backs pass ``auth=credentials(settings)``; for the full test server (tests/conftest.py),
``auth=server_credentials()``.
"""

import re
from collections.abc import Generator
from urllib.parse import unquote

import httpx

from errand.kit.config import Settings
from tests.conftest import SECRET_KEY

_PROVIDER_API = re.compile(r"/sandbox/api/([^/]+)")


class ProviderCredentials(httpx.Auth):
    """``Authorization: Bearer <that provider's token>`` on every call under ``/sandbox/api/{provider_id}/``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        match = _PROVIDER_API.search(request.url.path)
        if match:
            request.headers["Authorization"] = f"Bearer {self._settings.sandbox_api_token(unquote(match[1]))}"
        yield request


def credentials(settings: Settings) -> ProviderCredentials:
    return ProviderCredentials(settings)


def server_credentials() -> ProviderCredentials:
    """The credentials of the test server of tests/conftest.py (whose secret key is ``SECRET_KEY``)."""
    return ProviderCredentials(Settings(secret_key=SECRET_KEY))
