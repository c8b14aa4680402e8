"""CEL rules with a budget: the checks a CUSTOM rule passes when it is saved, and its evaluation.

Why cel-python (``celpy``) and not ``common-expression-language`` (Rust bindings, 0.10 on PyPI)?
Both were measured here. The Rust package installs from PyPI wheels and is ~100× faster, but it
has no cost or time limit either, exposes no syntax tree to check a rule's size and nesting
against, and holds the GIL for the whole evaluation: a runaway rule would freeze the event loop
and every other organization's requests, with nothing able to stop it. cel-python gives us its
Lark syntax tree (for the save-time limits) and an interpreter whose every node visit goes through
:class:`BudgetedEvaluator`, so the time budget stops runaway work inside the worker thread
instead of leaving it to burn CPU (measured: a 60×60×60 ``map`` stops after 100 ms of CPU). A
process pool was measured and not needed: ~4 s to start a worker, ~1 ms a call (a thread: 0.5 ms),
~75 MB a worker, and a killed worker to replace; the limits and the in-thread budget already stop
runaway rules. cel-python's compiled runner is faster (~80 µs a rule) but shares its activation
between threads and has no per-node hook, so the interpreter (~0.35 ms a rule) is used.

Two fixes to cel-python's behaviour, made through its own extension point (functions passed to
``Environment.program``), not by patching it:

- ``||``, ``&&`` and ``!`` of error values return the first error. cel-python builds a new error
  whose text holds the ``repr`` of both operands, so a 22-term chain of failing comparisons made a
  268 MB message (60 terms: past 7 GB).
- Comparisons and equality between ``int``, ``uint`` and ``double`` compare the numbers, as the CEL
  specification says (cel-python answers "no such overload" for ``request.amountUsd == 260``).

Errors are rewritten into one short sentence in CEL terms (:func:`describe`): no Python class
names, tracebacks or library reprs, at most :data:`MAX_MESSAGE_CHARS` characters. cel-python's
loggers are silenced: it logs every node at DEBUG and an "Internal error" at ERROR for each
failing rule.
"""

import asyncio
import gc
import logging
import operator
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.evaluation import CELEvalError, Evaluator

_celpy_log = logging.getLogger("celpy")
_celpy_log.setLevel(logging.CRITICAL + 1)
_celpy_log.propagate = False
_celpy_log.addHandler(logging.NullHandler())

MAX_RULE_LENGTH = 1000
"""Characters in a rule."""
MAX_AST_NODES = 200
"""Nodes of the rule's syntax tree: identifiers, literals, field selections, operators and calls."""
MAX_COMPREHENSION_DEPTH = 2
"""Macros (all, exists, exists_one, map, filter) nested inside one another's bodies."""
MAX_PARSE_DEPTH = 150
"""Levels of the parse tree (each parenthesis adds about nine), like cel-go's parser recursion limit."""
BUDGET_SECONDS = 0.1
"""CPU time one evaluation of one rule may take, at save (on a sample request) and at booking."""
MAX_MESSAGE_CHARS = 300
"""Length of an error message about a rule."""

COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})

# What a rule sees in ``request``: field → CEL type (README "Policy rules (CEL)"). Every field is
# present for every action except venueName and providerId, which only execution jobs have.
FIELD_TYPES: dict[str, str] = {
    "scenario": "string", "operation": "string", "restaurantName": "string", "city": "string",
    "partySize": "int", "amountUsd": "double", "pricePerPersonUsd": "double", "datetime": "string",
    "localTime": "string", "localHour": "int", "weekday": "int", "keyEnv": "string",
    "venueName": "string", "providerId": "string",
}

_NUMBERS = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)


class RuleError(Exception):
    """A rule that breaks a limit, does not parse, or fails or overruns when evaluated.

    ``str()`` is a short sentence in CEL terms, safe to show to the rule's author.
    """

    def __init__(self, message: str) -> None:
        super().__init__(_clip(message))


class _OverBudget(BaseException):
    """Raised inside an evaluation that ran out of time. A BaseException so that cel-python's
    own ``except Exception`` handlers cannot turn it into an error value and carry on."""


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


# --- cel-python's operators, fixed -------------------------------------------------------


def _is_error(value: Any) -> bool:
    return isinstance(value, CELEvalError | Exception)


def _or(x: Any, y: Any) -> Any:
    if isinstance(x, celtypes.BoolType) and x or isinstance(y, celtypes.BoolType) and y:
        return celtypes.BoolType(True)
    if isinstance(x, celtypes.BoolType) and isinstance(y, celtypes.BoolType):
        return celtypes.BoolType(False)
    return x if _is_error(x) else y if _is_error(y) else _no_overload("||", x, y)


def _and(x: Any, y: Any) -> Any:
    if isinstance(x, celtypes.BoolType) and not x or isinstance(y, celtypes.BoolType) and not y:
        return celtypes.BoolType(False)
    if isinstance(x, celtypes.BoolType) and isinstance(y, celtypes.BoolType):
        return celtypes.BoolType(True)
    return x if _is_error(x) else y if _is_error(y) else _no_overload("&&", x, y)


def _not(x: Any) -> Any:
    if isinstance(x, celtypes.BoolType):
        return celtypes.BoolType(not x)
    return x if _is_error(x) else _no_overload("!", x)


def _no_overload(op: str, *args: Any) -> CELEvalError:
    return CELEvalError(f"no such overload: {op} on ({', '.join(_cel_type(a) for a in args)})")


def _numeric(base: Callable[[Any, Any], Any], compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    """Compare int, uint and double by value (CEL's heterogeneous numeric comparison)."""

    def fn(x: Any, y: Any) -> Any:
        if _is_error(x):
            return x
        if _is_error(y):
            return y
        if isinstance(x, _NUMBERS) and isinstance(y, _NUMBERS) and type(x) is not type(y):
            return celtypes.BoolType(compare(float(x), float(y)))
        return base(x, y)

    fn.__name__ = base.__name__
    return fn


_base = celpy.evaluation.base_functions
FUNCTIONS: dict[str, Any] = {
    "_||_": _or, "_&&_": _and, "!_": _not,
    **{name: _numeric(_base[name], compare) for name, compare in {
        "_==_": operator.eq, "_!=_": operator.ne, "_<_": operator.lt, "_<=_": operator.le,
        "_>_": operator.gt, "_>=_": operator.ge,
    }.items()},
}


def _cel_type(value: Any) -> str:
    for cls, name in ((celtypes.BoolType, "bool"), (celtypes.IntType, "int"), (celtypes.UintType, "uint"),
                      (celtypes.DoubleType, "double"), (celtypes.StringType, "string"),
                      (celtypes.BytesType, "bytes"), (celtypes.ListType, "list"), (celtypes.MapType, "map"),
                      (celtypes.TimestampType, "timestamp"), (celtypes.DurationType, "duration")):
        if isinstance(value, cls):
            return name
    return "null" if value is None else "error" if _is_error(value) else "dyn"


# --- errors in CEL terms ----------------------------------------------------------------

_CELPY_TYPE = re.compile(r"(?:celpy\.celtypes\.)?\b(Bool|Int|Uint|Double|String|Bytes|List|Map|Timestamp|Duration)Type\b")


def describe(error: BaseException) -> str:
    """One short sentence naming what went wrong, in CEL terms.

    cel-python nests ``(text, exception class, args)`` tuples: the first specific text is kept
    ("no such overload", "divide by zero", …), with the missing key's name or the operands' CEL
    types found further in; never a repr, a class name or a traceback.
    """
    texts: list[str] = []
    missing: str | None = None
    current: Any = error
    for _ in range(8):  # errors nest a few levels at most; never walk a huge chain
        args = getattr(current, "args", ())
        if args and isinstance(args[0], str):
            texts.append(args[0][:2000])
        nested = args[2] if len(args) > 2 and isinstance(args[2], tuple) and args[2] else None
        if isinstance(current, KeyError) and args:
            missing = str(args[0])[:80]
        elif len(args) > 1 and args[1] is KeyError:
            named = re.search(r"'([^']{1,80})'", texts[-1] if texts else "")
            missing = str(nested[0])[:80] if nested else named.group(1) if named else missing
        if nested is None:
            break
        current = nested[0] if isinstance(nested[0], BaseException) else Exception(*nested)
    if missing is not None:
        return _clip(f"no such key or field: '{missing}'")
    specific = [t for t in texts if t != "evaluation error"] or ["evaluation error"]
    head = _strip_python(specific[0].split(":", 1)[0]) or "evaluation error"
    if "overload" in head:
        types = list(dict.fromkeys(m.lower() for m in _CELPY_TYPE.findall(" ".join(texts))))
        types += re.findall(r" on \(([a-z, ]+)\)", " ".join(texts))
        return _clip(f"no such overload for ({', '.join(types)})" if types else "no such overload")
    return _clip(head)


def _strip_python(text: str) -> str:
    text = _CELPY_TYPE.sub(lambda m: m.group(1).lower(), text)
    return re.sub(r"<class '[^']*'>", "", text).replace("celpy", "").strip()


# --- save-time limits -------------------------------------------------------------------

_parsing = threading.Lock()


@lru_cache(maxsize=1)
def _env() -> celpy.Environment:
    """The one environment, built on first use: building cel-python's parser takes about a second,
    which a process that never meets a rule (``errand mcp`` at start) should not pay."""
    return celpy.Environment()


def check(rule: str) -> None:
    """Refuse, with a :class:`RuleError`, a rule that does not parse or breaks a size limit.

    Limits: :data:`MAX_RULE_LENGTH` characters, :data:`MAX_AST_NODES` syntax-tree nodes,
    :data:`MAX_COMPREHENSION_DEPTH` nested comprehension macros, and ``request.<field>`` only
    for fields in :data:`FIELD_TYPES`.
    """
    if len(rule) > MAX_RULE_LENGTH:
        raise RuleError(f"the rule is {len(rule)} characters long; the limit is {MAX_RULE_LENGTH}")
    _parse(rule)


@lru_cache(maxsize=1024)
def _parse(rule: str) -> lark.Tree:
    try:
        with _parsing:  # cel-python's parser keeps the text on the shared instance while it parses
            tree = _env().compile(rule)
    except celpy.CELParseError as exc:
        where = f" at line {exc.line}, column {exc.column}" if getattr(exc, "line", None) else ""
        raise RuleError(f"syntax error{where}: the rule is not a CEL expression") from None
    except RecursionError:
        raise RuleError(f"the rule nests expressions deeper than {MAX_PARSE_DEPTH} parse levels") from None
    nodes, depth, height = _measure(tree)
    if height > MAX_PARSE_DEPTH:
        raise RuleError(f"the rule nests expressions {height} parse levels deep (each parenthesis adds about "
                        f"nine); the limit is {MAX_PARSE_DEPTH}")
    if nodes > MAX_AST_NODES:
        raise RuleError(f"the rule has {nodes} syntax-tree nodes (identifiers, literals, operators, calls); "
                        f"the limit is {MAX_AST_NODES}")
    if depth > MAX_COMPREHENSION_DEPTH:
        raise RuleError(f"the rule nests comprehension macros (all, exists, exists_one, map, filter) "
                        f"{depth} deep; the limit is {MAX_COMPREHENSION_DEPTH}")
    unknown = _unknown_fields(tree)
    if unknown:
        raise RuleError(f"request has no field '{unknown[0][:80]}'; its fields are {', '.join(FIELD_TYPES)}")
    return tree


def _measure(tree: lark.Tree) -> tuple[int, int, int]:
    """Syntax-tree nodes (tokens and operator or call nodes; Lark's one-child wrappers are not
    counted), the deepest nesting of comprehension macros and the parse tree's height.
    Iterative, so no rule can hit Python's recursion limit here."""
    nodes, deepest, height = 0, 0, 0
    stack: list[tuple[Any, int, int]] = [(tree, 0, 1)]
    while stack:
        node, depth, level = stack.pop()
        height = max(height, level)
        if isinstance(node, lark.Token):
            nodes += 1
            continue
        if len(node.children) > 1:
            nodes += 1
        if node.data == "member_dot_arg" and _method(node) in COMPREHENSIONS and len(node.children) == 3:
            receiver, _, args = node.children
            deepest = max(deepest, depth + 1)
            stack.append((receiver, depth, level + 1))
            stack.append((args, depth + 1, level + 1))
            continue
        stack.extend((child, depth, level + 1) for child in node.children)
    return nodes, deepest, height


def _method(node: lark.Tree) -> str | None:
    name = node.children[1] if len(node.children) > 1 else None
    return str(name) if isinstance(name, lark.Token) else None


def _unknown_fields(tree: lark.Tree) -> list[str]:
    """Fields selected as ``request.<name>`` that ``request`` never has."""
    unknown = []
    for node in tree.iter_subtrees():
        if node.data != "member_dot" or len(node.children) != 2:
            continue
        target, name = node.children
        if isinstance(target, lark.Tree) and _is_request(target) and str(name) not in FIELD_TYPES:
            unknown.append(str(name))
    return unknown


def _is_request(node: lark.Tree) -> bool:
    while isinstance(node, lark.Tree) and len(node.children) == 1:
        node = node.children[0]
    return isinstance(node, lark.Token) and node.type == "IDENT" and str(node) == "request"


# --- evaluation -------------------------------------------------------------------------


# CPU seconds this thread spent in the garbage collector: a collection that happens to run in an
# evaluating thread (a full one on a large heap takes well over 100 ms) is not the rule's work.
_collecting = threading.local()


def _count_collections(phase: str, _info: dict[str, Any]) -> None:
    if phase == "start":
        _collecting.since = time.thread_time()
    elif getattr(_collecting, "since", None) is not None:
        _collecting.spent = getattr(_collecting, "spent", 0.0) + time.thread_time() - _collecting.since
        _collecting.since = None


gc.callbacks.append(_count_collections)


def _rule_time() -> float:
    """This thread's CPU time, less what it spent collecting garbage."""
    return time.thread_time() - getattr(_collecting, "spent", 0.0)


class BudgetedEvaluator(Evaluator):
    """cel-python's interpreter with a CPU-time deadline (:func:`_rule_time`) checked at every node it visits."""

    def __init__(self, ast: lark.Tree, activation: Any, deadline: float) -> None:
        super().__init__(ast, activation)
        self.deadline = deadline

    def _tick(self) -> None:
        if _rule_time() > self.deadline:
            raise _OverBudget

    def visit(self, tree: lark.Tree) -> Any:
        self._tick()
        return super().visit(tree)

    def visit_children(self, tree: lark.Tree) -> Any:
        self._tick()
        return super().visit_children(tree)

    def sub_evaluator(self, ast: lark.Tree) -> "BudgetedEvaluator":
        return BudgetedEvaluator(ast, self.activation, self.deadline)


@lru_cache(maxsize=1024)
def _runner(rule: str) -> celpy.Runner:
    return _env().program(_parse(rule), functions=FUNCTIONS)


def to_cel(request: dict[str, Any]) -> Any:
    """The ``request`` a rule sees: each field of :data:`FIELD_TYPES` as its documented CEL type
    (numbers of an ``int`` field that are whole become ints, ``double`` fields become doubles)."""
    fields: dict[str, Any] = {}
    for name, value in request.items():
        kind = FIELD_TYPES.get(name)
        if value is None or kind is None:
            continue
        if kind == "int" and isinstance(value, int | float) and not isinstance(value, bool) and value == int(value):
            fields[name] = celtypes.IntType(int(value))
        elif kind == "double" and isinstance(value, int | float) and not isinstance(value, bool):
            fields[name] = celtypes.DoubleType(float(value))
        else:
            fields[name] = celpy.json_to_cel(value)
    return celtypes.MapType({celtypes.StringType(k): v for k, v in fields.items()})


def _evaluate_now(rule: str, request: dict[str, Any]) -> bool:
    return _budgeted(rule, lambda: {"request": to_cel(request)})


def _budgeted(rule: str, activation: Callable[[], dict[str, Any]]) -> bool:
    """``rule`` evaluated over ``activation()`` (built inside the budget: a value CEL cannot hold is
    a RuleError too) within :data:`BUDGET_SECONDS`; its bool, else RuleError."""
    runner = _runner(rule)
    evaluator = BudgetedEvaluator(runner.ast, runner.new_activation(), _rule_time() + BUDGET_SECONDS)
    try:
        result = evaluator.evaluate(activation())
    except _OverBudget:
        raise RuleError(f"the rule ran past its evaluation budget of {BUDGET_SECONDS * 1000:.0f} ms") from None
    except RuleError:
        raise
    except Exception as exc:  # noqa: BLE001 - cel-python raises its errors and Python's alike
        raise RuleError(describe(exc)) from None
    if _is_error(result):
        raise RuleError(describe(result))
    if not isinstance(result, celtypes.BoolType):
        raise RuleError(f"the rule must evaluate to a bool, not {_cel_type(result)}")
    return bool(result)


_workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cel")


async def evaluate(rule: str, request: dict[str, Any]) -> bool:
    """Whether ``rule`` matches ``request``, evaluated in a worker thread, off the event loop.

    Raises :class:`RuleError` when the rule breaks a limit, fails to evaluate (a missing field,
    a type mismatch, division by zero) or runs past :data:`BUDGET_SECONDS` of CPU time.
    """
    return await asyncio.get_running_loop().run_in_executor(_workers, _evaluate_now, rule, request)


def _evaluate_with_now(rule: str, variables: dict[str, Any]) -> bool:
    return _budgeted(rule, lambda: {name: celpy.json_to_cel(value) for name, value in variables.items()})


async def evaluate_with(rule: str, variables: dict[str, Any]) -> bool:
    """Whether ``rule`` holds over ``variables`` (name → JSON value, each a top-level CEL
    identifier, e.g. an automation branch's ``event_payload`` and ``steps``), with the same
    limits and CPU budget as :func:`evaluate`, in a worker thread.

    Raises :class:`RuleError` when the rule breaks a limit, fails to evaluate (a missing key, a
    type mismatch) or runs past :data:`BUDGET_SECONDS` of CPU time."""
    return await asyncio.get_running_loop().run_in_executor(_workers, _evaluate_with_now, rule, variables)
