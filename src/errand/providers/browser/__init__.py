"""Providers reached through their web sites, driven by a real (Debian) Chromium.

- :mod:`.pool`     one browser per process, isolated contexts lent out a bounded number at once;
- :mod:`.site`     one visit to a site: pages, forms, obstacles, screenshots;
- :mod:`.cards`    what a card field is: the guard that keeps the autopilot off payment;
- :mod:`.flow`     the booking steps every sandbox-style site shares (search, choose, details, checkout);
- :mod:`.provider` the :class:`~errand.providers.base.JobProvider` every browser adapter is;
- :mod:`.sites`    the four sandbox sites (web-tables, web-stays, web-air, web-tickets).
"""

from errand.providers.browser.pool import BrowserPool, BrowserUnavailable, shared_pool
from errand.providers.browser.provider import WebProvider
from errand.providers.browser.cards import CardFieldRefused
from errand.providers.browser.sites import WebAir, WebStays, WebTables, WebTickets

__all__ = ["BrowserPool", "BrowserUnavailable", "CardFieldRefused", "WebAir", "WebProvider", "WebStays",
           "WebTables", "WebTickets", "shared_pool"]
