"""A real OpenAI-compatible (and Anthropic Messages) HTTP server on 127.0.0.1, for tests.

It serves ``POST /v1/chat/completions`` in OpenAI's response shape and ``POST /v1/messages`` in
Anthropic's, answering each request with the next of its ``answers`` (the last one repeats):

- a dict: a call of the output tool named in the request, with these arguments;
- ``Text("...")``: plain assistant text (no tool call);
- ``Status(500)``: that HTTP status with an error body;
- ``Raw("...")``: that body as the 200 response (e.g. not JSON);
- ``Hang()``: no answer until the server stops (for timeouts).

Every request is recorded (``requests``: headers and JSON body), so a test can assert on what
pydantic-ai sent. Automations' tests may use it for ai_reason end to end::

    async with fake_llm([{"priority": "p1"}]) as llm:
        settings = Settings(llm_provider="openai-compatible", llm_base_url=llm.base_url, ...)
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import free_port


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Status:
    status: int


@dataclass(frozen=True)
class Raw:
    body: str


@dataclass(frozen=True)
class Hang:
    pass


Answer = dict[str, Any] | Text | Status | Raw | Hang


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeLlm:
    answers: list[Answer]
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def _next(self) -> Answer:
        index = min(len(self.requests) - 1, len(self.answers) - 1)
        return self.answers[index]

    async def _answer(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(Recorded(request.url.path, dict(request.headers), body))
        answer = self._next()
        if isinstance(answer, Hang):
            await self.stopping.wait()
            return Response(status_code=503)
        if isinstance(answer, Status):
            return JSONResponse({"error": {"message": "upstream exploded", "type": "server_error"}},
                                status_code=answer.status)
        if isinstance(answer, Raw):
            return Response(answer.body, media_type="application/json")
        if request.url.path.endswith("/messages"):
            return JSONResponse(_anthropic(body, answer))
        return JSONResponse(_openai(body, answer))


def _tool_name(tools: list[dict[str, Any]]) -> str:
    assert tools, "pydantic-ai sent no output tool"
    tool = tools[0]
    return str(tool["function"]["name"] if "function" in tool else tool["name"])


def _openai(body: dict[str, Any], answer: dict[str, Any] | Text) -> dict[str, Any]:
    if isinstance(answer, Text):
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        finish = "stop"
    else:
        call = {"id": "call_1", "type": "function",
                "function": {"name": _tool_name(body.get("tools", [])), "arguments": json.dumps(answer)}}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1_764_460_800, "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}}


def _anthropic(body: dict[str, Any], answer: dict[str, Any] | Text) -> dict[str, Any]:
    if isinstance(answer, Text):
        content: list[dict[str, Any]] = [{"type": "text", "text": answer.text}]
        stop = "end_turn"
    else:
        content = [{"type": "tool_use", "id": "toolu_1", "name": _tool_name(body.get("tools", [])), "input": answer}]
        stop = "tool_use"
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"], "content": content,
            "stop_reason": stop, "stop_sequence": None, "usage": {"input_tokens": 42, "output_tokens": 7}}


@asynccontextmanager
async def fake_llm(answers: list[Answer]) -> AsyncIterator[FakeLlm]:
    """Serve a :class:`FakeLlm` on a free port of 127.0.0.1 in this event loop; ``base_url`` ends in ``/v1``."""
    fake = FakeLlm(answers)
    app = Starlette(routes=[Route("/v1/chat/completions", fake._answer, methods=["POST"]),
                            Route("/v1/messages", fake._answer, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    fake.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        fake.stopping.set()
        server.should_exit = True
        await serving
