"""The outbound webhooks' errors."""

from errand.kit.errors import InvalidRequest, NotFound


class WebhookNotFound(NotFound):
    """No endpoint with this id in the caller's organization and mode (404)."""

    code = "webhook_not_found"


class WebhookDeliveryNotFound(NotFound):
    """No delivery with this id for this endpoint (404)."""

    code = "webhook_delivery_not_found"


class WebhookUrlRefused(InvalidRequest):
    """A URL Errand will not call: not http(s), credentials, too long, or resolving to a private,
    loopback, link-local or reserved address (400, ``details[0].path`` = ``url``)."""

    code = "webhook_url_refused"
