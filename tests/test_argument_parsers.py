"""Every argparse parser of the repository (the bench scripts, the docs' and cards' scripts; ``ser-hf``'s own are
tested by running them in tests/cli/test_cli.py) takes flags as spelt: ``allow_abbrev=False``, so that a prefix such
as ``--epoch`` is an error rather than silently ``--epochs``."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO

SCRIPTS = sorted(
    path.relative_to(REPO).as_posix()
    for folder in ("bench", "docs", "hub_cards", "scripts", "ser_hf")
    for path in (REPO / folder).rglob("*.py")
    if "argparse" in path.read_text(encoding="utf-8")
)


def argument_parser_calls(source: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("argparse.ArgumentParser", "ArgumentParser")
    ]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_argument_parser_takes_flags_as_spelt(script):
    for call in argument_parser_calls((REPO / script).read_text(encoding="utf-8")):
        keywords = {keyword.arg: keyword.value for keyword in call.keywords}
        assert "allow_abbrev" in keywords and ast.literal_eval(keywords["allow_abbrev"]) is False, (
            f"{script}:{call.lineno}: argparse.ArgumentParser(...) without allow_abbrev=False"
        )


def test_a_bench_script_refuses_a_prefix_of_its_flag(capsys):
    """The speed benchmarks' shared parser (bench/harness.py), run: `--dry` is not taken for a longer flag."""
    from bench.harness import speed_parser

    parser = speed_parser("x", quick="x", smoke="x")
    parser.add_argument("--dry-run", action="store_true")
    with pytest.raises(SystemExit):
        parser.parse_args(["--dry"])
    assert "unrecognized arguments: --dry" in capsys.readouterr().err
