"""The sandbox's booking web sites: providers reachable only through a multi-page site.

One site per scenario (web-tables, web-stays, web-air, web-tickets; ``kind: browser`` in
``providers.json``), served under ``/web/{provider_id}/`` of the sandbox app, for Errand's
browser autopilot to drive with a real Chromium and for people to finish what it could
not. Their DOM, URLs, obstacles and test venues are a contract: docs/sandbox-web.md.

- :mod:`.sites`: what each site's forms ask, its look, server-side validation;
- :mod:`.sessions`: the visitor's session in the database and each step's rules;
- :mod:`.routes`: the flow (search → results → details → obstacle → checkout);
- :mod:`.checkout`: the checkout page behind each handoff URL, and continue links;
- :mod:`.pages` / :mod:`.html`: the HTML.
"""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from errand.kit.db import Database
from errand.sandbox.catalog import load_catalog
from errand.sandbox.faults import FaultInjector
from errand.sandbox.notify import ProviderEvents
from errand.sandbox.web import checkout, pages
from errand.sandbox.web import routes as flow
from errand.sandbox.web.sites import SITES

__all__ = ["error_page", "is_web", "routes"]


def routes(db: Database, faults: FaultInjector, events: ProviderEvents, hold_ttl_seconds: int) -> APIRouter:
    missing = {p.id for p in load_catalog().values() if p.is_browser} ^ set(SITES)
    if missing:
        raise ValueError(f"web providers without a site, or sites without a provider: {sorted(missing)}")
    router = APIRouter()
    router.include_router(flow.routes(db, faults, hold_ttl_seconds))
    router.include_router(checkout.routes(db, faults, events))
    return router


def is_web(request: Request) -> bool:
    """Whether a request is for a web site page (which answers in HTML, not JSON)."""
    root = request.scope.get("root_path", "")
    path = request.url.path.removeprefix(root) if root and request.url.path.startswith(root) else request.url.path
    return path.startswith("/web/")


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    """An error on a web page, as a page: 404 ``not-found``, 503 ``error`` (retry), others ``error``."""
    parts = request.url.path.split("/web/", 1)
    site = SITES.get(parts[1].split("/", 1)[0]) if len(parts) == 2 else None
    if status == 404:
        return pages.message(site, "not-found", "Page not found", message, 404)
    if status == 503:
        response = pages.message(site, "error", "Please try again", message, 503, main={"data-reason": code})
        response.headers["Retry-After"] = "1"
        return response
    return pages.message(site, "error", "Something went wrong", message, status, main={"data-reason": code})
