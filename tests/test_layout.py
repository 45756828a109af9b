"""How the test suite is laid out: test modules share helpers through tests/support, never by
importing one another or conftest (whose fixtures pytest hands out by name)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def imported_modules(source: str, module: str) -> set[str]:
    """Every module the code of `module` imports, at any depth, as absolute names; for
    `from package import name` both the package and package.name (which may be a module)."""
    package = module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*parent, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def is_test_module_or_conftest(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "tests" and (parts[-1] == "conftest" or parts[-1].startswith("test_"))


def test_no_module_imports_a_test_module_or_conftest() -> None:
    offenders = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in TESTS.rglob("*.py")
        for name in imported_modules(path.read_text(encoding="utf-8"), module_name(path))
        if is_test_module_or_conftest(name)
    )
    assert not offenders, "share helpers through tests/support instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    ("source", "offending"),
    [
        ("from tests.booking.test_claims import claim", "tests.booking.test_claims"),
        ("from tests import conftest", "tests.conftest"),
        ("import tests.conftest", "tests.conftest"),
        ("from .test_claims import claim", "tests.booking.test_claims"),
        ("from ..conftest import PASSWORD", "tests.conftest"),
        ("from ..matching import test_matching", "tests.matching.test_matching"),
        ("def f():\n    from tests.conftest import login\n", "tests.conftest"),
    ],
)
def test_the_check_sees_every_way_of_importing_one(source: str, offending: str) -> None:
    found = imported_modules(source, "tests.booking.test_somewhere")
    assert offending in found
    assert any(is_test_module_or_conftest(name) for name in found)


def test_support_modules_and_other_packages_pass() -> None:
    found = imported_modules(
        "from tests.support.factories import make_user\nimport pytest\nfrom . import support",
        "tests.test_somewhere",
    )
    assert not any(is_test_module_or_conftest(name) for name in found)
