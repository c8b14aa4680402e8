"""The errors the notification outbox raises at queue time (issue 12, "Steps": notification).

A failed *delivery* is not an error raised to the caller: it is the row's ``status`` (failed) and
``last_error``; only what makes queueing itself impossible is raised here.
"""

from errand.kit.errors import InvalidRequest


class RecipientUnresolved(InvalidRequest):
    """A role recipient (``role:traveler``, ``role:admins``, ``role:finance``) names nobody with an
    address for the channel: no such job, no traveler contact, no contact set for the role (400)."""

    code = "recipient_unresolved"


class InvalidRecipient(InvalidRequest):
    """A literal recipient that is not an address of the channel: an e-mail address, an E.164 phone
    number, a chat channel (``#ops`` or ``C0123ABCD``), an http(s) URL (400)."""

    code = "invalid_recipient"


class ChannelNotConfigured(InvalidRequest):
    """The channel cannot send from this deployment: e-mail without ``ERRAND_SMTP_HOST`` (400).
    Raised at queue time, so the step fails clearly instead of queueing mail nobody sends."""

    code = "channel_not_configured"


class InvalidChannel(InvalidRequest):
    """A channel other than email, sms, chat and webhook (400)."""

    code = "invalid_channel"
