"""Rendering a step's templates when it runs: Jinja2's sandbox with strict undefined values.

The same sandboxed environment :mod:`errand.automations.validation` parses templates with, so
a template that passed activation renders here the same way. A template sees three names
(RESOLUTIONS.md "Automations dialect": ``{{event_payload.x}}``, ``{{steps.<id>.output.x}}``):

- ``event_payload``: the event's payload;
- ``event``: its envelope without the payload (``id``, ``event_key``, ``event_type``,
  ``source_product``, ``client_id``, ``metadata``, ``received_at``);
- ``steps``: ``{step id: {"output": …, "status": …}}`` of the steps that have a receipt.

A name or key the context does not have is a :class:`TemplateFailed` naming the template's
field and the missing name (the execution fails with reason ``template_error``); so is anything
the sandbox refuses. Messages name fields and keys, never the values rendered.
"""

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

MAX_RENDERED_CHARS = 100_000
"""What one rendered template may produce (a loop in a template cannot make more)."""


class TemplateFailed(Exception):
    """A template that could not be rendered; ``str()`` names the field and what was missing."""


@lru_cache(maxsize=1)
def _jinja() -> Any:
    """The sandbox, built on first use: ``errand mcp`` imports the core and never renders."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


@lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    return _jinja().from_string(source)


def context(*, event_payload: Any, event: Mapping[str, Any], steps: Mapping[str, Any]) -> dict[str, Any]:
    """The names a template sees (see the module docstring)."""
    return {"event_payload": event_payload, "event": dict(event), "steps": dict(steps)}


def render(source: str, names: Mapping[str, Any], *, field: str) -> str:
    """``source`` rendered over ``names``; TemplateFailed naming ``field`` (e.g. ``steps[1].body``)
    when it uses a name or key that is not there, or the sandbox refuses it."""
    import jinja2

    try:
        out = _compiled(source).render(**names)
    except jinja2.UndefinedError as exc:
        raise TemplateFailed(f"{field}: the template uses a value that is not there ({_clip(exc.message)})") from None
    except jinja2.TemplateError as exc:
        raise TemplateFailed(f"{field}: the template could not be rendered ({_clip(exc.message)})") from None
    if len(out) > MAX_RENDERED_CHARS:
        raise TemplateFailed(f"{field}: the template rendered more than {MAX_RENDERED_CHARS} characters")
    return out


def render_value(value: Any, names: Mapping[str, Any], *, field: str) -> Any:
    """Every string inside ``value`` (a product action's params: objects and arrays of JSON
    values) rendered as a template; other values as they are."""
    if isinstance(value, str):
        return render(value, names, field=field)
    if isinstance(value, Mapping):
        return {key: render_value(item, names, field=f"{field}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, names, field=f"{field}[{i}]") for i, item in enumerate(value)]
    return value


def _clip(message: str | None) -> str:
    text = (message or "undefined").replace("\n", " ")
    return text if len(text) <= 200 else text[:199] + "…"
