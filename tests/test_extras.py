"""Install hints name extras that exist, in a form that works both from a package index and from a clone."""

import re
import tomllib

from ser_hf.extras import install_hint
from tests.conftest import REPO

EXTRAS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def test_install_hint_gives_both_forms():
    assert install_hint("onnx") == "pip install 'ser-hf[onnx]' (from a clone of ser-hf: pip install -e '.[onnx]')"


def test_every_hint_names_an_extra_and_the_clone_form():
    sources = [*(REPO / "ser_hf").rglob("*.py"), *(REPO / "docs").rglob("*.md"), REPO / "README.md"]
    hints = 0
    for path in sources:
        text = path.read_text()
        for extra in re.findall(r"install_hint\(['\"](\w+)['\"]\)", text):
            assert extra in EXTRAS, f"{path}: no extra {extra!r}"
            hints += 1
        for match in re.finditer(r"pip install '?ser-hf\[(\w+)\]'?", text):
            extra = match[1]
            assert extra in EXTRAS, f"{path}: no extra {extra!r}"
            # The published form is followed (within the sentence) by the form that works from a clone today.
            following = text[match.end() : match.end() + 200]
            assert f"-e '.[{extra}]'" in following or f'-e ".[{extra}]"' in following, f"{path}: {match[0]}"
            hints += 1
    assert hints >= 6
