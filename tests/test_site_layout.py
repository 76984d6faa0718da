"""The documentation site as a reader sees it (issue 42, item 6): the benchmarks page opens on its headline sections
with the rest folded, the API reference shows types rather than docstring markup, code in tables breaks only between
words, and no page scrolls sideways at 1280 px in headless Chromium (docs/check_layout.py)."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest

from tests.conftest import REPO


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


hooks = load("mkdocs_hooks")
check_layout = load("check_layout")


def test_benchmarks_page_opens_on_the_headline_sections_and_folds_the_rest():
    text = (REPO / "BENCHMARKS.md").read_text()
    folded = hooks.fold_sections(text, hooks.OPEN_SECTIONS)
    intro, *sections = hooks.split_sections(folded)
    titles = [section[0][3:] for section in sections]
    # Every heading is still a heading, in order: the anchors other pages link to stay.
    assert [line for line in folded.split("\n") if line.startswith("## ")] == [
        section[0] for section in hooks.split_sections(text)[1:]
    ]
    open_ones = [
        title for title, section in zip(titles, sections) if not any(line.startswith("???") for line in section)
    ]
    assert open_ones and all(title.startswith(hooks.OPEN_SECTIONS) for title in open_ones)
    assert open_ones == titles[: len(open_ones)]  # the headline first, then only folds
    assert len(open_ones) < len(titles)
    for section in sections[len(open_ones) :]:
        body = [line for line in section[1:] if line.strip()]
        assert body[0].startswith('??? abstract "The section in full: about ')
        assert all(line.startswith("    ") for line in body[1:]), section[0]
    # A "# comment" in a code block is no heading, and nothing is lost from the sections folded.
    assert sum(len(section) for section in hooks.split_sections(text)) >= len(text.split("\n"))
    assert {line.strip() for line in text.split("\n")} <= {line.strip() for line in folded.split("\n")} | {""}


def test_fold_keeps_code_blocks_whole():
    text = "# Title\n\nintro\n\n## Headline: a\n\nopen\n\n## Later\n\n```bash\n## not a heading\n```\n\nend\n"
    folded = hooks.fold_sections(text, ("Headline",))
    assert "## Headline: a\n\nopen" in folded
    assert (
        '## Later\n\n??? abstract "The section in full: about 0 words"\n\n    ```bash\n    ## not a heading\n'
        in folded
    )


def test_api_reference_docstrings_read_with_types_and_no_sphinx_roles():
    import griffe

    code = '''
def load(name: str, path, *, rate: int = 16000, first, second):
    """Load it (see :func:`other` and :class:`~pkg.mod.Thing`).

    Args:
        name (`str`): the name.
        path (`str` or `os.PathLike`): where.
        rate (`int`, *optional*, defaults to 16000): the rate.
        first, second (`float`, *optional*, defaults to 0.5): two knobs.

    Returns:
        `dict`: what it found.

    Raises:
        `ValueError`: when it cannot.
    """
'''
    extensions = griffe.load_extensions(hooks.TransformersDocstrings())
    with griffe.temporary_visited_module(code, extensions=extensions, docstring_parser="google") as module:
        docstring = module["load"].docstring
        assert "Load it (see `other` and `Thing`)." in docstring.value
        sections = {section.kind.value: section.value for section in docstring.parsed}
    parameters = {parameter.name: parameter for parameter in sections["parameters"]}
    assert str(parameters["name"].annotation) == "str"  # the signature's
    assert str(parameters["path"].annotation) == "str | os.PathLike"  # the docstring's, as Python writes it
    assert str(parameters["rate"].default) == "16000"
    assert parameters["first"].description == "two knobs. Defaults to 0.5."
    assert parameters["second"].description == "as `first`."
    assert str(parameters["second"].annotation) == "float"
    assert str(sections["returns"][0].annotation) == "dict"
    assert str(sections["raises"][0].annotation) == "ValueError"
    assert "`" not in "".join(str(parameter.annotation) for parameter in parameters.values())


def test_code_in_a_table_breaks_only_between_words_or_after_an_underscore():
    html = "<p><code>a_b</code></p><table><tr><td><code>ravdess_whisper_base --test-size x/y</code></td></tr></table>"
    out = hooks.on_page_content(html, None, None, None)
    assert out.startswith("<p><code>a_b</code></p>")  # prose is left alone
    assert (
        '<td><code class="name"><span>ravdess_</span><wbr><span>whisper_</span><wbr><span>base</span> '
        "<span>--test-size</span> <span>x/</span><wbr><span>y</span></code></td>"
    ) in out
    assert re.sub(r"<[^>]+>", "", out) == re.sub(r"<[^>]+>", "", html)  # the text is unchanged


@pytest.mark.browser
@pytest.mark.slow  # builds the whole site and renders every page: about 90 s
def test_no_page_scrolls_sideways_at_laptop_width(tmp_path):
    """Every page at 1280 px, every fold open: no page wider than the window, no box scrolling sideways or sticking
    out of the text column, no code in a table cut mid-word. Skipped where Chromium is not installed."""
    try:
        browser = check_layout.find_browser()
    except check_layout.BrowserUnavailable as reason:
        pytest.skip(f"the layout check {reason}")
    site = check_layout.build_site(tmp_path / "site")
    problems = check_layout.check_site(site, browser)
    assert len(problems) > 10 and "benchmarks/" in problems
    assert {page: listed for page, listed in problems.items() if listed} == {}
