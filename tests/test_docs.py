"""Every Python example in the README runs as written (from the repository root, on the shipped data)."""

import re

import pytest

from tests.conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip()
