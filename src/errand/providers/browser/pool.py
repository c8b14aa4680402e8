"""One Chromium per process, lent out as isolated browser contexts, a bounded number at once.

The browser is Debian's Chromium at ``settings.browser_path`` (never a downloaded one),
headless, with background networking, component updates and sync switched off. It is
started on first use, restarted if it dies, and closed with the provider registry (the
app's lifespan, or a worker's shutdown).

Each job step borrows one fresh context (no cookies or storage shared between jobs) with
:meth:`BrowserPool.context`; at most ``settings.browser_contexts`` are open at once and
further borrowers wait. A context is closed whatever happens to its borrower, including
cancellation, which is how a job that overruns ``maxJobDurationSeconds`` is stopped.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

# The class playwright.async_api re-exports as Error, from its own light module: importing the
# whole async API costs a second, which every `errand mcp` start would pay for nothing.
# async_playwright is imported when the browser first starts.
from playwright._impl._errors import Error as PlaywrightError

from errand.kit.config import Settings
from errand.kit.logging import get_logger

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Playwright

log = get_logger("errand.browser")

LAUNCH_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)
# After a failed launch, availability checks answer False without trying again for this long.
RETRY_LAUNCH_SECONDS = 30.0
CLOSE_TIMEOUT_SECONDS = 10.0


class BrowserUnavailable(Exception):
    """No browser could be started: the executable is missing or does not run."""


class BrowserPool:
    """The process's browser and the contexts lent out of it."""

    def __init__(self, executable_path: str, max_contexts: int, *, launch_timeout_seconds: float = 30.0) -> None:
        self.executable_path = executable_path
        self.max_contexts = max_contexts
        self._launch_timeout_ms = launch_timeout_seconds * 1000
        self._slots = asyncio.Semaphore(max_contexts)
        self._lock = asyncio.Lock()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._failed_at: float | None = None
        self._failure = ""
        # What is lent out now, and in all; read by tests and the health check.
        self.open_contexts = 0
        self.contexts_opened = 0

    @property
    def running(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    def installed(self) -> bool:
        return os.path.isfile(self.executable_path) and os.access(self.executable_path, os.X_OK)

    def _failed_recently(self) -> bool:
        return self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_LAUNCH_SECONDS

    async def available(self) -> bool:
        """Whether a context can be had: the browser runs, or its executable is there and did not just fail.

        Cheap and never raises; it does not start the browser (a chain that never reaches a
        browser provider should not cost one).
        """
        if self.running:
            return True
        return self.installed() and not self._failed_recently()

    async def _ensure(self) -> Browser:
        if self.running:
            return self._browser  # type: ignore[return-value]
        async with self._lock:
            if self.running:
                return self._browser  # type: ignore[return-value]
            await self._shutdown()  # what is left of a browser that died
            if not self.installed():
                self._failed(f"no browser executable at {self.executable_path}")
            if self._failed_recently():
                raise BrowserUnavailable(self._failure)
            from playwright.async_api import async_playwright

            try:
                self._playwright = await async_playwright().start()
                self._browser = await self._playwright.chromium.launch(
                    executable_path=self.executable_path, headless=True, args=list(LAUNCH_ARGS),
                    timeout=self._launch_timeout_ms,
                )
            except PlaywrightError as exc:
                await self._shutdown()
                self._failed(f"{self.executable_path} did not start: {exc.message.splitlines()[0]}")
            self._failed_at = None
            log.info("browser_started", executable=self.executable_path, version=self._browser.version)
            return self._browser

    def _failed(self, why: str) -> None:
        self._failed_at, self._failure = time.monotonic(), why
        log.warning("browser_unavailable", reason=why)
        raise BrowserUnavailable(why)

    @asynccontextmanager
    async def context(self, **options: Any) -> AsyncIterator[BrowserContext]:
        """A fresh browser context for one job step, closed on the way out whatever happens.

        Waits for a free slot first. Raises :class:`BrowserUnavailable` when no browser runs.
        """
        async with self._slots:
            browser = await self._ensure()
            # Created under a shield: a cancellation arriving meanwhile must not leak the context.
            creating = asyncio.ensure_future(browser.new_context(**options))
            try:
                context = await asyncio.shield(creating)
            except asyncio.CancelledError:
                creating.add_done_callback(_close_when_created)
                raise
            except PlaywrightError as exc:
                raise BrowserUnavailable(f"the browser refused a new context: {exc.message}") from exc
            self.open_contexts += 1
            self.contexts_opened += 1
            try:
                yield context
            finally:
                self.open_contexts -= 1
                await _close(context)

    async def _shutdown(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        if browser is not None:
            try:
                await asyncio.wait_for(browser.close(), CLOSE_TIMEOUT_SECONDS)
            except (PlaywrightError, TimeoutError):
                pass
        if playwright is not None:
            try:
                await asyncio.wait_for(playwright.stop(), CLOSE_TIMEOUT_SECONDS)
            except (PlaywrightError, TimeoutError, OSError):
                pass

    async def aclose(self) -> None:
        """Close the browser (and so every context still open). The pool can start it again."""
        async with self._lock:
            if self._browser is not None:
                log.info("browser_stopped", contexts_opened=self.contexts_opened)
            await self._shutdown()


async def _close(context: BrowserContext) -> None:
    # Shielded: when the borrower was cancelled (a job past its time budget), the close must
    # still run to the end even if a second cancellation arrives meanwhile.
    closing = asyncio.ensure_future(asyncio.wait_for(context.close(), CLOSE_TIMEOUT_SECONDS))
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        raise
    except (PlaywrightError, TimeoutError):
        pass  # the browser is gone, or hung: it is restarted on next use


def _close_when_created(creating: "asyncio.Future[BrowserContext]") -> None:
    if not creating.cancelled() and creating.exception() is None:
        asyncio.ensure_future(_close(creating.result()))


# One pool per Settings object: the browser adapters of one app (or worker) share it, and two
# apps in one process (as in tests) do not.
_POOLS: dict[int, tuple[Settings, BrowserPool]] = {}


def shared_pool(settings: Settings) -> BrowserPool:
    """The pool every browser adapter built from ``settings`` uses."""
    entry = _POOLS.get(id(settings))
    if entry is None or entry[0] is not settings:
        entry = (settings, BrowserPool(settings.browser_path, settings.browser_contexts))
        _POOLS[id(settings)] = entry
    return entry[1]


def forget_shared_pool(settings: Settings, pool: BrowserPool) -> None:
    """Drop ``pool`` from the shared pools once it is closed (the registry shuts down)."""
    entry = _POOLS.get(id(settings))
    if entry is not None and entry[1] is pool:
        del _POOLS[id(settings)]
