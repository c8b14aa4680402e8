"""The four channels a notification goes out on: email (SMTP), sms (Twilio's API shape), chat
(Slack's Web API shape) and webhook (Standard Webhooks signatures).

Each channel module offers ``address(value) -> str`` (a literal recipient checked and
normalised, or :class:`errand.notify.errors.InvalidRecipient`), ``configured(settings) -> bool``
and ``async send(settings, message) -> str | None`` (the provider's message id), which raises
:class:`DeliveryFailed` saying whether a later attempt may succeed.
"""

from types import ModuleType

from errand.notify.channels import chat, email, sms, webhook
from errand.notify.channels.base import DeliveryFailed, OutgoingMessage

CHANNELS: dict[str, ModuleType] = {"email": email, "sms": sms, "chat": chat, "webhook": webhook}

__all__ = ["CHANNELS", "DeliveryFailed", "OutgoingMessage"]
