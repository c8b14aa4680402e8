"""The sandbox's fake SMS provider and chat API: what Errand's notification channels call when no
real provider is configured, recording what they receive (issue 12: sandbox endpoints that
record what they receive).

- ``POST /sms/2010-04-01/Accounts/{account}/Messages.json`` in Twilio's shape: form fields
  ``To`` (E.164), ``From``, ``Body`` (1 to 1600 characters); HTTP basic auth ``account:token``
  where the token is ``Settings.sandbox_api_token("sandbox-sms")`` (what Errand sends when
  ``ERRAND_SMS_TOKEN`` is unset). 201 with ``{"sid": "SM…", "status": "queued", …}``; errors in
  Twilio's body, ``{"code", "message", "status"}``: 401 code 20003, 400 code 21211 (a ``To``
  that is not E.164, or Twilio's magic invalid number ``+15005550001``), 400 code 21602 (no
  body), 400 code 21617 (a body over 1600 characters).
- ``POST /chat/api/chat.postMessage`` in Slack's Web API shape: JSON ``{"channel", "text"}``
  with ``Authorization: Bearer <Settings.sandbox_api_token("sandbox-chat")>``; always HTTP 200,
  ``{"ok": true, "channel", "ts"}`` or ``{"ok": false, "error": …}``: ``invalid_auth``,
  ``channel_not_found`` (a channel that is not ``#name`` or a ``C…`` id), ``is_archived`` (a
  channel whose name starts with ``#archived``), ``no_text``, ``msg_too_long``.
- ``GET /sms/messages`` and ``GET /chat/messages`` (the same credentials): what was accepted,
  newest first, ``{"data": [{"id", "to", "from", "body", "received_at"}]}`` (``limit`` ≤ 200).

Phone numbers, channels and bodies are personal data: stored encrypted (:class:`SandboxMessage`).
"""

import base64
import json
import re
import secrets
import time
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from errand.kit import clock
from errand.kit.config import Settings
from errand.kit.crypto import constant_time_equal
from errand.kit.db import Database
from errand.models import SandboxMessage

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
INVALID_NUMBER = "+15005550001"  # Twilio's test number that is "not a valid phone number"
CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9._\-]{0,79}|[CGD][A-Z0-9]{6,20})$")
MAX_SMS = 1600
MAX_CHAT = 40_000


def _twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                         "status": status}, status)


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _bearer(request: Request) -> str:
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _listing(rows: list[SandboxMessage]) -> dict[str, Any]:
    return {"data": [{"id": r.id, "to": r.to, "from": r.sender, "body": r.body, "received_at": clock.iso(r.received_at)}
                     for r in rows]}


def routes(db: Database, settings: Settings) -> APIRouter:
    """The fake SMS provider (under ``/sms``) and chat API (under ``/chat``) over ``db``."""
    router = APIRouter(tags=["messages"])
    sms_token = settings.sandbox_api_token("sandbox-sms")
    chat_token = settings.sandbox_api_token("sandbox-chat")

    def sms_caller(request: Request, account: str | None = None) -> bool:
        credentials = _basic(request)
        return (credentials is not None and constant_time_equal(credentials[1], sms_token)
                and (account is None or constant_time_equal(credentials[0], account)))

    async def recorded(kind: str, limit: int) -> dict[str, Any]:
        async with db.unit_of_work(read_only=True) as session:
            rows = (await session.execute(select(SandboxMessage).where(SandboxMessage.kind == kind).order_by(
                SandboxMessage.received_at.desc(), SandboxMessage.id.desc()).limit(limit))).scalars().all()
            return _listing(list(rows))

    @router.post("/sms/2010-04-01/Accounts/{account}/Messages.json", status_code=201)
    async def send_sms(account: str, request: Request) -> JSONResponse:
        """Send an SMS, as Twilio's Messages resource: 201 with the message's ``sid``."""
        if not sms_caller(request, account):
            return _twilio_error(401, 20003, "Authenticate")
        try:
            form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            return _twilio_error(400, 21100, "The request is not valid UTF-8.")
        to, sender, body = (form.get(name, [""])[0] for name in ("To", "From", "Body"))
        if not E164.match(to) or to == INVALID_NUMBER:
            return _twilio_error(400, 21211, "The 'To' number is not a valid phone number.")
        if not body:
            return _twilio_error(400, 21602, "Message body is required.")
        if len(body) > MAX_SMS:
            return _twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        sid = "SM" + secrets.token_hex(16)
        async with db.unit_of_work() as session:
            session.add(SandboxMessage(id=sid, kind="sms", account=account[:64], to=to, sender=sender[:40], body=body))
        return JSONResponse({"sid": sid, "account_sid": account, "to": to, "from": sender, "body": body,
                             "status": "queued", "num_segments": str(-(-len(body) // 153) if len(body) > 160 else 1),
                             "date_created": clock.iso(clock.now())}, 201)

    @router.get("/sms/messages")
    async def sms_messages(request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> JSONResponse:
        """The SMS the fake provider accepted, newest first (basic auth as for sending)."""
        if not sms_caller(request):
            return _twilio_error(401, 20003, "Authenticate")
        return JSONResponse(await recorded("sms", limit))

    @router.post("/chat/api/chat.postMessage")
    async def post_message(request: Request) -> JSONResponse:
        """Post a chat message, as Slack's ``chat.postMessage``: always 200, ``ok`` says whether it was posted."""
        if not constant_time_equal(_bearer(request), chat_token):
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse({"ok": False, "error": "invalid_json"})
        if not isinstance(data, dict):
            return JSONResponse({"ok": False, "error": "invalid_arguments"})
        channel, text = data.get("channel"), data.get("text")
        if not isinstance(channel, str) or not CHANNEL.match(channel):
            return JSONResponse({"ok": False, "error": "channel_not_found"})
        if channel.startswith("#archived"):
            return JSONResponse({"ok": False, "error": "is_archived"})
        if not isinstance(text, str) or not text.strip():
            return JSONResponse({"ok": False, "error": "no_text"})
        if len(text) > MAX_CHAT:
            return JSONResponse({"ok": False, "error": "msg_too_long"})
        ts = f"{time.time():.6f}"
        async with db.unit_of_work() as session:
            session.add(SandboxMessage(id=f"chat_{ts.replace('.', '')}{secrets.token_hex(4)}", kind="chat", to=channel,
                                       body=text))
        return JSONResponse({"ok": True, "channel": channel, "ts": ts, "message": {"text": text, "ts": ts}})

    @router.get("/chat/messages")
    async def chat_messages(request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> JSONResponse:
        """The chat messages the fake API accepted, newest first (the Bearer token as for posting)."""
        if not constant_time_equal(_bearer(request), chat_token):
            return JSONResponse({"ok": False, "error": "invalid_auth"}, 401)
        return JSONResponse(await recorded("chat", limit))

    return router
