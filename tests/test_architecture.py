"""The import direction docs/ARCHITECTURE.md states: a stage imports only the stages below it, never one above, not
even inside a function (issue 32).

The stages, bottom to top, are :data:`STAGES`. :data:`KNOWN_UPWARD_IMPORTS` lists the upward imports allowed, each
with its reason (none today); the test fails on any other (a new one) and on a listed one that is gone (so that the
list only shrinks). Imports under ``if TYPE_CHECKING:`` are not dependencies and are skipped. Imports written as
strings count as well: ``importlib.import_module("...")`` calls and the name -> module tables a package hands to
:func:`ser_hf.lazy_exports.lazy_exports` (``ser_hf/__init__.py``'s ``_EXPORTS``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ser_hf"

#: ser-hf's stages, bottom to top: the top-level modules or folders of ``ser_hf/`` in each.
STAGES: list[tuple[str, frozenset[str]]] = [
    # Shared vocabulary every stage may read: the emotion list, atomic writes, lazy exports, optional extras, the Hub
    # requests' time-outs and network errors; the error types every stage raises (errors) and the typed records of a
    # run folder's JSON files (run_record, which the recipe writes run_config.json as and every reader of a run reads);
    # whether a model name is a missing local folder (model_location: the models' loader and the commands, which ask
    # it before importing torch); the metric table (metric_table), whose rows the run record keeps as fields.
    (
        "base",
        frozenset(
            {
                "__version__",
                "emotions",
                "atomic_files",
                "errors",
                "lazy_exports",
                "extras",
                "hub_timeouts",
                "model_location",
                "metric_table",
                "run_record",
            }
        ),
    ),
    ("data", frozenset({"data"})),
    ("models", frozenset({"models"})),
    ("inputs", frozenset({"inputs"})),
    ("recipe", frozenset({"recipe"})),
    # The run folder's layout, names and lock (RunDir), which training writes and evaluation, hub and experiments read.
    ("run folder", frozenset({"run_folder"})),
    ("evaluation", frozenset({"evaluation"})),
    ("hub", frozenset({"hub"})),
    ("training", frozenset({"training"})),
    # Using a trained model (ser_hf/deploy/).
    ("deploy", frozenset({"deploy"})),
    # Adapting a trained model to a user's recordings (ser_hf/adaptation/): it trains (training) and classifies the
    # unlabelled recordings (deploy), and the experiments' learning curve runs it.
    ("adaptation", frozenset({"adaptation"})),
    ("experiments", frozenset({"experiments"})),
    # The commands, and a Space's app.py (space_app), which prints errors as the commands do.
    ("entry points", frozenset({"train", "cli", "space_app"})),
]

#: Upward imports the code still has, each with its reason: (importing module, imported stage). None is left; an
#: exception added here must say why the shared thing cannot move down a stage.
KNOWN_UPWARD_IMPORTS: set[tuple[str, str]] = set()


def stage_of(module: str) -> str | None:
    """The stage of ``ser_hf.X...`` (None for the package itself)."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    for name, members in STAGES:
        if parts[1] in members:
            return name
    raise AssertionError(f"{module} is in no stage of tests/test_architecture.py's STAGES: add it to one.")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for child in ast.walk(node)}
    return skipped


def _resolve(name: str, package: str) -> str:
    """``name`` (``ser_hf.data``, or relative to ``package`` as ``importlib.import_module(name, package)`` reads it:
    ``.data`` in ``ser_hf`` is ``ser_hf.data``)."""
    if not name.startswith("."):
        return name
    level = len(name) - len(name.lstrip("."))
    base = package.split(".")[: len(package.split(".")) - level + 1]
    return ".".join(base + ([name[level:]] if name[level:] else []))


def _string(node: ast.AST | None, module: str, package: str) -> str | None:
    """The string ``node`` is: a constant, or ``__name__`` / ``__package__`` (the module's own name, its package)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return {"__name__": module, "__package__": package}.get(node.id)
    return None


def _call_name(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")


def string_imports(tree: ast.AST, module: str, package: str, skipped: set[int] = frozenset()) -> set[str]:
    """The ser-hf modules ``tree`` (the module ``module``, in ``package``) imports by a string: the first argument of
    ``importlib.import_module(name[, package])``, and each module of a lazy-export table, ``lazy_exports(__name__,
    TABLE)`` with ``TABLE`` a dict of name -> module (``".data.corpora"``) written at module level or in the call."""
    tables = {
        target.id: node.value
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    names = []  # (the module's name as written, the package it is relative to)
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.Call) or not node.args:
            continue
        if _call_name(node) == "import_module":
            name = _string(node.args[0], module, package)
            anchor = node.args[1] if len(node.args) > 1 else None
            anchor = next((k.value for k in node.keywords if k.arg == "package"), anchor)
            names.append((name, _string(anchor, module, package) or package))
        elif _call_name(node) == "lazy_exports" and len(node.args) > 1:
            # lazy_exports(package, table) imports each module relative to `package` (the package's __name__).
            anchor = _string(node.args[0], module, package)
            table = tables.get(node.args[1].id) if isinstance(node.args[1], ast.Name) else node.args[1]
            if anchor is None or not isinstance(table, ast.Dict):
                raise AssertionError(f"{module}: a lazy_exports call this test cannot read: {ast.unparse(node)}")
            for value in table.values:
                name = _string(value, module, package)
                if name is None:
                    raise AssertionError(f"{module}: a lazy export this test cannot read: {ast.unparse(value)}")
                names.append((name, anchor))
    targets = {_resolve(name, anchor) for name, anchor in names if name is not None}
    return {target for target in targets if target.startswith("ser_hf")}


def imported_modules(path: Path) -> set[str]:
    """Every ser-hf module ``path`` imports, at module level or inside functions (``TYPE_CHECKING`` blocks aside),
    also by a string (:func:`string_imports`)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    skipped = _type_checking_blocks(tree)
    found = string_imports(tree, module, package, skipped)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("ser_hf")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("ser_hf"):
                continue
            for alias in node.names:
                # `from .. import train` imports the module ser_hf.train; `from ..data import X` the package.
                found.add(f"{target}.{alias.name}" if _is_module(f"{target}.{alias.name}") else target)
    return found


def upward_imports() -> set[tuple[str, str]]:
    """(importing module, imported stage) for every import of a stage above the importing module's own."""
    order = {name: index for index, (name, _) in enumerate(STAGES)}
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        own = stage_of(module)
        if own is None:
            continue
        for target in imported_modules(path):
            if target.split(".")[1:2] == ["__version__"]:
                continue
            imported = stage_of(target)
            if imported is not None and order[imported] > order[own]:
                found.add((module, imported))
    return found


def test_no_stage_imports_a_stage_above_it_beyond_the_known_ones():
    found = upward_imports()
    new = sorted(found - KNOWN_UPWARD_IMPORTS)
    assert not new, (
        f"Upward imports (module, stage it imports) that docs/ARCHITECTURE.md's direction forbids: {new}. Move the "
        "shared thing down a stage, or the caller up."
    )
    gone = sorted(KNOWN_UPWARD_IMPORTS - found)
    assert not gone, f"These upward imports are gone: remove them from KNOWN_UPWARD_IMPORTS: {gone}."


def test_the_checker_sees_imports_inside_functions_and_skips_type_checking(tmp_path):
    """The rule counts an import inside a function (a dependency all the same) but not a TYPE_CHECKING one."""
    # `from ..deploy.predict import predict_files` inside predict_command
    assert "ser_hf.deploy.predict" in imported_modules(PACKAGE / "cli" / "predict.py")
    source = (PACKAGE / "inputs" / "speaker_normalization.py").read_text()
    assert "from ..models" in source and ("ser_hf.inputs.speaker_normalization", "models") not in upward_imports()
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..cli import main\n")
    assert _type_checking_blocks(tree)


def test_the_checker_sees_imports_written_as_strings():
    """An ``importlib.import_module("...")`` call and a package's lazy-export table (name -> module, as strings) are
    imports all the same: upward ones and cycles through them count."""
    lazy = imported_modules(PACKAGE / "__init__.py")
    assert {"ser_hf.data.audit", "ser_hf.models", "ser_hf.evaluation.metrics"} <= lazy
    assert "ser_hf.deploy.classify" in imported_modules(PACKAGE / "deploy" / "__init__.py")
    source = (
        "import importlib\n"
        "from importlib import import_module\n"
        "from ..lazy_exports import lazy_exports\n"
        "from typing import TYPE_CHECKING\n"
        "TABLE = {'thing': '.corpora'}\n"
        "__getattr__, __dir__ = lazy_exports(__name__, TABLE)\n"
        "def f(name):\n"
        "    importlib.import_module('ser_hf.deploy.classify')\n"
        "    import_module('..hub.card', __package__)\n"
        "    importlib.import_module('.splits', package='ser_hf.data')\n"
        "    importlib.import_module(name)  # not a constant: unknown, not counted\n"
        "    importlib.import_module('numpy')\n"
        "if TYPE_CHECKING:\n"
        "    importlib.import_module('ser_hf.cli')\n"
    )
    tree = ast.parse(source)
    assert string_imports(tree, "ser_hf.data", "ser_hf.data", _type_checking_blocks(tree)) == {
        "ser_hf.data.corpora",
        "ser_hf.deploy.classify",
        "ser_hf.hub.card",
        "ser_hf.data.splits",
    }


def test_architecture_md_states_the_stages_this_test_checks():
    """docs/ARCHITECTURE.md's table lists the stages bottom to top as STAGES does, each with every top-level module
    or folder STAGES puts in it."""
    text = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text()
    rows = [line.split(" | ")[:2] for line in text.splitlines() if line.startswith("| ") and " | `" in line]
    assert [row[0].lstrip("| ") for row in rows] == [name for name, _ in STAGES]
    for (name, members), (_, listed) in zip(STAGES, rows):
        named = {part.strip("`").rstrip("/").removesuffix(".py") for part in listed.split(", ")}
        assert members - {"__version__"} <= named, (name, members - named)


def stage_imports() -> dict[str, set[str]]:
    """Stage -> the other stages its modules import (inside functions and by strings too, ``TYPE_CHECKING`` aside)."""
    found: dict[str, set[str]] = {name: set() for name, _ in STAGES}
    for path in sorted(PACKAGE.rglob("*.py")):
        own = stage_of(_module_name(path))
        for target in imported_modules(path) if own is not None else ():
            imported = None if target.split(".")[1:2] == ["__version__"] else stage_of(target)
            if imported not in (None, own):
                found[own].add(imported)
    return found


def drawn_rows(drawing: str) -> list[list[str]]:
    """The stage names on each line of the drawing that names one, top to bottom (``deploy`` counts, ``deploy/``, a
    folder's name beside it, does not)."""
    names = sorted((name for name, _ in STAGES), key=len, reverse=True)
    pattern = re.compile("|".join(rf"(?<![\w/]){re.escape(name)}(?![\w/.])" for name in names))
    rows = [pattern.findall(line) for line in drawing.splitlines()]
    return [row for row in rows if row]


def test_architecture_md_draws_the_stage_graph_the_code_has_and_its_cells_are_short():
    """The page's first picture draws each stage once, above every stage it imports and never beside or below one
    (deploy beside training: neither imports the other); its imports table lists exactly the stages each one imports;
    no table cell runs on."""
    text = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text()
    imports = stage_imports()
    rows = drawn_rows(text.split("```text\n", 1)[1].split("```", 1)[0])
    drawn = [name for row in rows for name in row]
    assert sorted(drawn) == sorted(name for name, _ in STAGES), drawn
    level = {name: index for index, row in enumerate(rows) for name in row}  # 0 is the top row
    wrong = {(stage, other) for stage, others in imports.items() for other in others if level[other] <= level[stage]}
    assert not wrong, f"docs/ARCHITECTURE.md draws these (stage, stage it imports) beside or above each other: {wrong}"
    table = text.split("| stage | imports |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    listed = {
        stage: set() if cell == "nothing of ser-hf" else set(cell.split(", "))
        for stage, cell in (line.strip("| ").split(" | ") for line in table.splitlines())
    }
    order = [name for name, _ in STAGES]
    rows_now = [
        f"| {stage} | {', '.join(sorted(imports[stage], key=order.index)) or 'nothing of ser-hf'} |"
        for stage in order
        if listed.get(stage) != imports[stage]
    ]
    assert not rows_now, (
        "docs/ARCHITECTURE.md's imports table differs from the code; the rows now read:\n" + "\n".join(rows_now)
    )
    cells = [cell.strip() for line in text.splitlines() if line.startswith("| ") for cell in line.split(" | ")]
    assert max(len(cell) for cell in cells) <= 200, max(cells, key=len)


#: A path of the repository written in a page: ``ser_hf/data/corpora/<name>.py`` (``<...>`` a placeholder).
REPOSITORY_PATH = re.compile(r"(?<![\w./-])(?:ser_hf|tests|docs|recipes|bench|hub_cards)/[\w./<>-]*")


def test_every_path_and_test_architecture_md_names_exists():
    """Each file or folder the page names (``ser_hf/...``, ``tests/...``, ``docs/...``, ``recipes/...``, ``bench/...``;
    one with a placeholder, ``tests/cli/test_<command>.py``, matches a file at least) exists, and so does each test
    function it names: a "where to add" entry that names a file or a test since renamed is a wrong instruction."""
    repo = PACKAGE.parent
    text = (repo / "docs" / "ARCHITECTURE.md").read_text()
    paths = {match.rstrip(".") for match in REPOSITORY_PATH.findall(text)}
    assert {"ser_hf/data/corpora/<name>.py", "tests/test_where_to_add.py", "docs/guides/models.md"} <= paths
    missing = sorted(path for path in paths if not list(repo.glob(re.sub(r"<[^>]+>", "*", path).rstrip("/"))))
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"
    tests = set(re.findall(r"`(test_\w+)`", text))
    assert "test_corpus_names_are_derived_from_the_one_module_list" in tests
    defined = {
        node.name
        for path in (repo / "tests").rglob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
    }
    assert tests <= defined, f"docs/ARCHITECTURE.md names tests that do not exist: {sorted(tests - defined)}"


def import_cycles() -> list[list[str]]:
    """Cycles of the import graph between ser-hf modules (imports inside functions included, ``TYPE_CHECKING`` ones
    and a module's import of its own package aside): each one strongly connected set of modules, sorted."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        graph[module] = {t for t in imported_modules(path) if t != module and not module.startswith(f"{t}.")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_one_that_imports_it_back():
    """No import cycle, not even through an import inside a function (issue 32's target): a module that needs a piece
    of another that builds on it means the piece belongs lower down."""
    assert import_cycles() == []


def test_model_definitions_import_only_each_other():
    """``ser_hf/models/*.py`` are the files a saved model carries (copied next to its weights and imported there
    without ser-hf): they import each other and nothing else of ser-hf, never ``ser_hf.models.runtime`` (the registry,
    builders and loader, which do not travel)."""
    models = PACKAGE / "models"
    definitions = {f"ser_hf.models.{path.stem}" for path in models.glob("*.py") if path.stem != "__init__"}
    assert {"ser_hf.models.modeling_whisper", "ser_hf.models.feature_extraction_opensmile"} <= definitions
    assert (models / "runtime" / "loading.py").is_file() and not (models / "loading.py").exists()
    strays = {
        (module, target)
        for module in sorted(definitions)
        for target in imported_modules(models / f"{module.rsplit('.', 1)[1]}.py")
        if target not in definitions
    }
    assert not strays, f"Model definitions importing what a saved model does not carry: {sorted(strays)}"


#: The most lines a module of ser-hf may hold (issue 77): past it, a module holds several things a reader looks for
#: apart, and is split along the lines its code already has (the recipe's sections, the training stages).
MAX_MODULE_LINES = 800


def test_no_module_is_over_800_lines():
    """Every module of ``ser_hf/`` keeps under :data:`MAX_MODULE_LINES` lines: a reader finds a stage or a recipe
    section by its module's name, not by scrolling through a 1,300-line file."""
    sizes = {path.relative_to(PACKAGE.parent): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert sizes[Path("ser_hf/training/train_stage.py")] > 100  # the package was read
    long = {str(path): lines for path, lines in sorted(sizes.items()) if lines > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them along their sections): {long}"
