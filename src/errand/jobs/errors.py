"""The errors of execution jobs (see :mod:`errand.kit.errors` for kinds and statuses).

A job's state that forbids the operation (a finished job cancelled) is the shared
:class:`~errand.kit.errors.InvalidState`; input that cannot be acted on without a code of its
own is :class:`~errand.kit.errors.InvalidRequest`; a search nobody serves is
:class:`~errand.kit.errors.NotFound`.
"""

from errand.kit.errors import InvalidRequest, NotFound, Unauthorized


class JobNotFound(NotFound):
    """No job of that id in the caller's organization and mode (404)."""

    code = "job_not_found"


class SnapshotNotFound(NotFound):
    """The job (which the caller may see) has no snapshot of that id (404)."""

    code = "snapshot_not_found"


class InvalidSignature(Unauthorized):
    """A provider event not signed by the provider it names, under that provider's secret (401)."""

    code = "invalid_signature"


class InvalidEvent(InvalidRequest):
    """A well-signed provider event whose body is not one; ``details`` lists each field (400)."""

    code = "invalid_event"

