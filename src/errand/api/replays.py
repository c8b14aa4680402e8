"""Replays of completed idempotent requests answered in front of a dialect's app.

A retry that carries a completed ``Idempotency-Key`` with the same body gets the first answer
again (:mod:`errand.guard.idempotency`), and the process already keeps that key's record in
memory; what such a replay still costs is the dialect app itself: its middleware, routing,
dependency solving, body validation and the answer's rendering, about three quarters of the
CPU of a replay. :class:`ReplayShortcut` wraps a dialect's app and, once the app has answered
a request as a replay (``Idempotent-Replayed: true``), keeps the bytes it sent; an exactly
equal request (the same API key, method, path, query, ``Content-Type``, ``Idempotency-Key`` and
body bytes) is then answered with them, while the guard still holds the key completed with
that body (:func:`errand.guard.service.still_completed`: never past the record's expiry).

Only an exact hit is answered here, and only after what the dialect would check first:

- the API key is authenticated again (the process's principal cache; a key revoked in this
  process is refused at once, elsewhere within ``ERRAND_AUTH_CACHE_SECONDS``) and must give
  the same principal (organization, mode, role, scenarios) as when the answer was kept;
- the key's daily request limit counts the request, as every route does;
- ``Server-Timing`` gets the same ``auth`` and ``idempotency`` phases.

Anything else, a refused key, a reached limit, a single-valued header sent twice, an
``X-Integration-Key``, falls through to the app unchanged (the body it read is handed on),
which answers as it always did. A kept answer's body (customer details included) stays sealed
in memory as the guard's cache keeps it (:func:`errand.kit.crypto.seal`), opened for each
send; at most ``max_answers`` are kept, each for at most the guard's replay cache time.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errand.guard import service as guard_service
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit import crypto, logging, metrics, timing
from errand.kit.core import Core
from errand.kit.errors import DomainError

# Request headers that must be sent once (the input boundary refuses them twice) and that the answer depends on.
_SINGLE = (b"authorization", b"idempotency-key", b"content-type", b"x-integration-key")
# Bodies of idempotent requests are small; a larger one is handed on unread past this.
_MAX_BODY = 64 * 1024
_REPLAYED = (b"idempotent-replayed", b"true")


@dataclass(frozen=True, slots=True)
class _Answer:
    """A replay as the app sent it, and what must still hold to send it again."""

    principal: Principal
    replayed: guard_service.Replayed
    start: Message
    sealed_body: bytes


class ReplayShortcut:
    """ASGI layer in front of ``app`` (a dialect) answering exact repeats of its replays; see the module.

    ``core`` gives the authenticator and rate limits the dialect itself uses. ``url_path_for``
    is the app's, so a router that asks the dialect for its paths still finds them."""

    def __init__(self, app: ASGIApp, core: Core, *, max_answers: int = 10_000) -> None:
        self.app = app
        self.core = core
        self._answers: TTLCache[tuple[Any, ...], _Answer] = TTLCache(
            maxsize=max_answers, ttl=guard_service.REPLAY_CACHE_SECONDS)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        return self.app.url_path_for(name, **path_params)  # type: ignore[attr-defined]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _single_headers(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        if (headers is None or b"idempotency-key" not in headers or b"x-integration-key" in headers
                or not headers.get(b"authorization")):
            await self.app(scope, receive, send)
            return
        read, body = await _read_body(receive)
        pending = iter(read)

        async def receive_again() -> Message:
            return next(pending, None) or await receive()

        if body is None:  # too large, or the client went away: the app deals with it
            await self.app(scope, receive_again, send)
            return
        request = (hashlib.sha256(headers[b"authorization"]).digest(), scope["path"], scope.get("query_string", b""),
                   headers.get(b"content-type"), headers[b"idempotency-key"], hashlib.sha256(body).digest())
        answer = self._answers.get(request)
        if answer is not None:
            if await self._send_again(answer, headers[b"authorization"], send):
                return
            self._answers.pop(request, None)
        await self._run_and_keep(request, headers[b"authorization"], scope, receive_again, send)

    async def _send_again(self, answer: _Answer, authorization: bytes, send: Send) -> bool:
        """Send ``answer`` if the key still gives its principal and the guard still holds its record."""
        if not guard_service.still_completed(answer.replayed):
            return False
        with timing.phase("auth"):
            principal = await self._principal(authorization)
            if principal != answer.principal:
                return False
            if await self.core.rate_limits.hit_key_daily(principal.api_key_id, principal.rate_limit_per_day):
                return False  # the app refuses it (429) as it always does
        with timing.phase("idempotency"):
            if not guard_service.still_completed(answer.replayed):
                return False
        logging.note_caller(principal.organization_id, principal.key_prefix)
        metrics.idempotency_replayed()
        await send({**answer.start, "headers": list(answer.start["headers"])})
        await send({"type": "http.response.body", "body": crypto.unseal(answer.sealed_body), "more_body": False})
        return True

    async def _run_and_keep(self, request: tuple[Any, ...], authorization: bytes, scope: Scope, receive: Receive,
                            send: Send) -> None:
        """Run the app; keep what it sent when it was one replay of a cached completed key."""
        sent: list[Message] = []

        async def keep(message: Message) -> None:
            # A copy: the layers outside may add headers to the message they are handed (Server-Timing).
            sent.append({**message, "headers": list(message["headers"])} if "headers" in message else message)
            await send(message)

        with guard_service.noting_replays() as noted:
            await self.app(scope, receive, keep)
        if len(noted) != 1 or not sent or sent[0]["type"] != "http.response.start":
            return
        start = sent[0]
        if _REPLAYED not in [(k.lower(), v) for k, v in start.get("headers", ())]:
            return
        if any(m["type"] != "http.response.body" for m in sent[1:]) or (sent[-1].get("more_body") if len(sent) > 1
                                                                        else True):
            return
        principal = await self._principal(authorization)
        if principal is not None:
            self._answers[request] = _Answer(principal, noted[0], start,
                                             crypto.seal(b"".join(m.get("body", b"") for m in sent[1:])))

    async def _principal(self, authorization: bytes) -> Principal | None:
        """The principal of an ``Authorization`` header's key, or None when the app would refuse it."""
        try:
            raw = identity_service.parse_authorization(authorization.decode("latin-1"))
            return await self.core.authenticator.authenticate(raw)
        except DomainError:
            return None


def _single_headers(scope: Scope) -> dict[bytes, bytes] | None:
    """The request's single-valued headers by lower-case name; None when one of them is sent twice."""
    found: dict[bytes, bytes] = {}
    for key, value in scope["headers"]:
        name = key.lower()
        if name in _SINGLE:
            if name in found:
                return None
            found[name] = value
    return found


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages read and the whole body; None for the body when it is larger than ``_MAX_BODY``
    or something other than body arrived (the messages are handed on as they came)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > _MAX_BODY:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)
