"""The yardstick of bench/book.py: a bare Starlette JSON endpoint, served by the same uvicorn settings as Errand.

    .venv/bin/python -m uvicorn bare:app --app-dir bench --port 3520 --log-level warning
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/", hello, methods=["GET", "POST"])])
