"""Checking agent definitions: their shape on every write, their meaning on activation.

Every problem is one ``{path, message}`` issue whose path is the field's, in the definition's
own terms: ``steps[2].model``, ``trigger.filters[0].value``, ``client_scope``. Templates are
parsed by Jinja2's sandboxed environment (the one that will render them) and may name only
``event_payload``, ``event`` and ``steps`` of earlier steps; a branch condition must compile as
CEL with the guard's limits (:func:`errand.guard.service.check_rule`).
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import jinja2
import jsonschema
from jinja2 import nodes
from pydantic import BaseModel, ValidationError

from errand.automations import rendering, schemas
from errand.automations.errors import InvalidAgentConfig
from errand.guard import service as guard_service
from errand.kit import inputs

ModelT = TypeVar("ModelT", bound=BaseModel)

TEMPLATE_ROOTS = frozenset({"event_payload", "event", "steps"})
"""The names a template (and a branch condition) may use."""
MAX_WAIT_SECONDS = 30 * 86_400
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_SCALARS = {"str": "a string", "int": "a number", "float": "a number", "bool": "true or false"}
_TAGS = schemas.SCOPE_TAGS | set(_SCALARS)
_UNION_TAGS = frozenset(schemas.STEP_TYPES) | frozenset(schemas.OPERATORS)  # a step's type, a filter's operator



def _path(loc: Sequence[Any]) -> str:
    """A pydantic location as the definition's field path, union tags left out."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS or any(c in part for c in "[]()',") or (
                i and isinstance(loc[i - 1], int) and part in _UNION_TAGS and len(loc) > i + 1):
            continue
        else:
            out += f".{part}" if out else part
    return out or "body"


def _fail(issues: list[dict[str, str]]) -> InvalidAgentConfig:
    """One issue per path and message; a value that fits none of a union's scalar kinds gets one
    message naming them all ("must be a string or a number")."""
    merged: dict[str, dict[str, str]] = {}
    unique: list[dict[str, str]] = []
    for issue in issues:
        first = merged.get(issue["path"])
        if first is not None and first.get("union") and issue.get("union"):
            kind = issue["message"].removeprefix("must be ")
            if kind not in first["message"]:
                first["message"] += f" or {kind}"
            continue
        if issue in unique:
            continue
        merged.setdefault(issue["path"], issue)
        unique.append(issue)
    unique = [{"path": i["path"], "message": i["message"]} for i in unique]
    summary = "; ".join(f"{i['path']}: {i['message']}" for i in unique[:5])
    return InvalidAgentConfig(f"The agent definition is invalid: {summary}.", details=unique)


def parse(model: type[ModelT], data: Any) -> ModelT:
    """``data`` (a parsed JSON body) as ``model``, or InvalidAgentConfig naming each bad field
    (``body`` when it is no JSON object)."""
    if data is None:
        raise _fail([{"path": "body", "message": "a JSON object is required"}])
    if not isinstance(data, Mapping):
        raise _fail([{"path": "body", "message": "must be a JSON object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _fail([_issue(err) for err in exc.errors(include_url=False, include_input=False)]) from None


def _issue(err: Mapping[str, Any]) -> dict[str, str]:
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):  # a step's type, a filter's operator
        tag = str((err.get("ctx") or {}).get("discriminator", "")).strip("'")
        choices = schemas.OPERATORS if tag == "operator" else schemas.STEP_TYPES
        return {"path": f"{_path(err['loc'])}.{tag or 'type'}", "message": f"must be one of {', '.join(choices)}"}
    loc = err["loc"]
    if loc and loc[-1] in _SCALARS:  # one member of a union of scalars (a contains filter's value)
        return {"path": _path(loc), "message": f"must be {_SCALARS[loc[-1]]}", "union": "yes"}
    return {"path": _path(loc), "message": inputs.issues([{**err, "loc": ()}])[0]["message"]}


def check_complete(definition: Mapping[str, Any]) -> None:
    """Everything an active agent must satisfy beyond its shape (see the module docstring);
    ``definition`` is the stored form. Raises InvalidAgentConfig naming each problem."""
    issues: list[dict[str, str]] = []
    trigger = definition.get("trigger")
    steps = definition.get("steps") or []
    if trigger is None:
        issues.append({"path": "trigger", "message": "is required to activate the agent"})
    if not steps:
        issues.append({"path": "steps", "message": "must have at least one step to activate the agent"})
    issues += _steps(steps)
    if issues:
        raise _fail(issues)


def _steps(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    issues: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    ids = [step["id"] for step in steps]
    for i, step in enumerate(steps):
        where = f"steps[{i}]"
        if step["id"] in seen:
            issues.append({"path": f"{where}.id", "message": f"repeats the id of steps[{seen[step['id']]}]"})
        seen.setdefault(step["id"], i)
        earlier = set(ids[:i])
        for path, template in _templates(step, where):
            issues += _template(template, path, earlier)
        issues += _step_rules(step, where, ids[i + 1:])
    return issues


def _templates(step: Mapping[str, Any], where: str) -> Iterator[tuple[str, str]]:
    """Each template of a step with its path."""
    for key in ("prompt", "subject", "body", "message"):
        if isinstance(step.get(key), str):
            yield f"{where}.{key}", step[key]
    for j, recipient in enumerate(step.get("recipients") or []):
        yield f"{where}.recipients[{j}]", recipient
    yield from _strings(step.get("params") or {}, f"{where}.params")


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for j, item in enumerate(value):
            yield from _strings(item, f"{path}[{j}]")


def _template(source: str, path: str, earlier: set[str]) -> list[dict[str, str]]:
    """A template that parses and names only the allowed roots and earlier steps."""
    try:
        tree = rendering.environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [{"path": path, "message": f"is not a valid template (line {exc.lineno}: {exc.message})"[:300]}]
    issues = []
    for name in _names(tree):
        if name.ctx == "load" and name.name not in TEMPLATE_ROOTS and not _assigned(tree, name.name):
            issues.append({"path": path, "message": f"uses '{name.name}'; a template may use "
                                                    f"{', '.join(sorted(TEMPLATE_ROOTS))}"})
    for step_id in _step_references(tree):
        if step_id is None:
            issues.append({"path": path, "message": "names steps by a computed key; write steps.<id>"})
        elif step_id not in earlier:
            issues.append({"path": path, "message": f"uses steps.{step_id}, which is not an earlier step"})
    return issues


def _names(tree: nodes.Node) -> Iterator[nodes.Name]:
    yield from tree.find_all(nodes.Name)


def _assigned(tree: nodes.Node, name: str) -> bool:
    """Whether the template binds ``name`` itself (``{% set %}``, a loop variable)."""
    return any(n.name == name and n.ctx in ("store", "param") for n in tree.find_all(nodes.Name))


def _step_references(tree: nodes.Node) -> Iterator[str | None]:
    """The step ids a template reads as ``steps.<id>`` or ``steps['<id>']`` (None: a computed key)."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if not (isinstance(target, nodes.Name) and target.name == "steps"):
            continue
        if isinstance(node, nodes.Getattr):
            yield node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield node.arg.value
        else:
            yield None


def _step_rules(step: Mapping[str, Any], where: str, later: Sequence[str]) -> list[dict[str, str]]:
    kind = step["type"]
    if kind == "ai_reason":
        try:
            jsonschema.validators.validator_for(step["output_schema"]).check_schema(step["output_schema"])
        except jsonschema.SchemaError as exc:
            return [{"path": f"{where}.output_schema", "message": f"is not a JSON Schema: {exc.message}"[:300]}]
    elif kind == "branch":
        issues = []
        try:
            guard_service.check_rule(step["condition"])
        except guard_service.RuleError as exc:
            issues.append({"path": f"{where}.condition", "message": f"is not a valid CEL condition: {exc}"})
        for key in ("if_true", "if_false"):
            if step.get(key) is not None and step[key] != schemas.END and step[key] not in later:
                issues.append({"path": f"{where}.{key}",
                               "message": f"must name a later step or {schemas.END}; {step[key]} is not one"})
        return issues
    elif kind == "wait":
        seconds = int(step["duration"][:-1]) * _UNIT_SECONDS[step["duration"][-1]]
        if seconds > MAX_WAIT_SECONDS:
            return [{"path": f"{where}.duration", "message": "must be at most 30 days"}]
    return []
