"""Reliability across the package: every file ser-hf writes goes through a temporary name (so no output is left
half written), atomic outputs keep a plain file's mode, and ser-hf never turns on remote code by itself. The
stage-by-stage cases are in each stage's test_reliability.py; the troubleshooting guide
(docs/guides/troubleshooting.md, "When things go wrong") lists them."""

from __future__ import annotations

import ast
import stat

import pytest

from ser_hf.atomic_files import atomic_directory, atomic_path, write_text_atomic
from tests.conftest import REPO

pytestmark = pytest.mark.reliability


def test_atomic_writes_leave_the_previous_file_when_writing_fails(tmp_path):
    path = tmp_path / "metrics.json"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as partial:
            partial.write_text("half")
            raise RuntimeError("killed while writing")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "model") as staging:
            (staging / "model.safetensors").write_bytes(b"half")
            raise RuntimeError("killed while exporting")
    assert not any((tmp_path / "model").iterdir())


def test_atomic_outputs_get_the_mode_a_plain_write_would(tmp_path):
    """Temporary files are created readable by their owner only: what is renamed into place must not stay so."""
    (tmp_path / "plain.txt").write_text("x")
    write_text_atomic(tmp_path / "report.md", "x")
    with atomic_directory(tmp_path / "model") as staging:
        (staging / "config.json").write_text("{}")
        (staging / "sub").mkdir()
        (staging / "sub" / "weights.bin").write_bytes(b"x")
    plain = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert plain & 0o044  # the group and others read a plain file under any usual umask; mkstemp's file they do not
    model = tmp_path / "model"
    for path in (tmp_path / "report.md", model / "config.json", model / "sub" / "weights.bin"):
        assert stat.S_IMODE(path.stat().st_mode) == plain, path


# Calls that write a file: methods, and json.dump / open(..., "w").
FILE_WRITERS = {
    "write_text",
    "write_bytes",
    "savefig",
    "to_csv",
    "to_parquet",
    "save_to_disk",
    "save_pretrained",
    "save",
}


def _writes_a_file(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name == "open":
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        return isinstance(mode, ast.Constant) and any(flag in mode.value for flag in "wax+")
    if name == "dump":
        return isinstance(func, ast.Attribute) and getattr(func.value, "id", None) == "json"
    return isinstance(func, ast.Attribute) and name in FILE_WRITERS


def test_ser_hf_writes_its_output_files_through_a_temporary_name():
    """Every call in the package that writes a file sits in a ``with atomic_path(...)`` or ``with
    atomic_directory(...)`` block (or is write_text_atomic), so no report, plot, card or dataset is left half
    written."""
    direct = []
    for path in sorted((REPO / "ser_hf").rglob("*.py")):
        if path.name == "atomic_files.py":
            continue
        tree = ast.parse(path.read_text())
        guarded = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call)
                and getattr(item.context_expr.func, "id", None) in ("atomic_path", "atomic_directory")
                for item in node.items
            ):
                guarded.update(id(inner) for statement in node.body for inner in ast.walk(statement))
        direct += [
            f"{path.relative_to(REPO)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and id(node) not in guarded and _writes_a_file(node)
        ]
    # ser-hf predict's --output file (ser_hf/deploy/writers.py) is changed on its own.
    assert [where for where in direct if not where.startswith("ser_hf/deploy/writers.py:")] == []


def test_ser_hf_never_turns_on_remote_code_itself():
    """No call in the package passes trust_remote_code=True: it is only ever the user's own option."""
    import ast

    turned_on = []
    for path in (REPO / "ser_hf").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                turned_on += [
                    f"{path.name}:{node.lineno}"
                    for keyword in node.keywords
                    if keyword.arg == "trust_remote_code"
                    and isinstance(keyword.value, ast.Constant)
                    and keyword.value.value is True
                ]
    assert turned_on == []
