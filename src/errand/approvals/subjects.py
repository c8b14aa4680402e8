"""What an approval gates: one handler per subject type, registered at composition.

The guard keeps approval records; what a decision does belongs to the module whose action
waits. Each such module is a :class:`SubjectHandler` (``errand.bookings.decisions`` for a
booking transaction, ``errand.jobs.approvals`` for an execution job), and
:func:`errand.composition.build_core` registers them in :class:`ApprovalSubjects` on the core,
so a new kind of gate (an automation's execution step) is one more registration.
"""

from collections.abc import Iterator
from typing import Any, Literal, Protocol

from errand.identity.schemas import Principal
from errand.kit.core import Core
from errand.models import Approval

Decision = Literal["approved", "denied"]


class SubjectHandler(Protocol):
    """The small protocol every approval subject implements (a module with these names will do).

    ``subject_type`` is the approvals' ``subject_type`` it handles, also the name dialects show it
    under (the automations contract's ``<subject_type>_id`` and ``<subject_type>_status``).
    """

    subject_type: str

    async def decide(self, core: Core, principal: Principal, approval: Approval, decision: Decision,
                     note: str | None) -> str | None:
        """Record ``decision`` on ``approval`` (as loaded for ``principal``, in a unit of work now
        closed) and apply it to its subject; returns the subject's new status
        (None when there was nothing left to apply). Raises InvalidState when the approval is no
        longer pending, has expired (it is expired first) or no longer matches its subject (it is
        voided). Who may decide is checked by :mod:`errand.approvals.service` beforehand."""
        ...

    async def expire(self, core: Core, approval: Approval) -> None:
        """Expire a pending approval past its deadline and release what its subject held; does
        nothing if someone decided it meanwhile."""
        ...

    async def finish_decided(self, core: Core) -> int:
        """Carry out decisions whose carrying-out was interrupted (a crash after the decision);
        returns how many were finished. Periodic (:mod:`errand.approvals.tasks`)."""
        ...


class ApprovalSubjects:
    """The handlers of every approval subject, by subject type, in registration order."""

    def __init__(self, *handlers: Any) -> None:
        self._handlers: dict[str, SubjectHandler] = {}
        for handler in handlers:
            if handler.subject_type in self._handlers:
                raise ValueError(f"Approval subject {handler.subject_type!r} is registered twice.")
            self._handlers[handler.subject_type] = handler

    def __getitem__(self, subject_type: str) -> SubjectHandler:
        try:
            return self._handlers[subject_type]
        except KeyError:
            raise LookupError(f"No handler is registered for approvals of {subject_type!r}.") from None

    def __iter__(self) -> Iterator[SubjectHandler]:
        return iter(self._handlers.values())


def of(core: Core) -> ApprovalSubjects:
    """The core's registered approval subjects."""
    return core.approval_subjects
