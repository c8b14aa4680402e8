"""What makes each dialect's OpenAPI document complete, and the interactive docs that show it.

FastAPI derives a document from the routes; on its own it documents a 422 Errand never sends
(every validation failure is the dialect's 400), shows ``Authorization`` as an optional header
instead of a security scheme, and knows nothing of the error bodies. :func:`install` replaces
``app.openapi`` with a version that fixes all three for one dialect:

- every operation lists 400 (a parameter, header or body breaks a rule) and 503 (the
  database cannot be reached), an authenticated one also 401 and 429 (the key's daily limit,
  with ``Retry-After``), one with a body also 413; routes add their own with :func:`describe`;
- each error response points at ``#/components/schemas/Error``, the dialect's error body;
- the key's header becomes a security scheme, so clients and schemathesis know the operation
  is authenticated (an operation is authenticated when it depends on a :class:`KeyHeader`, or
  declares the key's header as a parameter);
- no 422 anywhere.

Routes describe their success bodies with :func:`describe` (``responses=`` with a model, no
``response_model``: the body builders in each dialect's ``schemas.py`` stay the source of the
bytes, and the conformance test checks that the two agree).

Interactive docs are Swagger UI from the ``swagger-ui-bundle-v2`` package, served by Errand
under :data:`ASSETS_PATH`: no page loads anything from another host (:func:`swagger_page`).
"""

import html
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, Field
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from errand.kit import inputs

ASSETS_PATH = "/docs/assets"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
IDEMPOTENCY_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[\x20-\x7e]+$"}
IDEMPOTENCY_KEY_DESCRIPTION = ("A retry with the same key (and the same body) replays the first answer instead of "
                               "acting twice; 1 to 255 characters.")

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                "schema": {"type": "string"}}}
_REPLAYED = {"Idempotent-Replayed": {"description": "`true` when this is the stored answer to an earlier "
                                                    "request with the same idempotency key.",
                                     "schema": {"type": "string", "enum": ["true"]}}}

STATUS_DESCRIPTIONS = {
    400: "The request breaks a rule: a parameter, header or body field is missing, malformed or out of range, "
         "or the request asks for something the rules forbid. `details` names each field when there are fields "
         "to name.",
    401: "No API key, a malformed one, or one Errand does not know (or a provider event whose signature is "
         "missing, bad or stale).",
    402: "Your organization has too few credits left this month for what this request would spend "
         "(`credit_insufficient`).",
    403: "The key may not do this: a scenario outside its scopes, or a change that needs an admin key, "
         "or a policy that denied the action.",
    404: "No such object in your organization (objects of other organizations are not found either).",
    409: "The object is in a state that does not allow this, or an idempotency key was reused for a different "
         "request, or a request with the same key is still running.",
    413: "The request body is larger than Errand accepts.",
    429: "A rate limit was reached (the key's daily requests, or a RATE_LIMIT policy); `Retry-After` says when "
         "to try again.",
    503: "Errand's database or a provider cannot be reached right now; safe to retry (with the same idempotency "
         "key, where the operation takes one).",
}


class ErrorDetail(BaseModel):
    """The body of most errors: a stable code, a sentence for people, sometimes details."""

    code: str = Field(description="Stable machine-readable code.")
    message: str = Field(description="What went wrong, written for the API's users.")
    details: Any = Field(default=None, description="Per-field issues (`{path|field, message}`) for invalid "
                                                   "requests, or more to act on (e.g. `nearestAvailableTimes`).")


class NestedError(BaseModel):
    """``{"error": {"code", "message", "details"?}}``: the execution and reservations dialects' errors."""

    error: ErrorDetail


class FlatError(BaseModel):
    """``{"error", "message", "status", "details"?}``: the automations dialect's errors."""

    error: str = Field(description="Stable machine-readable code (snake_case).")
    message: str
    status: int = Field(description="The HTTP status, repeated.")
    details: Any = None


class KeyHeader(SecurityBase):
    """A route dependency that reads the API key from ``header`` and answers ``authenticate(request, value)``
    (``value`` is the header's first value, or None when it is absent).

    It takes only the request, so FastAPI has no header parameter to extract and validate on each
    request; as a security scheme it marks the operations that depend on it, and :func:`complete`
    documents them with the dialect's own scheme (FastAPI's entry for it is replaced)."""

    def __init__(self, header: str, authenticate: Callable[[Request, str | None], Awaitable[Any]]) -> None:
        self.model = APIKey(**{"in": APIKeyIn.header}, name=header)
        self.scheme_name = _KEY_SCHEME
        self.header = header.lower()
        self.authenticate = authenticate

    async def __call__(self, request: Request) -> Any:
        return await self.authenticate(request, request.headers.get(self.header))


_KEY_SCHEME = "errandKeyHeader"


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for error statuses, each with the dialect's error body."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"description": STATUS_DESCRIPTIONS[status],
                                 "content": {"application/json": {"schema": ERROR_REF}}}
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


def describe(model: type[BaseModel] | None, *error_statuses: int, status: int = 200,
        also: Sequence[int] = (), replayable: bool = False, description: str | None = None) -> dict[str, Any]:
    """Decorator keywords documenting a route: its success body ``model`` at ``status`` (and the
    same body at each status in ``also``), and its own error statuses beyond the dialect's defaults.

    ``replayable`` documents the ``Idempotent-Replayed`` header on the success responses. The route
    keeps building its body itself: ``response_model`` is None, so nothing is filtered or re-validated.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for code in (status, *also):
        entry: dict[str, Any] = {"description": description or _success_description(code)}
        if model is not None:
            entry["model"] = model
        if replayable:
            entry["headers"] = _REPLAYED
        responses[code] = entry
    responses.update(errors(*error_statuses))
    return {"response_model": None, "responses": responses}


def _success_description(status: int) -> str:
    return {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}.get(status, "OK")


def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An ``openapi_extra`` parameter for a query value a route reads itself; as there, an empty
    value is the same as leaving it out."""
    return {"name": name, "in": "query", "required": False,
            "description": f"{description} Empty is the same as leaving it out.",
            "schema": {"anyOf": [schema, {"type": "string", "maxLength": 0}]}}


def header(name: str, description: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    """An ``openapi_extra`` parameter for a header a route reads itself."""
    return {"name": name, "in": "header", "required": required, "description": description, "schema": schema}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An ``openapi_extra`` request body for a route that reads the raw request itself."""
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": schema}}}}


def model_schema(model: type[BaseModel], components: dict[str, Any], *, mode: str = "validation") -> dict[str, Any]:
    """``model``'s JSON Schema as a ``$ref`` into ``components`` (filled with it and its ``$defs``)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def install(app: FastAPI, *, error_model: type[BaseModel], auth_header: str | None,
            security_scheme: dict[str, Any] | None, extra_components: dict[str, Any] | None = None,
            description: str = "", defaults: Sequence[int] = (400, 503),
            refine: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Give ``app`` a complete document: see the module docstring.

    ``auth_header`` is the header the dialect reads its key from; an operation that declares it
    is authenticated and gets ``security_scheme`` instead of the header parameter.
    ``extra_components`` are schemas that ``openapi_extra`` bodies refer to; ``defaults`` are
    the error statuses every operation of the app can answer; ``refine(schemas)`` may adjust the
    component schemas where a model's validators say more than its JSON Schema.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=description,
                                   routes=app.routes)
            app.openapi_schema = complete(document, error_model=error_model, auth_header=auth_header,
                                          security_scheme=security_scheme, extra_components=extra_components,
                                          defaults=defaults)
            if refine is not None:
                refine(app.openapi_schema["components"]["schemas"])
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], *, error_model: type[BaseModel], auth_header: str | None,
             security_scheme: dict[str, Any] | None, extra_components: dict[str, Any] | None,
             defaults: Sequence[int] = (400, 503)) -> dict[str, Any]:
    """The post-processing :func:`install` applies to FastAPI's document (see the module docstring)."""
    components = document.setdefault("components", {})
    components.pop("securitySchemes", None)  # KeyHeader's; the dialect's own goes in below
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    error_schema = error_model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["Error"] = error_schema
    schemas.update(extra_components or {})
    for schema in schemas.values():
        _text_rules(schema)
    schemas["JsonValue"] = JSON_VALUE
    if security_scheme:
        components["securitySchemes"] = {"apiKey": security_scheme}
    for item in document.get("paths", {}).values():
        item.pop("head", None)
        for operation in item.values():
            _complete_operation(operation, auth_header=auth_header, secured=bool(security_scheme),
                                defaults=defaults)
    return document


# The characters pydantic's strip_whitespace removes (Unicode White_Space), spelled out: ``\s``
# means something else in each regex engine a client may use (ECMA, Python, Rust).
STRIPPED = f"[{inputs.WHITESPACE_CHARACTERS}]"
_UNSPECIFIC = ("pattern", "format", "enum", "const")
JSON_VALUE_REF = {"$ref": "#/components/schemas/JsonValue"}
JSON_VALUE = {
    "description": "Any JSON value whose strings and keys pass the input rules: no control characters "
                   "(tab and line breaks allowed in strings), finite numbers, nested at most 32 levels.",
    "anyOf": [
        {"type": ["null", "boolean", "number"]},
        {"type": "string", "pattern": inputs.text_pattern()},
        {"type": "array", "items": JSON_VALUE_REF},
        {"type": "object", "propertyNames": {"pattern": inputs.text_pattern(multiline=False)},
         "additionalProperties": JSON_VALUE_REF},
    ],
}


def _text_rules(schema: Any, *, multiline: bool = True) -> None:
    """Say in ``schema`` what the input boundary (:mod:`errand.kit.inputs`) refuses in every string:
    a ``pattern`` on each string that has no rule of its own (required text, stripped before its
    length is checked, must not be blank), and ``propertyNames`` on objects that take any key.
    ``multiline=False`` for parameters (path, query, header), where no control character passes."""
    if isinstance(schema, list):
        for item in schema:
            _text_rules(item, multiline=multiline)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not any(key in schema for key in _UNSPECIFIC):
        schema["pattern"] = inputs.text_pattern(multiline=multiline, not_blank=schema.get("minLength", 0) >= 1)
    if schema.get("type") == "object" and schema.get("additionalProperties", True) is not False:
        schema.setdefault("propertyNames", {"pattern": inputs.text_pattern(multiline=False)})
        if schema.get("additionalProperties", True) in (True, {}):
            schema["additionalProperties"] = JSON_VALUE_REF  # what any value must be
    for key in ("properties", "$defs"):
        for child in schema.get(key, {}).values():
            _text_rules(child, multiline=multiline)
    for key in ("anyOf", "oneOf", "allOf", "items", "additionalProperties", "prefixItems"):
        if key in schema:
            _text_rules(schema[key], multiline=multiline)


def _complete_operation(operation: dict[str, Any], *, auth_header: str | None, secured: bool,
                        defaults: Sequence[int]) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    parameters = operation.get("parameters", [])
    for parameter in parameters:
        _text_rules(parameter.get("schema"), multiline=False)
    for media in operation.get("requestBody", {}).get("content", {}).values():
        _text_rules(media.get("schema"))
    # A KeyHeader dependency: the dialect's scheme is added at the end, as for a header parameter.
    authenticated = operation.pop("security", None) == [{_KEY_SCHEME: []}]
    if auth_header:
        kept = [p for p in parameters if not (p["in"] == "header" and p["name"].lower() == auth_header.lower())]
        authenticated = authenticated or len(kept) != len(parameters)
        if kept:
            operation["parameters"] = kept
        else:
            operation.pop("parameters", None)
    statuses = list(defaults)
    if authenticated:
        statuses += [401, 429]
        if secured:
            operation["security"] = [{"apiKey": []}]
    if "requestBody" in operation:
        statuses.append(413)
    for status, entry in errors(*statuses).items():
        responses.setdefault(str(status), entry)
    operation["responses"] = dict(sorted(responses.items()))


def swagger_page(title: str, urls: Sequence[tuple[str, str]]) -> HTMLResponse:
    """Swagger UI for the documents at ``urls`` (``(name, url)`` pairs; several give a selector).

    Scripts, styles and icons come from :data:`ASSETS_PATH`; the validator badge, which would
    send the document to another host, is off.
    """
    config: dict[str, Any] = {"dom_id": "#swagger-ui", "deepLinking": True, "validatorUrl": None,
                              "layout": "StandaloneLayout", "tryItOutEnabled": False}
    if len(urls) == 1:
        config["url"] = urls[0][1]
    else:
        config["urls"] = [{"name": name, "url": url} for name, url in urls]
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{ASSETS_PATH}/swagger-ui-standalone-preset.js"></script>
<script>
const config = {json.dumps(config)};
config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset];
window.ui = SwaggerUIBundle(config);
</script>
</body>
</html>
"""
    return HTMLResponse(page)


def add_docs(app: FastAPI, path: str, title: str, openapi_url: str) -> None:
    """Serve Swagger UI for ``app``'s own document at ``path``."""

    async def docs(_request: Any) -> HTMLResponse:
        return swagger_page(title, [(title, openapi_url)])

    app.add_route(path, docs, include_in_schema=False)


def assets() -> StaticFiles:
    """Swagger UI's files, as shipped in the ``swagger-ui-bundle-v2`` package."""
    return StaticFiles(directory=str(swagger_ui_path))
