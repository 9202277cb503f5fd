"""The layout stays readable: modules of about 400 lines at most, no import cycles between library modules,
and every ``python -m`` module named in the Makefile and the docs exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("jepa_core", "vljepa", "llm_jepa", "eval")
MAX_LINES = 420  # "about 400": a little slack so that a small fix does not force a split


def library_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_modules(path: Path, name: str, known: set[str], *, lazy: bool) -> set[str]:
    """Library modules that ``path`` imports: at module level only, or (``lazy``) anywhere, including
    imports inside functions. ``if TYPE_CHECKING:`` blocks are skipped."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def nodes(body):
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node
            elif lazy or isinstance(node, (ast.If, ast.Try, ast.With)):
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        yield from nodes([child])

    found = set()
    for node in nodes(tree.body):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        found.update(target for target in targets if target in known and target != name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_is_much_over_400_lines():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in library_modules().values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"split these modules into named parts: {too_long}"


@pytest.mark.parametrize("lazy", [False, True], ids=["module-level", "with-lazy-imports"])
def test_no_import_cycles_between_library_modules(lazy):
    modules = library_modules()
    known = set(modules)
    graph = {name: imported_modules(path, name, known, lazy=lazy) for name, path in modules.items()}
    assert graph["vljepa.modeling"] and graph["vljepa.cli"]  # the scan sees imports at all
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_python_dash_m_module_in_the_makefile_and_docs_exists():
    named = set()
    for doc in ("Makefile", "README.md", "BENCHMARKS.md", "ARCHITECTURE.md"):
        named.update(re.findall(r"-m ([a-z_]\w*(?:\.[a-z_]\w*)*)(?![\w.])", (ROOT / doc).read_text(encoding="utf-8")))
    named = {name for name in named if name.split(".")[0] in (*PACKAGES, "bench")}
    assert named, "no `python -m` module found in the docs"
    missing = [
        name for name in sorted(named)
        if not (ROOT / Path(*name.split("."))).with_suffix(".py").is_file()
        and not (ROOT / Path(*name.split(".")) / "__main__.py").is_file()
    ]
    assert not missing, f"`python -m` names modules that do not exist: {missing}"
