"""The core, composed from settings, and ``errand mcp``: what every kind of process builds first.

Kept apart from :mod:`errand.main` (the HTTP app and the worker), so that ``errand mcp``, which a
desktop MCP client starts for every session, imports no web framework, no other dialect, no
sandbox marketplace and no queue, and answers ``initialize`` fast (``bench/mcp_stdio_startup.py``).
"""

from errand.approvals import tasks as approval_tasks
from errand.approvals.subjects import ApprovalSubjects
from errand.automations import gates as automation_gates
from errand.automations import tasks as automation_tasks
from errand.automations.bus import BusConsumer
from errand.bookings import decisions as booking_decisions
from errand.bookings import tasks as booking_tasks
from errand.guard.policy_cache import PolicyCache
from errand.guard.rate_limits import RateLimits
from errand.identity.authenticator import Authenticator
from errand.jobs import approvals as job_approvals
from errand.jobs import tasks as job_tasks
from errand.kit import crypto, logging
from errand.kit.config import Settings
from errand.kit.core import Core
from errand.kit.db import Database
from errand.kit.tasks import TaskRegistry
from errand.notify import tasks as notify_tasks
from errand.outbox import tasks as outbox_tasks
from errand.outbox.consumers import EventConsumers
from errand.providers.registry import ProviderRegistry
from errand.webhooks import tasks as webhook_tasks
from errand.webhooks.service import WebhookConsumer


def build_core(settings: Settings) -> Core:
    """The core of one process: its database, provider registry, rate limits, API-key and policy
    caches, every domain's tasks and periodic work (:mod:`errand.kit.tasks`) and the approval
    subjects (:mod:`errand.approvals.subjects`) and the consumers of Errand's own events
    (:mod:`errand.outbox.consumers`), with the personal-data key loaded (created 0600
    under ``data_dir`` on first start). Close it with ``await core.aclose()`` when the process
    stops serving.

    Its database has no task sender: a process that runs background work sets one
    (:mod:`errand.main`); elsewhere (``errand mcp``, the CLI) enqueued calls are dropped and the
    domains' recovery sweeps find the work again (a job left ``pending``)."""
    crypto.configure(crypto.load_or_create_key(settings.secret_key, settings.data_dir))
    db = Database(settings.effective_database_url)
    return Core(
        settings=settings,
        db=db,
        providers=ProviderRegistry.from_entry_points(settings),
        rate_limits=RateLimits(settings.redis_url),
        authenticator=Authenticator(db, cache_seconds=settings.auth_cache_seconds,
                                    flush_seconds=settings.last_used_flush_seconds),
        policy_cache=PolicyCache(db),
        tasks=TaskRegistry.collect(job_tasks, booking_tasks, approval_tasks, outbox_tasks, notify_tasks,
                                   webhook_tasks, automation_tasks),
        approval_subjects=ApprovalSubjects(booking_decisions, job_approvals, automation_gates),
        # Automations' triggers (the bus) and outbound webhooks.
        event_consumers=EventConsumers(BusConsumer(), WebhookConsumer()),
    )


async def run_mcp_stdio(settings: Settings, api_key: str | None) -> None:
    """``errand mcp``: the MCP tools over stdin/stdout, acting as ``api_key``, until stdin closes."""
    from errand.api.mcp import stdio as mcp_stdio

    logging.configure(settings.log_level, settings.log_format)
    core = build_core(settings)
    try:
        await mcp_stdio.serve_stdio(core, api_key)
    finally:
        await core.aclose()
