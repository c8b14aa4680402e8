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
the sandbox refuses and any error while rendering (a division by zero, a number too large).
Messages name fields and keys, never the values rendered.

A template is written by an organization's admin and fed by anyone holding one of its keys, so
rendering is bounded, for the sake of every other tenant of the process (issue 12; the mission's
"no tenant can slow down another"):

- it runs in a worker thread, never on the event loop;
- the operators and filters that can grow a value out of proportion to their inputs are checked
  *before* they run (``*``, ``**``, ``%``, ``+``; ``center``, ``indent``, ``wordwrap``,
  ``format``, ``replace``): nothing may make a value past :data:`MAX_RENDERED_CHARS` characters,
  a power past :data:`MAX_POWER_BITS` bits, or a width past the same bound;
- a render that runs past :data:`RENDER_SECONDS` (loops over a large payload) is stopped by a
  trace function of its thread that checks the clock at each line the compiled template runs;
- the result is refused past :data:`MAX_RENDERED_CHARS`.

String concatenation with ``~`` inside a loop is bounded by the time budget only, not checked
per operation (Jinja does not route ``~`` through the sandbox's operator hook).
"""

import asyncio
import functools
import math
import re
import sys
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import FrameType
from typing import Any

MAX_RENDERED_CHARS = 100_000
"""What one rendered template, and any value inside it, may be (characters or items)."""
MAX_POWER_BITS = 4096
"""How large a number ``**`` may make (bits)."""
RENDER_SECONDS = 0.5
"""How long one template may take to render."""
_WIDTH = re.compile(r"%[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")


class TemplateFailed(Exception):
    """A template that could not be rendered; ``str()`` names the field and what was missing."""


class _Overrun(Exception):
    """A render past its time budget (raised inside the rendering thread by its trace function)."""


def _refuse(what: str) -> Exception:
    from jinja2.exceptions import SecurityError

    return SecurityError(what)


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would pass the bounds (see the module docstring)."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            n = _size(seq)
            if n is not None and isinstance(times, int) and n * max(times, 0) > MAX_RENDERED_CHARS:
                raise _refuse(f"a repetition would make more than {MAX_RENDERED_CHARS} characters")
    elif operator == "+":
        a, b = _size(left), _size(right)
        if a is not None and b is not None and a + b > MAX_RENDERED_CHARS:
            raise _refuse(f"a concatenation would make more than {MAX_RENDERED_CHARS} characters")
    elif operator == "**":
        if isinstance(left, int | float) and isinstance(right, int | float) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > MAX_POWER_BITS:
                raise _refuse(f"a power would pass {MAX_POWER_BITS} bits")
    elif operator == "%" and isinstance(left, str):
        _check_format(left)


def _check_format(spec: str) -> None:
    for width, precision in _WIDTH.findall(spec):
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_RENDERED_CHARS):
                raise _refuse(f"a format width past {MAX_RENDERED_CHARS} (or taken from an argument) is refused")


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (a growth filter) with its arguments checked first; it keeps Jinja's marker
    for a filter that takes the environment or evaluation context before the value."""
    skip = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(original)
    def bounded(*all_args: Any, **kwargs: Any) -> Any:
        args = all_args[skip:]
        value = args[0] if args else None
        if name == "format" and isinstance(value, str):
            _check_format(value)
        elif name == "replace" and isinstance(value, str) and len(args) >= 3:
            old, new = str(args[1]), str(args[2])
            grows = max(len(new) - len(old), 0) * (value.count(old) if old else len(value) + 1)
            if len(value) + grows > MAX_RENDERED_CHARS:
                raise _refuse(f"a replace would make more than {MAX_RENDERED_CHARS} characters")
        else:
            numbers = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, int | float)]
            if any(abs(n) > MAX_RENDERED_CHARS for n in numbers):
                raise _refuse(f"{name}: a width past {MAX_RENDERED_CHARS}")
        return original(*all_args, **kwargs)
    return bounded


@lru_cache(maxsize=1)
def _jinja() -> Any:
    """The bounded sandbox (see the module docstring), built on first use: ``errand mcp`` imports
    the core and never renders. :mod:`errand.automations.validation` parses with it too."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    class Bounded(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%", "+"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

    env = Bounded(undefined=jinja2.StrictUndefined, autoescape=False)
    for name in ("center", "indent", "wordwrap", "format", "replace", "truncate"):
        env.filters[name] = _bounded_filter(name, env.filters[name])
    return env


def environment() -> Any:
    """The Jinja2 environment templates are parsed and rendered with."""
    return _jinja()


@lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    return _jinja().from_string(source)


def context(*, event_payload: Any, event: Mapping[str, Any], steps: Mapping[str, Any]) -> dict[str, Any]:
    """The names a template sees (see the module docstring)."""
    return {"event_payload": event_payload, "event": dict(event), "steps": dict(steps)}


async def render(source: str, names: Mapping[str, Any], *, field: str) -> str:
    """``source`` rendered over ``names`` in a worker thread, within the bounds of the module
    docstring; TemplateFailed naming ``field`` (e.g. ``steps[1].body``) when it uses a name or key
    that is not there, the sandbox refuses it, it fails or it runs past its budget."""
    return await asyncio.to_thread(_render, source, names, field)


async def render_value(value: Any, names: Mapping[str, Any], *, field: str) -> Any:
    """Every string inside ``value`` (a product action's params: objects and arrays of JSON
    values) rendered as a template (:func:`render`); other values as they are."""
    return await asyncio.to_thread(_render_value, value, names, field)


def _render_value(value: Any, names: Mapping[str, Any], field: str) -> Any:
    if isinstance(value, str):
        return _render(value, names, field)
    if isinstance(value, Mapping):
        return {key: _render_value(item, names, f"{field}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_render_value(item, names, f"{field}[{i}]") for i, item in enumerate(value)]
    return value


def _render(source: str, names: Mapping[str, Any], field: str) -> str:
    import jinja2

    deadline = time.monotonic() + RENDER_SECONDS

    def budget(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise _Overrun
        return budget

    template = _compiled_or_fail(source, field)
    previous = sys.gettrace()
    sys.settrace(budget)
    try:
        out = template.render(**names)
    except _Overrun:
        raise TemplateFailed(f"{field}: the template took longer than {RENDER_SECONDS} s to render") from None
    except jinja2.UndefinedError as exc:
        raise TemplateFailed(f"{field}: the template uses a value that is not there ({_clip(exc.message)})") from None
    except jinja2.TemplateError as exc:
        raise TemplateFailed(f"{field}: the template could not be rendered ({_clip(exc.message)})") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, MemoryError) as exc:
        raise TemplateFailed(f"{field}: the template failed ({type(exc).__name__})") from None
    finally:
        sys.settrace(previous)
    if len(out) > MAX_RENDERED_CHARS:
        raise TemplateFailed(f"{field}: the template rendered more than {MAX_RENDERED_CHARS} characters")
    return out


def _compiled_or_fail(source: str, field: str) -> Any:
    import jinja2

    try:
        return _compiled(source)
    except jinja2.TemplateError as exc:
        raise TemplateFailed(f"{field}: the template could not be parsed ({_clip(exc.message)})") from None


def _clip(message: str | None) -> str:
    text = (message or "undefined").replace("\n", " ")
    return text if len(text) <= 200 else text[:199] + "…"
