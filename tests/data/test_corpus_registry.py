"""The corpus registry, NAMED_CORPORA in ser_hf/data/constants.py, and what each of its entries needs (issue 66, point
2). Adding a corpus is four things: its module in ser_hf/data/corpora/ (a ``SPEC`` named as the module and a
``parse(path) -> Clip``), one registry entry, a test under tests/data/ that loads it, and its row in
docs/guides/corpora.md. Everything else (specs, loaders, the CLI's and the recipe's lists of names, the checks of a
corpus folder before heavy imports, the missing-folder hint) derives from the registry, and a list of corpora written
by hand in ser_hf/ fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ser_hf.data.constants import CORPUS_NAMES, NAMED_CORPORA
from ser_hf.data.corpora.named import CORPORA, CORPUS_MODULES, LOADERS, corpus_module, read_file_names
from ser_hf.data.corpora.spec import parse_clip
from tests.conftest import REPO

PACKAGE = REPO / "ser_hf"
CORPORA_FOLDER = PACKAGE / "data" / "corpora"
GUIDE = REPO / "docs" / "guides" / "corpora.md"


def _defines_spec(path: Path) -> bool:
    """Whether a module assigns ``SPEC`` at its top level: what makes it a corpus module."""
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(target, ast.Name) and target.id == "SPEC" for target in node.targets)
        for node in ast.parse(path.read_text()).body
    )


def _guide_row(name: str) -> str:
    rows = [line for line in GUIDE.read_text().splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"docs/guides/corpora.md needs one table row for the corpus {name}, starting | `{name}` |"
    return rows[0]


def test_corpus_names_are_derived_from_the_one_module_list():
    modules = {path.stem for path in CORPORA_FOLDER.glob("*.py") if _defines_spec(path)}
    assert modules == set(NAMED_CORPORA), "add the corpus module's name to NAMED_CORPORA (ser_hf/data/constants.py)"
    assert [module.__name__.rsplit(".", 1)[1] for module in CORPUS_MODULES] == list(NAMED_CORPORA)
    assert list(CORPORA) == list(NAMED_CORPORA), "a corpus' SPEC.name is its module's name"
    assert CORPUS_NAMES == (*NAMED_CORPORA, "folder")
    assert list(LOADERS) == list(CORPUS_NAMES)
    _guide_row("folder")


@pytest.mark.parametrize("name", NAMED_CORPORA)
def test_each_registered_corpus_has_what_its_readers_need(name, tmp_path):
    module = corpus_module(name)
    spec = module.SPEC
    assert callable(module.parse), f"ser_hf/data/corpora/{name}.py needs parse(path) -> Clip"
    # Its example file (which errors and the guide show) is one the parser reads, with an emotion code it knows.
    assert spec.example_file, f"{name}: SPEC.example_file, a file as the corpus publishes it"
    clip = parse_clip(spec, module.parse, Path(spec.example_file))
    # The checks before heavy imports read a folder's names through the same parser.
    for file_name in (spec.example_file, "not_a_clip.wav"):
        (tmp_path / file_name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file_name).write_bytes(b"")
    read = read_file_names(name, tmp_path)
    assert (read.files, read.speakers, len(read.invalid)) == (2, {clip.speaker_id}, 1)
    # Its row in the guide shows the layout (the example file) and every metadata column its Dataset has.
    row = _guide_row(name)
    assert f"`{spec.example_file}`" in row, f"docs/guides/corpora.md's row of {name} should show {spec.example_file}"
    missing = [column for column in spec.metadata if f"`{column}`" not in row]
    assert not missing, f"docs/guides/corpora.md's row of {name} lacks its metadata column(s) {missing}"
    # A test loads it.
    loads = re.compile(rf"load_corpus\(\s*[\"']{name}[\"']")
    assert any(loads.search(path.read_text()) for path in (REPO / "tests" / "data").rglob("test_*.py")), (
        f"no test under tests/data/ loads the corpus {name} (load_corpus({name!r}, ...) on files under its names)"
    )


def test_no_list_of_the_corpora_is_written_by_hand_in_the_package():
    """A line naming three named corpora or more is a list kept beside the registry (the load_corpus docstring once
    was one): derive it from NAMED_CORPORA, or point to it."""
    names = re.compile(rf"\b({'|'.join(NAMED_CORPORA)})\b", re.IGNORECASE)
    registry = PACKAGE / "data" / "constants.py"
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if len({match.lower() for match in names.findall(line)}) >= 3
        and not (path == registry and line.startswith("NAMED_CORPORA"))
    ]
    assert not found, f"corpora listed by hand (derive them from NAMED_CORPORA): {found}"
