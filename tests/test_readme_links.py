"""Every pointer in README.md and docs/*.md works: the local URLs answer and the files exist.

Paths come from ``http://127.0.0.1:3000/…`` URLs and from code spans that start with ``/``.
Paths with placeholders (``{jobId}``, ``txn_…``, ``$PORT``) are left out, but ``{pid}`` is
filled in with a real web site; paths the docs show being POSTed are left out too. The
others are fetched with an admin key (which opens every GET route): each must answer 2xx or
3xx, or 405 (the path exists for another method). MCP's endpoint is asked
``tools/list``, as a client would.
"""

import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import Org

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_URL = re.compile(r"http://127\.0\.0\.1:3000(/[^\s`'\"]*)")
_SPAN = re.compile(r"`(?:GET )?(/(?:sandbox|api|v1|healthz|currentuser|permissions)\b[^`\s]*)`")
_POSTED = re.compile(r"(?:POST|-X POST)\s+(?:http://127\.0\.0\.1:3000)?(/\S*)")
_FILE = re.compile(r"`((?:[\w.-]+/)*[\w.-]+\.(?:md|json|py|toml|ini|txt))`")
_PLACEHOLDER = re.compile(r"[{}$<>*…|]|%[0-9A-Fa-f]{2}")
_FILLS = {"{pid}": "web-tables"}


def _paths() -> list[str]:
    found: set[str] = set()
    posted: set[str] = set()
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        posted.update(m.rstrip("`") for m in _POSTED.findall(text))
        for path in [*(url.rstrip(".,;:)") for url in _URL.findall(text)), *_SPAN.findall(text)]:
            for placeholder, value in _FILLS.items():
                path = path.replace(placeholder, value)
            if not _PLACEHOLDER.search(path):
                found.add(path)
    return sorted(found - posted)


def _files() -> list[str]:
    return sorted({name for doc in DOCS for name in _FILE.findall(doc.read_text(encoding="utf-8"))})


PATHS = _paths()


def test_the_docs_point_at_the_sandbox_index_and_the_venue_search() -> None:
    assert "/sandbox/" in PATHS
    assert any(p.startswith("/api/v1/venues") for p in PATHS)


@pytest.mark.parametrize("path", PATHS)
async def test_every_local_path_in_the_docs_answers(org: Org, path: str) -> None:
    if path.rstrip("/") == "/api/v1/mcp":
        response = await org.admin.post(path, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                        headers={"Accept": "application/json, text/event-stream"})
        assert response.status_code == 200, response.text
        return
    response = await org.admin.get(path, follow_redirects=False)
    assert response.status_code < 400 or response.status_code == 405, (path, response.status_code, response.text)


@pytest.mark.parametrize("name", _files())
def test_every_file_the_docs_name_exists(name: str) -> None:
    assert any((base / name).exists() for base in (ROOT, ROOT / "src", ROOT / "src" / "errand")), name


def test_anonymous_visitors_reach_the_sandbox_pages() -> None:
    # The pages a person opens from the README need no key.
    assert {"/sandbox/", "/sandbox/web/web-tables/"} <= set(PATHS)


async def test_the_sandbox_pointer_answers_without_a_key(anon: httpx.AsyncClient) -> None:
    for path in ("/sandbox/", "/sandbox/web/web-tables/"):
        assert (await anon.get(path)).status_code == 200, path
