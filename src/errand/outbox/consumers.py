"""Who receives Errand's own events: consumers registered at composition.

Automations' triggers and outbound webhooks are the two to come (neither exists yet); each is
an :class:`EventConsumer`, registered by :func:`errand.composition.build_core` in
:class:`EventConsumers` on the core (``core.event_consumers``), as approval subjects are.
"""

from collections.abc import Iterator
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from errand.outbox.schemas import Event


class EventConsumer(Protocol):
    """What the dispatcher hands every event to (a module or an object with this method will do).

    ``accept`` runs in the dispatcher's transaction, the one that marks the event dispatched:
    it writes its own rows (a webhook delivery, an automation execution) and enqueues its own
    tasks (:func:`errand.kit.tasks.enqueue`, sent once that transaction commits), so the hand-over
    happens exactly once. It must not call the network nor commit. Raising rolls the whole batch
    back — nothing of it is marked dispatched, and every consumer gets the batch again on the
    next dispatch — so a consumer raises only when it cannot write now (the database), never
    for one event it dislikes (it records that event's failure in its own rows instead).
    """

    async def accept(self, session: AsyncSession, event: Event) -> None: ...


class EventConsumers:
    """The consumers of the core, in registration order."""

    def __init__(self, *consumers: Any) -> None:
        self._consumers: tuple[EventConsumer, ...] = tuple(consumers)

    def __iter__(self) -> Iterator[EventConsumer]:
        return iter(self._consumers)

    def __len__(self) -> int:
        return len(self._consumers)
