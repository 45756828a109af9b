"""The layers hold: HTTP rooms -> services -> models, with no import cycle between domain packages.

Each domain package (`marketplace/<package>/`) has HTTP rooms (blueprints, their schemas and
forms, how they present things, the login wiring) and a domain layer (models and services). The
HTTP rooms sit above every domain and may import any package's services; the domain layer must
form layers of its own:

- no import cycle between domain packages, counting every import of their domain modules (a
  cycle means neither package can be understood, tested or changed without the other);
- no domain module imports an HTTP room, or Flask (services take a session and plain values;
  the one exception renders the application's Jinja templates for outgoing messages).
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "marketplace"
HTTP_ROOMS = {
    "api.py",
    "pages.py",
    "schemas.py",
    "forms.py",
    "presenters.py",
    "auth.py",
    "evidence_download.py",
}
WEB_FRAMEWORKS = ("flask", "flask_login", "flask_smorest", "flask_wtf", "flask_limiter", "werkzeug")
# Renders the application's templates of outgoing messages (it runs in the worker's app context).
MAY_USE_FLASK = {"marketplace/messages/compose.py"}

Edge = tuple[str, str]  # (importing module, imported module), as paths without ".py"


def is_http_room(path: Path) -> bool:
    return path.name in HTTP_ROOMS or path.name.endswith("_api.py")


def domain_packages() -> list[str]:
    return sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())


def domain_modules() -> Iterator[Path]:
    for package in domain_packages():
        for path in sorted((PACKAGE / package).glob("*.py")):
            if not is_http_room(path):
                yield path


def imported_names(path: Path) -> Iterator[str]:
    """Every module the file imports, anywhere in it (a lazy import is still a dependency)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_of(name: str) -> Path | None:
    """The file of an imported `marketplace...` name, if it is a module of ours."""
    parts = name.split(".")
    if parts[0] != "marketplace":
        return None
    path = PACKAGE.parent.joinpath(*parts)
    if path.with_suffix(".py").exists():
        return path.with_suffix(".py")
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return None


def package_of(path: Path) -> str | None:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else None


def name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent).with_suffix(""))


def package_edges() -> dict[str, dict[str, list[Edge]]]:
    """Between domain packages: package -> imported package -> the module imports behind it."""
    edges: dict[str, dict[str, list[Edge]]] = defaultdict(lambda: defaultdict(list))
    for path in domain_modules():
        source = package_of(path)
        for imported in imported_names(path):
            target_path = module_of(imported)
            if target_path is None:
                continue
            target = package_of(target_path)
            if target is not None and target != source:
                assert source is not None
                edges[source][target].append((name(path), name(target_path)))
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a path that ends where it starts, or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for successor in sorted(graph.get(node, ())):
            if cycle := visit(successor):
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if cycle := visit(node):
            return cycle
    return None


def test_no_import_cycle_between_domain_packages() -> None:
    edges = package_edges()
    cycle = find_cycle({source: set(targets) for source, targets in edges.items()})
    if cycle:
        steps = [
            f"{a} -> {b}: " + ", ".join(sorted({f"{m} imports {n}" for m, n in edges[a][b]}))
            for a, b in itertools.pairwise(cycle)
        ]
        raise AssertionError("import cycle between domain packages:\n" + "\n".join(steps))


def test_domain_modules_import_neither_http_rooms_nor_flask() -> None:
    found = []
    for path in domain_modules():
        for imported in imported_names(path):
            target = module_of(imported)
            if target is not None and is_http_room(target):
                found.append(f"{name(path)} imports the HTTP room {name(target)}")
            framework = imported.split(".")[0] in WEB_FRAMEWORKS
            if framework and name(path) + ".py" not in MAY_USE_FLASK:
                found.append(f"{name(path)} imports {imported}")
    assert found == []


def test_the_check_finds_a_cycle() -> None:
    """The cycle finder itself, on a graph with one."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None
