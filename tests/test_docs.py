"""Every command and code block of the README and of the documentation site (docs/) runs as written, page by page
and block by block in order, from a folder laid out like the repository root (data/, recipes/ ... linked, outputs/
empty), on the data the repository ships: so the paths a block names exist after the blocks before it.

The pages are read in order: a guide may use what the README and the pages before it made (the README's first block
trains ``outputs/demo``), so each page runs after those, in one folder. ``ser-hf`` and ``python -m ser_hf.train``
commands run in this process (``main(argv)``, as the CLI tests do: a fresh interpreter per command would cost seconds
of imports each); a block with anything else (``mkdir``, ``cd``, a here-document) runs whole in bash. The Hub is the
tests' local one (:class:`tests.hub_server.LocalHub`, user ``me``): ``HF_ENDPOINT`` and ``HF_TOKEN`` for processes,
and for this one huggingface_hub's constants, which it reads from the environment when it is imported.

A block that cannot run here (it serves until stopped, needs a GPU or several machines, the real Hub, or is the test
suite itself) says so on the page, in a visible line just before it: ``> **Not run by the docs tests:** why``.
:func:`test_blocks_not_run_are_few_and_justified` keeps that list short, each reason one of :data:`NOT_RUN_REASONS`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

#: The pages, in the order they run: the README first (the guides use the model it trains), then the site's nav.
PAGES = [
    "README.md",
    "docs/index.md",
    "docs/install.md",
    "docs/guides/corpora.md",
    "docs/guides/your-data.md",
    "docs/guides/splits.md",
    "docs/guides/models.md",
    "docs/guides/recipes.md",
    "docs/guides/evaluation.md",
    "docs/guides/deploy.md",
    "docs/guides/scaling.md",
    "docs/guides/cli.md",
    "docs/guides/troubleshooting.md",
    "docs/space.md",
    "docs/ARCHITECTURE.md",
    "docs/results/README.md",
]

#: What the sandbox links from the repository (read only by the examples: they write under outputs/).
LINKED = ("data", "recipes", "docs", "bench", "hub_cards", "pretrained", "BENCHMARKS.md")

#: The only reasons a block may be left out, each a phrase its marker line must hold.
NOT_RUN_REASONS = {
    "is the test suite": "make test runs these tests; running it from them would recurse",
    "serves until stopped": "a server never returns; tests/deploy/test_app.py serves the same app",
    "needs a GPU": "the tests run on CPU",
    "several machines": "a multi-node launch needs the machines",
    "the real Hub": "the tests reach no network; the Hub commands ser-hf runs are tested on the local Hub",
    "installs packages": "it would change the tests' own environment; make package installs the wheel and runs it",
}
#: At most this many blocks may be left out, over every page.
MAX_NOT_RUN = 9

NOT_RUN_MARK = "> **Not run by the docs tests:**"
LANGUAGES = {"python", "bash", "text", "yaml"}

FENCE = re.compile(r"^(?P<indent> *)```(?P<language>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)

HUB_TOKEN = "hf_docsTestToken0123456789abcdefXYZ"


@dataclass
class Block:
    page: str
    index: int
    language: str
    code: str
    not_run: str | None  # the marker's text when the page says the block is not run

    @property
    def name(self) -> str:
        return f"{self.page}#{self.index}"


def page_blocks(page: str) -> list[Block]:
    text = (REPO / page).read_text()
    blocks, end = [], 0
    for index, match in enumerate(FENCE.finditer(text)):
        before = text[end : match.start()].strip().split("\n\n")[-1].strip()
        # The marker as read: one line, without the quote signs and emphasis.
        marker = (
            " ".join(line.lstrip("> ") for line in before.splitlines()) if before.startswith(NOT_RUN_MARK) else None
        )
        marker = marker and marker.replace("*", "")
        body = "\n".join(line[len(match["indent"]) :] for line in match["body"].splitlines())
        blocks.append(Block(page, index, match["language"], body, marker))
        end = match.end()
    return blocks


BLOCKS = {page: page_blocks(page) for page in PAGES}


def test_every_page_is_listed():
    """A new page of the site is run too: every Markdown file of docs/ with a code block is in PAGES (the tables
    that the benchmarks write into docs/results/ have none)."""
    pages = {str(path.relative_to(REPO)) for path in (REPO / "docs").rglob("*.md") if "```" in path.read_text()}
    assert pages <= set(PAGES), sorted(pages - set(PAGES))


def test_blocks_have_a_known_language():
    for page, blocks in BLOCKS.items():
        for block in blocks:
            assert block.language in LANGUAGES, f"{block.name}: a ``` block needs a language ({sorted(LANGUAGES)})"
            if block.language in ("text", "yaml"):  # output or a file's content, never a command to type
                assert not re.match(r"\s*(\$ |ser-hf |python )", block.code), block.name


def test_blocks_not_run_are_few_and_justified():
    not_run = [block for blocks in BLOCKS.values() for block in blocks if block.not_run]
    assert len(not_run) <= MAX_NOT_RUN, [block.name for block in not_run]
    for block in not_run:
        assert any(reason in block.not_run for reason in NOT_RUN_REASONS), f"{block.name}: {block.not_run}"
    # The markers are visible lines: none hides in an HTML comment, and none stands before a non-command block.
    for page in PAGES:
        assert "<!-- not run" not in (REPO / page).read_text().lower(), page
    assert all(block.language == "bash" for block in not_run)


def test_pages_have_examples():
    runnable = [b for blocks in BLOCKS.values() for b in blocks if b.language in ("python", "bash") and not b.not_run]
    assert len(runnable) >= 30
    assert sum(b.language == "python" for b in runnable) >= 10


# --- Running the pages --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub():
    from tests.hub_server import LocalHub

    with LocalHub(token=HUB_TOKEN, user="me") as server:
        yield server


@pytest.fixture(autouse=True)
def _library_switches_put_back():
    """A run in this process turns transformers' and datasets' progress bars and verbosity down for the whole process
    (``--disable_tqdm true``), as it should for a command; the test files this worker runs next get them back."""
    import logging

    import datasets
    from transformers.utils import logging as transformers_logging

    bars = transformers_logging.is_progress_bar_enabled(), datasets.utils.logging.is_progress_bar_enabled()
    verbosity = transformers_logging.get_verbosity(), datasets.utils.logging.get_verbosity()
    ser_hf_level = logging.getLogger("ser_hf").level
    yield
    (transformers_logging.enable_progress_bar if bars[0] else transformers_logging.disable_progress_bar)()
    (datasets.enable_progress_bars if bars[1] else datasets.disable_progress_bars)()
    transformers_logging.set_verbosity(verbosity[0])
    datasets.utils.logging.set_verbosity(verbosity[1])
    logging.getLogger("ser_hf").setLevel(ser_hf_level)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A folder that looks like the repository root to the examples."""
    root = tmp_path_factory.mktemp("docs_sandbox")
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    (root / "outputs").mkdir()
    return root


def subprocess_env(hub, sandbox: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_TOKEN", "HUGGING_FACE_HUB"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        HF_ENDPOINT=hub.url,
        HF_TOKEN=HUB_TOKEN,
        HF_HOME=str(sandbox / ".hf_home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONWARNINGS="ignore",
    )
    return env


def shell_commands(code: str) -> list[str]:
    """The block's commands, one per line once continuation lines are joined; blank and comment lines dropped."""
    code = re.sub(r"\\\n\s*", " ", code)
    return [line.strip() for line in code.splitlines() if line.strip() and not line.strip().startswith("#")]


def run_in_process(argv: list[str]) -> None:
    if argv[0] == "ser-hf":
        from ser_hf.cli import main

        try:
            status = main(argv[1:])
        except SystemExit as exit:  # --help
            status = exit.code
        assert status in (0, None), argv
    else:  # python -m ser_hf.train
        from ser_hf.train import main

        main(argv[3:])


def run_block(block: Block, sandbox: Path, env: dict[str, str]) -> str:
    """Run one block in ``sandbox``; return what it printed."""
    if block.language == "python":
        import contextlib
        import io

        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(block.code, block.name, "exec"), {"__name__": "__docs__"})
        return output.getvalue()
    commands = shell_commands(block.code)
    in_process = all(re.match(r"(ser-hf|python -m ser_hf\.train) ", command) for command in commands)
    if not in_process:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.code],
            cwd=sandbox,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{block.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout + result.stderr
    for command in commands:
        run_in_process(shlex.split(command, comments=True))
    return "ran"


_ran: set[str] = set()


def use_local_hub(hub, sandbox: Path, monkeypatch) -> None:
    """Point this process' huggingface_hub at the local Hub, with a cache of its own."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(sandbox / ".hf_home" / "hub"))
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)


def run_page(page: str, sandbox: Path, env: dict[str, str], monkeypatch) -> None:
    """Run ``page``'s blocks, after the pages before it (once each)."""
    if page in _ran:
        return
    for earlier in PAGES[: PAGES.index(page)]:
        run_page(earlier, sandbox, env, monkeypatch)
    monkeypatch.chdir(sandbox)
    for block in BLOCKS[page]:
        if block.language in ("python", "bash") and not block.not_run:
            start = time.perf_counter()
            output = run_block(block, sandbox, env)
            assert output.strip(), f"{block.name} printed nothing"
            if os.environ.get("SER_HF_DOCS_TIMES"):  # a file to append each block's time to, to keep the suite fast
                with open(os.environ["SER_HF_DOCS_TIMES"], "a") as times:
                    times.write(f"{time.perf_counter() - start:6.1f} s {block.name} {block.code[:60]!r}\n")
    _ran.add(page)


@pytest.mark.parametrize(
    "page", [page for page in PAGES if any(b.language in ("python", "bash") for b in BLOCKS[page])]
)
@pytest.mark.slow
def test_page_runs(page, sandbox, hub, monkeypatch):
    use_local_hub(hub, sandbox, monkeypatch)
    run_page(page, sandbox, subprocess_env(hub, sandbox), monkeypatch)


def test_api_reference_documents_every_public_name():
    """docs/reference.md has an entry for each of ser_hf's top-level exports, at the module that defines it."""
    import ser_hf

    reference = (REPO / "docs" / "reference.md").read_text()
    entries = set(re.findall(r"^::: (\S+)$", reference, flags=re.M))
    expected = {f"ser_hf{module}.{name}" for name, module in ser_hf._EXPORTS.items()}
    assert expected <= entries, sorted(expected - entries)
    assert set(ser_hf.__all__) == set(ser_hf._EXPORTS)


def test_troubleshooting_table_keeps_every_case():
    """The "When things go wrong" table moved from the README to the troubleshooting guide whole (61 rows then; rows
    are added, never dropped), and the test files it names as holding the cases exist."""
    page = (REPO / "docs" / "guides" / "troubleshooting.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| ") and not line.startswith("| you meet")]
    assert len(rows) >= 61
    for path in re.findall(r"`(tests/[\w/]+(?:\.py)?/?)`", page):
        assert (REPO / path).exists(), path
