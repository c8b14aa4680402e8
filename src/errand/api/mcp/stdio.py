"""The MCP server over stdin/stdout, for desktop MCP clients that start ``errand mcp`` themselves.

The process acts for one API key (``ERRAND_API_KEY``), checked before the server starts
and again on every tool call, so a revoked key stops working at once and each call counts
against the key's daily limit, as each HTTP request does. stdout carries the protocol, so
every log line goes to stderr.

Every line the client sends passes the input boundary first
(:func:`errand.api.mcp.envelope.vet`), as an HTTP body does: a line that is not JSON, not UTF-8, nested too deep or over 1 MiB, a batch array, a
value that is not an object or an object that is not a JSON-RPC message is answered with a
JSON-RPC error (``-32700`` parse error or ``-32600`` invalid request; ``id`` is the
message's when it could be read, else ``null``) instead of the silence the SDK gives it.
Blank lines carry no message and are skipped. The SDK's stdio transport serves the rest:
it reads the vetted lines (:class:`_VettedLines`) and writes every answer, ours included,
so answers never interleave.

This process runs no job runner: a job created here is picked up, like any job committed
by an API process without a runner, by the runner of ``errand serve`` (or ``errand
worker``) on the same database.
"""

import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import anyio
import structlog
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError

from errand.api.common import principal_for
from errand.api.mcp import auth
from errand.api.mcp.envelope import vet
from errand.api.mcp.errors import MissingApiKey
from errand.api.mcp.server import build_server
from errand.kit.core import Core


async def serve_stdio(core: Core, api_key: str | None) -> None:
    """Serve until stdin closes. Raises Unauthorized (:class:`~errand.api.mcp.errors.MissingApiKey`
    without a key) or Unavailable before serving when the key is missing or does not authenticate,
    so the command can refuse to start with the reason."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    if not api_key or not api_key.strip():
        raise MissingApiKey("ERRAND_API_KEY is not set; export the API key the MCP tools should act as "
                            "(errand create-api-key mints one).")
    key = api_key.strip()
    await principal_for(core, f"Bearer {key}")
    server = build_server(core, auth.from_api_key(core, key))
    with _claim_stdin() as wire:
        lines = _VettedLines(wire)
        # Explicit stdin: the SDK then leaves fd 0 alone (we claimed it) and still claims fd 1.
        async with stdio_server(stdin=lines) as (read_stream, write_stream):  # type: ignore[arg-type]
            lines.answer_with(write_stream)
            await server.run_streams(read_stream, write_stream)


class _VettedLines:
    """The client's lines that are JSON-RPC messages, as the SDK's transport reads its stdin
    (``async for line in stdin``); every other line is answered through the transport's own
    write stream, handed over by :meth:`answer_with` once the transport has started."""

    def __init__(self, wire: BinaryIO) -> None:
        self._wire = anyio.wrap_file(wire)
        self._replies: Any = None
        self._ready = anyio.Event()

    def answer_with(self, write_stream: Any) -> None:
        self._replies = write_stream
        self._ready.set()

    async def __aiter__(self) -> AsyncIterator[str]:
        async for line in self._wire:
            message, error = vet(line)
            if message is not None:
                yield message
            elif error is not None:
                await self._ready.wait()
                await self._replies.send(SessionMessage(JSONRPCError.model_validate(error)))


@contextmanager
def _claim_stdin() -> Iterator[BinaryIO]:
    """The client's stdin, read from a private copy of fd 0 while fd 0 reads the null device.

    What the SDK's transport does for the streams it opens itself (it skips it when given
    one): nothing else in this process, or a child it starts, can consume the protocol's
    bytes. fd 0 is restored on exit."""
    try:
        private = os.dup(0)
    except OSError:  # no fd 0 (closed by the parent): read sys.stdin as it is
        yield sys.stdin.buffer
        return
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        # closefd=False, as the SDK does: a worker thread may still block on it after we return.
        yield os.fdopen(private, "rb", closefd=False)
    finally:
        os.dup2(private, 0)
