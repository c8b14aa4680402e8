"""Each dialect's OpenAPI document is complete, and the interactive docs work offline."""

import re
from typing import Any

import httpx
import pytest

DIALECT_DOCUMENTS = ["/api/v1/execution-jobs/openapi.json", "/api/v1/agent/openapi.json", "/api/openapi.json"]
DOCS_PAGES = ["/docs", "/api/v1/execution-jobs/docs", "/api/v1/agent/docs", "/api/docs"]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in document["paths"].items() for method, op in item.items()]


async def test_root_document_describes_the_root_and_points_to_the_dialects(anon: httpx.AsyncClient) -> None:
    document = (await anon.get("/openapi.json")).json()
    assert {"/", "/healthz"} <= set(document["paths"])
    for url in DIALECT_DOCUMENTS:
        assert url in document["info"]["description"]


@pytest.mark.parametrize("url", DIALECT_DOCUMENTS)
async def test_no_operation_documents_a_422(anon: httpx.AsyncClient, url: str) -> None:
    document = (await anon.get(url)).json()
    assert operations(document)
    for method, path, op in operations(document):
        assert "422" not in op["responses"], (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize("url", DIALECT_DOCUMENTS)
async def test_every_operation_lists_its_errors_with_the_dialects_error_body(anon: httpx.AsyncClient,
                                                                             url: str) -> None:
    document = (await anon.get(url)).json()
    assert "Error" in document["components"]["schemas"]
    for method, path, op in operations(document):
        statuses = set(op["responses"])
        assert {"400", "503"} <= statuses, (method, path)
        if op.get("security"):
            assert {"401", "429"} <= statuses, (method, path)
        if "requestBody" in op:
            assert "413" in statuses, (method, path)
        if "{" in path:
            assert "404" in statuses, (method, path)
        for status, response in op["responses"].items():
            if status >= "400":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize("url", DIALECT_DOCUMENTS)
async def test_success_responses_have_schemas_not_bare_objects(anon: httpx.AsyncClient, url: str) -> None:
    document = (await anon.get(url)).json()
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            if status < "300" and status != "204":
                (schema,) = [c["schema"] for c in response["content"].values()]
                assert schema.get("$ref") or schema.get("format") == "binary", (method, path, status, schema)


async def test_job_create_and_profile_routes_document_their_bodies(anon: httpx.AsyncClient) -> None:
    document = (await anon.get("/api/v1/execution-jobs/openapi.json")).json()
    schemas = document["components"]["schemas"]
    job = document["paths"]["/api/v1/execution-jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert job["schema"] == {"$ref": "#/components/schemas/ExecutionJobRequest"}
    assert {"request", "profileId", "profile", "consent", "clientMetadata"} <= set(
        schemas["ExecutionJobRequest"]["properties"])
    assert {"RestaurantParams", "HotelParams", "FlightParams", "ActivityParams", "Consent"} <= set(schemas)
    profile = document["paths"]["/api/v1/profiles"]["post"]["requestBody"]["content"]["application/json"]
    assert profile["schema"] == {"$ref": "#/components/schemas/Profile"}
    assert {"first_name", "last_name", "email", "phone"} <= set(schemas["Profile"]["required"])


async def test_authenticated_operations_declare_the_key_as_a_security_scheme(anon: httpx.AsyncClient) -> None:
    execution = (await anon.get("/api/v1/execution-jobs/openapi.json")).json()
    automations = (await anon.get("/api/openapi.json")).json()
    assert execution["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert automations["components"]["securitySchemes"]["apiKey"]["name"] == "X-Integration-Key"
    get_job = execution["paths"]["/api/v1/execution-jobs/{job_id}"]["get"]
    assert get_job["security"] == [{"apiKey": []}]
    assert all(p["name"].lower() != "authorization" for p in get_job["parameters"])
    assert "security" not in execution["paths"]["/api/v1/provider-events"]["post"]


@pytest.mark.parametrize("page", DOCS_PAGES)
async def test_docs_load_nothing_from_other_hosts_and_their_assets_are_served(anon: httpx.AsyncClient,
                                                                            page: str) -> None:
    response = await anon.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"https?://", html), "the page names another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert asset.startswith("/")
        assert (await anon.get(asset)).status_code == 200, asset
    for url in re.findall(r'"url": "([^"]+)"', html):
        assert (await anon.get(url)).status_code == 200, url


async def test_root_docs_offer_every_dialects_document(anon: httpx.AsyncClient) -> None:
    html = (await anon.get("/docs")).text
    for url in ["/openapi.json", *DIALECT_DOCUMENTS]:
        assert f'"url": "{url}"' in html
