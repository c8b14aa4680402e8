"""Every error code is declared once, by its domain (issue 11, "Declared errors").

A code a dialect's table maps must belong to a declared error class (``errand.kit.errors.DomainError.declared``),
and no raise site passes a bare code string: it raises the declared class, so a code is spelled in one place.
"""

import ast
import importlib
import pkgutil
from pathlib import Path

import errand
from errand.kit.errors import DomainError

SOURCE = Path(errand.__file__).parent
GENERIC = {"DomainError", "InvalidRequest", "NotFound", "Conflict", "Forbidden", "Unauthorized", "RateLimited",
           "Unavailable"}


def _import_everything() -> None:
    for module in pkgutil.walk_packages(errand.__path__, "errand."):
        importlib.import_module(module.name)


def test_every_code_a_dialect_maps_is_declared() -> None:
    _import_everything()
    from errand.api.automations import errors as automations_errors
    from errand.api.execution import errors as execution_errors
    from errand.api.reservations import vocabulary

    tables = {"reservations and MCP": vocabulary.CODES, "execution": execution_errors.CODES,
              "automations": automations_errors.CODES}
    undeclared = {dialect: sorted(set(table) - set(DomainError.declared)) for dialect, table in tables.items()}
    assert undeclared == {dialect: [] for dialect in tables}


def _bare_codes(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        literal_code = (len(node.args) >= 2 and isinstance(node.args[0], ast.Constant)
                        and isinstance(node.args[0].value, str))
        code_keyword = any(k.arg == "code" and isinstance(k.value, ast.Constant) for k in node.keywords)
        if (name in GENERIC or name == "__init__") and (literal_code or code_keyword):
            found.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    return found


def test_no_raise_site_spells_a_code() -> None:
    sites = [site for path in sorted(SOURCE.rglob("*.py")) if path.name != "errors.py" or path.parent.name != "kit"
             for site in _bare_codes(path)]
    assert sites == []
