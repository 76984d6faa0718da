"""No import loop between ser-hf's modules, counting every import a module can run: at module level, inside a
function, or by a string (``importlib.import_module("...")`` and the name -> module tables of
:func:`ser_hf.lazy_exports.lazy_exports`) (issue 66).

A second, independent reader of the imports beside ``tests/test_architecture.py``, which skips a module's import of
its own package (``ser_hf.models.runtime.loading`` importing ``ser_hf.models``) and so missed the loop
``runtime.loading -> ser_hf.models -> runtime.ensemble -> runtime.loading``. Here an import of a package is an edge to
its ``__init__`` whatever the importer, because that ``__init__`` runs the imports it holds. What is not an edge:

- the parent packages Python initialises before a module (``import ser_hf.models.runtime.registry`` runs
  ``ser_hf/models/__init__.py`` first): every package's ``__init__`` that imports its own submodules would otherwise
  be a loop, and no code can avoid one;
- imports under ``if TYPE_CHECKING:``: they never run, so they cannot make a module import one that is half-imported;
  they exist so that an annotation can name a class of a module that imports this one. The direction of those
  dependencies is test_architecture's rule (stages), not a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.test_architecture import _type_checking_blocks, string_imports

PACKAGE = Path(__file__).resolve().parent.parent / "ser_hf"


def module_name(path: Path) -> str:
    """``ser_hf/models/runtime/loading.py`` -> ``ser_hf.models.runtime.loading``; a package is its ``__init__``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of ser-hf: name -> file."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str, level: int, package: str) -> str:
    """The absolute name of ``from <level dots><name> import ...`` in a module of ``package``."""
    if not level:
        return name
    base = package.split(".")[: len(package.split(".")) - level + 1]
    return ".".join(base + ([name] if name else []))


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The ser-hf modules (names in ``known``) that the module at ``path`` imports: ``import a.b`` and ``from a
    import b`` (``a.b`` when it is a module, else ``a``'s ``__init__``), wherever they are written (``TYPE_CHECKING``
    blocks aside), and the modules it imports by a string."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_blocks(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = resolve(node.module or "", node.level, package)
            found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names}
    found |= string_imports(tree, module, package, skipped)  # importlib.import_module, lazy-export tables
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    """Module -> the ser-hf modules it imports (itself aside)."""
    files = modules()
    return {module: imports_of(path, set(files)) - {module} for module, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One loop of each strongly connected set of modules (Tarjan), as the modules in import order, the first again
    at the end: ``[a, b, a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set(stack[stack.index(module) :])
            del stack[stack.index(module) :]
            if len(component) > 1:
                components.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_loop_in(component, graph) for component in components]


def _loop_in(component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest loop through the first module (by name) of a strongly connected ``component``."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for target in sorted(graph[module] & component):
            if target == start:
                return paths[module] + [start]
            if target not in paths:
                paths[target] = paths[module] + [target]
                queue.append(target)
    raise AssertionError(f"no loop through {start} in {sorted(component)}")


def test_no_module_imports_itself_back_even_through_a_function_or_a_package_face():
    found = cycles(import_graph())
    assert not found, "Import loops between ser-hf modules (imports inside functions count):\n" + "\n".join(
        " -> ".join(loop) for loop in found
    )


SAMPLE = {
    "ser_hf/__init__.py": "from .lazy_exports import lazy_exports\n"
    "TABLE = {'thing': '.pkg.low'}\n"
    "__getattr__, __dir__ = lazy_exports(__name__, TABLE)\n",
    "ser_hf/lazy_exports.py": "",
    "ser_hf/pkg/__init__.py": "from .high import thing\n",
    "ser_hf/pkg/low.py": "def f():\n    import ser_hf.pkg\n",
    "ser_hf/pkg/high.py": "from typing import TYPE_CHECKING\nfrom . import low\nif TYPE_CHECKING:\n"
    "    from ..other import Type\n",
    "ser_hf/other.py": "import importlib\ndef g():\n    importlib.import_module('.pkg.high', 'ser_hf')\n",
}


@pytest.fixture
def sample_package(tmp_path, monkeypatch):
    for name, text in SAMPLE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path / "ser_hf")


def test_the_checker_counts_imports_in_functions_of_a_package_face_and_by_string_not_type_checking(sample_package):
    """What the check reads, on a package written for it: a function's ``import ser_hf.pkg`` (its own package's face)
    is an edge to that ``__init__``, so the loop pkg -> high -> low -> pkg is found; ``importlib.import_module`` and a
    lazy table are edges; a ``TYPE_CHECKING`` import is not."""
    graph = import_graph()
    assert graph == {
        "ser_hf": {"ser_hf.lazy_exports", "ser_hf.pkg.low"},
        "ser_hf.lazy_exports": set(),
        "ser_hf.other": {"ser_hf.pkg.high"},
        "ser_hf.pkg": {"ser_hf.pkg.high"},
        "ser_hf.pkg.high": {"ser_hf.pkg.low"},
        "ser_hf.pkg.low": {"ser_hf.pkg"},
    }
    assert cycles(graph) == [["ser_hf.pkg", "ser_hf.pkg.high", "ser_hf.pkg.low", "ser_hf.pkg"]]
