"""Paths nobody serves, methods a path does not take, HEAD: each answered in the documented shape."""

import httpx
import pytest

# (path, the dialect's error body for a 404 there)
UNKNOWN_PATHS = [
    ("/api/v1/execution-jobs/x/y/z", lambda b: b["error"]["code"] == "not_found"),
    ("/api/v1/metrics/nope/x/y", lambda b: b["error"]["code"] == "not_found"),
    ("/api/v1/agent/nope", lambda b: b["error"]["code"] == "NOT_FOUND"),
    ("/api/v1/nope", lambda b: b["error"]["code"] == "NOT_FOUND"),
    ("/api/v1/mcp/nope", lambda b: b["error"]["code"] == "NOT_FOUND"),
    ("/api/agents-nope", lambda b: b == {"error": "not_found", "message": b["message"], "status": 404}),
    ("/api/nope/deeper", lambda b: b["error"] == "not_found" and b["status"] == 404),
    ("/nope", lambda b: b == {"error": {"code": "not_found", "message": b["error"]["message"]}}),
    ("/v1/agents", lambda b: b["error"]["code"] == "not_found"),
    ("/docs/assets/nope.js", lambda b: b["error"]["code"] == "not_found"),
]


@pytest.mark.parametrize(("path", "is_dialect_shape"), UNKNOWN_PATHS)
async def test_unknown_path_answers_its_dialects_error_shape(anon: httpx.AsyncClient, path: str,
                                                             is_dialect_shape: object) -> None:
    response = await anon.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "detail" not in body
    assert is_dialect_shape(body), body  # type: ignore[operator]


async def test_root_answers_an_index_of_the_dialects(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "/docs" and body["openapi"] == "/openapi.json"
    by_name = {d["name"]: d for d in body["dialects"]}
    assert set(by_name) == {"execution", "reservations", "automations", "mcp"}
    assert by_name["mcp"]["prefixes"] == ["/api/v1/mcp"]
    for dialect in by_name.values():
        if dialect["openapi"]:
            assert (await anon.get(dialect["openapi"])).status_code == 200
            assert (await anon.get(dialect["docs"])).status_code == 200


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/api/v1/policies", "GET, HEAD, POST"),
    ("PUT", "/api/v1/execution-jobs/job_1", "GET, HEAD"),
    ("GET", "/api/v1/agent/restaurant/book", "POST"),
    ("PATCH", "/api/approvals", "GET, HEAD"),
    ("POST", "/healthz", "GET, HEAD"),
    ("PUT", "/", "GET, HEAD"),
    ("POST", "/docs/assets/swagger-ui.css", "GET, HEAD"),
    ("DELETE", "/api/v1/mcp", "POST"),
])
async def test_method_not_allowed_lists_every_allowed_method(anon: httpx.AsyncClient, method: str, path: str,
                                                             allow: str) -> None:
    response = await anon.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert "method_not_allowed" in response.text.lower()


@pytest.mark.parametrize("path", ["/", "/healthz", "/openapi.json", "/docs", "/api/v1/policies",
                                  "/api/v1/execution-jobs", "/api/approvals", "/api/v1/providers"])
async def test_head_answers_like_get_without_a_body(org: object, path: str) -> None:
    client: httpx.AsyncClient = org.admin  # type: ignore[attr-defined]
    got = await client.get(path)
    head = await client.head(path)
    assert got.status_code == 200
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


async def test_head_on_a_post_only_path_is_405(anon: httpx.AsyncClient) -> None:
    response = await anon.head("/api/v1/agent/restaurant/book")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_head_on_the_mcp_endpoint_is_405_at_once(org: object) -> None:
    """Stateless JSON mode has no event stream to open: GET, and so HEAD, are 405 without waiting."""
    client: httpx.AsyncClient = org.agent  # type: ignore[attr-defined]
    response = await client.head("/api/v1/mcp", timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.content == b""
