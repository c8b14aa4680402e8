"""The one input boundary: how every entry point reads JSON, strings and validation errors.

REST in every dialect, MCP over HTTP and stdio, the provider-events receiver and the
sandbox's JSON APIs read what clients send through these functions, so the same input gets
the same verdict everywhere (issue 8 §1). Nothing here knows HTTP: the ASGI middleware in
:mod:`errand.kit.boundary` and the MCP server call it.

What a body may hold (:func:`parse_json`):

- UTF-8 JSON, nested at most :data:`MAX_DEPTH` levels (checked on the bytes before the
  parser runs, so no nesting can exhaust the stack);
- finite numbers only: ``NaN``, ``Infinity`` and ``1e999`` (which a float cannot hold) are
  refused, since a database either refuses them or stores them as ``null``;
- each key once per object, and never two spellings of one field (``partySize`` and
  ``party_size``), which dialects that accept both would otherwise resolve silently;
- strings without NUL, other C0 controls (tab, line feed and carriage return are free text's
  own), DEL, C1 controls or lone surrogates; keys without any control character.

Strings stored from input use :func:`text` types, which add a maximum length (at or below
the column's) and, for single-line fields, refuse tab and line breaks. An idempotency key is
1 to 255 printable ASCII characters (0x20–0x7E), as Stripe and the Agentic Commerce Protocol
define it, whether it arrives as a header (read as latin-1 by HTTP servers) or a tool
argument (read as Unicode), so one key means the same request on both.

The parser is the standard library's ``json`` with its hooks (pairs for duplicates, float
and constant hooks for non-finite numbers): no third-party parser checks more of these
rules, so one would still need the same walk.

Validation failures are reported by :func:`issues`: one ``{path, message}`` per problem, in
words written for the API's users — never the library's text, a class name, the submitted
value or a documentation URL.
"""

import datetime as dt
import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator, BeforeValidator, Field, StrictBool, StrictInt, StringConstraints, ValidationError, WithJsonSchema,
)
from pydantic.alias_generators import to_snake as _to_snake

from errand.kit.errors import InvalidJson, InvalidRequest

# A field name's snake_case spelling (pydantic's rule: a few regex passes); bodies repeat the same
# few names, so the answers are kept (bounded: a client sending new names only churns the cache).
to_snake = functools.lru_cache(maxsize=4096)(_to_snake)

MAX_DEPTH = 32
MAX_BODY_BYTES = 1024 * 1024
IDEMPOTENCY_KEY_MAX = 255

__all__ = [
    "MAX_BODY_BYTES", "MAX_DEPTH", "Date", "IdempotencyKey", "StrictBool", "StrictInt", "Text", "check_idempotency_key",
    "check_spellings", "check_value", "issues", "parse_json", "text",
]

# Character classes (regex syntax that Python, ECMAScript and JSON Schema tools read alike).
UNSAFE_CHARACTERS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
"""Refused in every string: C0 controls but tab, LF and CR; DEL; C1 controls (and lone surrogates,
which no regex engine but Python's can name, so documents leave them out of their patterns)."""
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
"""Refused in keys, path and query values and single-line text: every control character."""
_SURROGATES = r"\ud800-\udfff"
WHITESPACE_CHARACTERS = r"\t\n\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""Unicode White_Space, what ``strip`` removes before a length is checked (less VT, FF and
NEL, control characters that are refused anyway)."""
_UNSAFE = re.compile(f"[{UNSAFE_CHARACTERS}{_SURROGATES}]")
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}{_SURROGATES}]")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _NonFinite:
    """A number the parser met that no float can hold; reported with its path by the walk."""


_NON_FINITE = _NonFinite()


class _Object(dict):  # type: ignore[type-arg]
    """An object as parsed, remembering keys that appeared more than once."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj and key not in obj.duplicates:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _float(literal: str) -> float | _NonFinite:
    number = float(literal)
    return number if math.isfinite(number) else _NON_FINITE


def _depth(text: str) -> int:
    """How deep the brackets outside strings nest; an unterminated string only over-counts."""
    deepest = depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _invalid_json(message: str) -> InvalidRequest:
    return InvalidJson(message, details=[{"path": "body", "message": message}])


def parse_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH, values: bool = True) -> Any:
    """The value of a JSON document, or InvalidRequest saying why it is refused.

    Malformed syntax, invalid UTF-8 and nesting deeper than ``max_depth`` raise code
    ``invalid_json``; duplicate keys, and with ``values`` (the default) non-finite numbers,
    unsafe characters and two spellings of one field, raise ``invalid_request`` with one
    ``{path, message}`` per problem. ``values=False`` checks only the document's structure,
    for a caller that checks the values itself (the MCP server checks tool arguments over
    every transport with :func:`check_value`).
    """
    if isinstance(raw, bytes):
        try:
            text_ = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid_json("The body is not valid UTF-8.") from None
    else:
        text_ = raw
    if _depth(text_) > max_depth:
        raise _invalid_json(f"The JSON is nested more than {max_depth} levels deep.")
    try:
        if values:
            value = json.loads(text_, object_pairs_hook=_object, parse_float=_float,
                               parse_constant=lambda _name: _NON_FINITE)
        else:
            value = json.loads(text_, object_pairs_hook=_object)
    except (ValueError, RecursionError):
        raise _invalid_json("The body is not valid JSON.") from None
    _check(value, [], values=values, max_depth=max_depth)
    return value


def check_value(value: Any, *, path: Iterable[str | int] = (), max_depth: int = MAX_DEPTH) -> None:
    """:func:`parse_json`'s value rules for a value parsed elsewhere (MCP tool arguments).

    Raises InvalidRequest (``invalid_request``) naming every string with unsafe characters,
    every non-finite number, every object with two spellings of one field, and nesting
    deeper than ``max_depth``.
    """
    _check(value, list(path), values=True, max_depth=max_depth)


def check_spellings(data: Any) -> Any:
    """``data`` unchanged, or ValueError when an object gives one field in two spellings.

    A pydantic ``model_validator(mode="before")`` for models that accept a field as
    ``partySize`` and ``party_size``, so the ambiguity is refused wherever the object came
    from (a body, a tool argument, a tool argument sent as a JSON string)."""
    if isinstance(data, Mapping):
        problems: list[dict[str, str]] = []
        _spellings(data, [], problems)
        if problems:
            raise ValueError("; ".join(f"{p['path']} {p['message']}" for p in problems))
    return data


def _raise_if(found: list[dict[str, str]]) -> None:
    problems = [p for i, p in enumerate(found) if p not in found[:i]]
    if problems:
        summary = "; ".join(f"{p['path']}: {p['message']}" for p in problems[:5])
        raise InvalidRequest(f"The request is invalid: {summary}.", details=problems)


def _path(parts: list[str | int]) -> str:
    return ".".join(str(p) for p in parts) or "body"


def _spellings(obj: Mapping[str, Any], path: list[str | int], problems: list[dict[str, str]]) -> None:
    seen: dict[str, str] = {}
    for key in obj:
        if not isinstance(key, str):
            continue
        canonical = to_snake(key)
        other = seen.setdefault(canonical, key)
        if other != key:
            problems.append({"path": _path([*path, canonical]),
                             "message": f"given as both {other} and {key}; send one spelling"})


def _clean(value: Any, values: bool, depth: int, max_depth: int) -> bool:
    """True when :func:`_walk` would find nothing: the fast pass, building no paths."""
    if isinstance(value, dict):
        if depth >= max_depth or getattr(value, "duplicates", None):
            return depth < max_depth and not value.duplicates and all(  # type: ignore[attr-defined]
                _clean(v, values, depth + 1, max_depth) for v in value.values())
        if values and (len({to_snake(k) for k in value}) != len(value)
                       or any(_CONTROL.search(k) for k in value)):
            return False
        return all(_clean(v, values, depth + 1, max_depth) for v in value.values())
    if isinstance(value, list):
        return depth < max_depth and all(_clean(v, values, depth + 1, max_depth) for v in value)
    if value is _NON_FINITE or isinstance(value, float) and not math.isfinite(value):
        return not values
    if values and isinstance(value, str):
        return not _UNSAFE.search(value)
    return True


def _check(value: Any, path: list[str | int], *, values: bool, max_depth: int) -> None:
    if not _clean(value, values, 0, max_depth):
        problems: list[dict[str, str]] = []
        _walk(value, path, problems, values=values, depth=0, max_depth=max_depth)
        _raise_if(problems)


def _walk(value: Any, path: list[str | int], problems: list[dict[str, str]], *, values: bool, depth: int,
          max_depth: int) -> None:
    if depth > max_depth:
        problems.append({"path": _path(path), "message": f"nested more than {max_depth} levels deep"})
        return
    if isinstance(value, dict):
        for key in getattr(value, "duplicates", ()):
            problems.append({"path": _path([*path, key]), "message": "appears more than once in its object"})
        if values:
            _spellings(value, path, problems)
        for key, item in value.items():
            if values and isinstance(key, str) and _CONTROL.search(key):
                problems.append({"path": _path(path), "message": "has a key with control characters"})
            else:
                _walk(item, [*path, key], problems, values=values, depth=depth + 1, max_depth=max_depth)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, [*path, i], problems, values=values, depth=depth + 1, max_depth=max_depth)
    elif value is _NON_FINITE or (isinstance(value, float) and not math.isfinite(value)):
        if values:
            problems.append({"path": _path(path), "message": "must be a finite number"})
    elif values and isinstance(value, str) and _UNSAFE.search(value):
        problems.append({"path": _path(path), "message": "must not contain NUL or other control characters"})


# --- strings ------------------------------------------------------------------------------


def _safe(value: str) -> str:
    if _UNSAFE.search(value):
        raise ValueError("must not contain NUL or other control characters")
    return value


def _single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must be one line without control characters")
    return value


def _iso_date(value: Any) -> Any:
    """Only ``YYYY-MM-DD``: a number (``0``) or a date-time is not read as a date."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date, YYYY-MM-DD")
    return value


Date = Annotated[dt.date, BeforeValidator(_iso_date)]
"""A calendar date, given as ``YYYY-MM-DD`` and nothing else."""


def text_pattern(*, multiline: bool = True, not_blank: bool = False) -> str:
    """The JSON Schema ``pattern`` of a string these rules accept, for API documents.

    ``multiline`` as in :func:`text`; ``not_blank`` asks for one character that is not
    whitespace (required text that is stripped before its length is checked)."""
    refused = UNSAFE_CHARACTERS if multiline else CONTROL_CHARACTERS
    if not_blank:
        return f"^[^{refused}]*[^{refused}{WHITESPACE_CHARACTERS}][^{refused}]*$"
    return f"^[^{refused}]*$"


def text(max_length: int, *, min_length: int = 0, strip: bool = False, multiline: bool = False) -> Any:
    """A string type of at most ``max_length`` characters without unsafe characters.

    ``multiline`` allows tab and line breaks (free text such as a cancel reason); ``strip``
    trims surrounding whitespace before the length is checked. Use it for every input
    string that is stored, with ``max_length`` at or below the column's. Its JSON Schema
    states the character rule as a ``pattern``."""
    check = _safe if multiline else _single_line
    pattern = text_pattern(multiline=multiline, not_blank=strip and min_length >= 1)
    return Annotated[str, StringConstraints(strict=True, strip_whitespace=strip, min_length=min_length,
                                            max_length=max_length), AfterValidator(check),
                     Field(json_schema_extra={"pattern": pattern})]


Text = text(200)


def _idempotency_key(value: str) -> str:
    if not 1 <= len(value) <= IDEMPOTENCY_KEY_MAX or not _PRINTABLE_ASCII.fullmatch(value):
        raise ValueError(f"must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters (0x20-0x7E)")
    return value


IdempotencyKey = Annotated[str, Field(strict=True), AfterValidator(_idempotency_key), WithJsonSchema({
    "type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX, "pattern": "^[\\x20-\\x7E]+$",
    "description": "1 to 255 printable ASCII characters, unique per intended action (e.g. a UUID).",
})]


def check_idempotency_key(value: str | None, *, field: str = "Idempotency-Key") -> str | None:
    """``value`` when it is a valid idempotency key (or absent), else InvalidRequest naming ``field``."""
    if value is None:
        return None
    try:
        return _idempotency_key(value)
    except ValueError as exc:
        raise InvalidRequest(f"{field}: {exc}.", details=[{"path": field, "message": str(exc)}]) from None


# --- validation errors --------------------------------------------------------------------

_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "int_type": "must be an integer", "int_parsing": "must be an integer", "int_from_float": "must be an integer",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "float_type": "must be a number", "float_parsing": "must be a number", "finite_number": "must be a finite number",
    "string_type": "must be a string", "string_pattern_mismatch": "has an invalid format",
    "string_not_ascii": "must be ASCII", "string_unicode": "must be valid Unicode",
    "greater_than": "must be greater than {gt}", "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}", "less_than_equal": "must be at most {le}",
    "multiple_of": "must be a multiple of {multiple_of}",
    "literal_error": "must be one of {expected}", "enum": "must be one of {expected}",
    "dict_type": "must be an object", "model_type": "must be an object", "model_attributes_type": "must be an object",
    "list_type": "must be an array", "tuple_type": "must be an array", "set_type": "must be an array",
    "too_short": "must have at least {min_length} items", "too_long": "must have at most {max_length} items",
    "date_type": "must be a date, YYYY-MM-DD", "date_parsing": "must be a date, YYYY-MM-DD",
    "date_from_datetime_parsing": "must be a date, YYYY-MM-DD",
    "date_from_datetime_inexact": "must be a date, YYYY-MM-DD",
    "datetime_type": "must be a date and time, ISO 8601", "datetime_parsing": "must be a date and time, ISO 8601",
    "datetime_from_date_parsing": "must be a date and time, ISO 8601",
    "time_type": "must be a time, HH:MM", "time_parsing": "must be a time, HH:MM",
    "timezone_naive": "must have no time zone offset", "timezone_aware": "must have a time zone offset",
    "json_invalid": "is not valid JSON", "json_type": "must be JSON",
    "url_type": "must be a URL", "url_parsing": "must be a URL", "url_scheme": "must be an http(s) URL",
    "union_tag_invalid": "is not one of the accepted kinds", "union_tag_not_found": "is not one of the accepted kinds",
    "none_required": "must be null",
}
_LOCATIONS = ("body", "query", "path", "header", "cookie")
_TAGS = {"str", "int", "float", "bool", "none", "decimal", "bytes"}  # not names any input field has


def _message(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        cause = ctx.get("error")
        return str(cause) if cause is not None else "is invalid"
    if kind == "string_too_short":
        minimum = ctx.get("min_length", 1)
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    template = _MESSAGES.get(kind)
    if template is None:
        return "is invalid"
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return template.split(" {")[0]


def _is_tag(part: Any) -> bool:
    """A union member's name in an error location: pydantic's, never the client's."""
    return isinstance(part, str) and (part in _TAGS or any(c in part for c in "[](),") or part.startswith(
        ("constrained-", "function-", "lax-", "json-", "tagged-")))


def issues(errors: ValidationError | Iterable[Mapping[str, Any]], *,
           prefix: Iterable[str | int] = ()) -> list[dict[str, str]]:
    """Validation errors as ``[{path, message}]``, one per field, in Errand's own words.

    ``errors`` is a pydantic ValidationError or its ``errors()`` list (FastAPI's request
    errors are such a list). Paths join the client's field names with dots, behind
    ``prefix``; where the request part (body, query…) is the whole path it stays, e.g.
    ``body``. Messages come from the error's type, never from the library's text."""
    found = errors.errors(include_url=False, include_input=False) if isinstance(errors, ValidationError) else errors
    out: list[dict[str, str]] = []
    for err in found:
        loc = list(err.get("loc", ()))
        where = loc[0] if loc and loc[0] in _LOCATIONS else None
        if where is not None:
            loc = loc[1:]
        parts = [*prefix, *(p for p in loc if not _is_tag(p))]
        issue = {"path": _path(parts) if parts else (where or "body"), "message": _message(err)}
        if err.get("type") == "missing" and not loc and where == "body":
            issue["message"] = "a JSON request body is required"
        if issue not in out:
            out.append(issue)
    return out


def summarize(found: list[dict[str, str]], limit: int = 5) -> str:
    """A one-line message from :func:`issues`: ``path: message; …``."""
    return "; ".join(f"{i['path']}: {i['message']}" for i in found[:limit])
