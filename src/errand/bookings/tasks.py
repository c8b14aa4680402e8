"""The bookings domain's background work (:mod:`errand.kit.tasks`): finishing accepted cancels
whose request died after the provider was asked. Decided approvals are finished through the
approval subjects (:mod:`errand.bookings.decisions`, swept by :mod:`errand.approvals.tasks`)."""

from errand.bookings import service
from errand.kit.tasks import Periodic

PERIODIC = [Periodic("finish_interrupted_cancels", 30, service.finish_interrupted_cancels)]
