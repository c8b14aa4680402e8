"""The approvals' periodic work (:mod:`errand.kit.tasks`): expire every organization's due
approvals, and finish interrupted decisions of every registered subject."""

from errand.approvals import service
from errand.kit.tasks import Periodic

PERIODIC = [
    Periodic("expire_approvals", 15, service.expire_due_approvals),
    Periodic("finish_decided_approvals", 30, service.finish_decided_approvals),
]
