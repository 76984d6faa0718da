"""BENCHMARKS.md is generated from the benchmarks' JSON files under docs/results/ (docs/results/make_benchmarks.py):
the committed page is what the generator writes, it stays a short reference, and a figure quoted in README.md or a
recipe's header is one the results data holds (each figure is written by hand in one place: its JSON)."""

from __future__ import annotations

import functools
import importlib.util
import re
import sys

from tests.conftest import REPO


def load_generator():
    spec = importlib.util.spec_from_file_location("make_benchmarks", REPO / "docs" / "results" / "make_benchmarks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_benchmarks"] = module
    spec.loader.exec_module(module)
    return module


generator = load_generator()


@functools.cache
def rendered() -> str:
    return generator.render()


def test_committed_page_is_the_generated_one():
    assert (REPO / "BENCHMARKS.md").read_text(encoding="utf-8") == rendered(), (
        "BENCHMARKS.md is stale: run `make benchmarks` (python docs/results/make_benchmarks.py)"
    )
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme == generator.render_readme(readme), "README.md's headline table is stale: run `make benchmarks`"
    assert generator.main(["--check"]) == 0


def test_page_is_a_short_reference_with_one_section_per_protocol():
    text = (REPO / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 300
    sections = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    for protocol in ("leave-one-corpus-out", "speaker 5-fold", "Held-out", "learning curve", "Speed", "GPU"):
        assert any(protocol in title for title in sections), (protocol, sections)
    # Every shipped recipe has its row in the k-fold table, measured or "–".
    kfold = text.split("## Accuracy", 1)[1].split("\n## ", 1)[0]
    for recipe in (REPO / "recipes").glob("*.yaml"):
        assert f"| `{recipe.stem}` |" in kfold, recipe.name
    # The research log is linked, and every result file the page links exists.
    assert "](docs/results/LOG.md)" in text
    for target in re.findall(r"\]\((docs/results/[^)#]+)\)", text):
        assert (REPO / target).exists(), target


def test_check_fails_when_a_figure_in_a_json_changes(monkeypatch, capsys):
    read = generator.read

    def altered(relative):
        data = read(relative)
        if relative == "crosscorpus/loco-general_whisper_base-even_draws.json":
            data["rows"][0]["confidence_intervals"]["pooled"]["unweighted_accuracy"] += 0.01
        return data

    monkeypatch.setattr(generator, "read", altered)
    assert generator.main(["--check"]) == 1
    assert "BENCHMARKS.md is stale" in capsys.readouterr().err


# --- Figures quoted outside the reference -------------------------------------------------------------------------

#: A figure as README.md and recipe headers write one: a percentage, "UA 61.9", "70.8 ± 5.5", an interval
#: "[50.0, 61.6]".
FIGURE = re.compile(
    r"(?P<percent>\d+(?:\.\d+)?) ?%"
    r"|\bUA (?P<ua>\d+(?:\.\d+)?)"
    r"|(?P<mean>\d+\.\d) ± (?P<std>\d+\.\d)"
    r"|\[(?P<low>\d+\.\d), (?P<high>\d+\.\d)\]"
)
#: A chance level ("chance is 12.5 %": 100 / the number of classes) is arithmetic, not a result.
CHANCE = re.compile(r"chance(?: level)?(?: is| of|:)? \d+(?:\.\d+)? ?%")
#: An interval's level ("95 % speaker-bootstrap intervals") is a choice, not a result.
LEVEL = re.compile(r"\b\d+ ?%(?= (?:[\w-]+ )?(?:[\w-]*bootstrap|intervals?|percentile|confidence|CI)\b)")
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def reference_numbers(names: set[str] | None = None) -> set[str]:
    """The numbers of the reference (each derived from a JSON file under docs/results): of its rows naming one of
    ``names`` (a recipe, as `name` or `name KEY=VALUE`), or of the whole page."""
    text = rendered()
    if names is None:
        return set(NUMBER.findall(text))
    rows = [
        line for line in text.splitlines() if line.startswith("| `") and line[3:].split("`")[0].split()[0] in names
    ]
    return {number for row in rows for number in NUMBER.findall(row.split("](")[0])}


def quoted_figures(text: str) -> list[str]:
    figures = []
    for match in FIGURE.finditer(LEVEL.sub("", CHANCE.sub("", text))):
        figures += [number for number in match.groupdict().values() if number is not None]
    return figures


def recipe_headers() -> dict[str, str]:
    return {
        path.stem: "\n".join(line for line in path.read_text().splitlines() if line.lstrip().startswith("#"))
        for path in sorted((REPO / "recipes").glob("*.yaml"))
    }


def test_readme_and_recipe_headers_quote_no_figure_by_hand():
    """README.md's figures are its generated headline table's (between its markers, written from the results by the
    generator: :func:`test_committed_page_is_the_generated_one` checks it is current); recipe headers quote none. A
    figure anywhere else in them is a copy: link BENCHMARKS.md instead."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    before, rest = readme.split(generator.README_START, 1)
    table, after = rest.split(generator.README_END, 1)
    assert table == generator.headline_table() and quoted_figures(table)
    copied = {"README.md": quoted_figures(before + after)}
    for name, header in recipe_headers().items():
        copied[f"recipes/{name}.yaml"] = quoted_figures(header)
    copied = {name: figures for name, figures in copied.items() if figures}
    assert not copied, f"figures copied by hand (link BENCHMARKS.md instead): {copied}"


def test_readme_table_follows_the_results(monkeypatch, capsys):
    """A figure changed in a result file makes README.md's table stale too."""
    read = generator.read

    def altered(relative):
        data = read(relative)
        if relative == "adapt/learning-curve.json":
            for arm in data["summary"][""]:
                arm["loco_mean"] = (arm.get("loco_mean") or 0) + 1
        return data

    monkeypatch.setattr(generator, "read", altered)
    assert generator.main(["--check"]) == 1
    assert "README.md is stale" in capsys.readouterr().err


#: Figures of the guides that are not ser-hf's results: the literature's, a model's share of trainable parameters, an
#: example of a malformed record.
NOT_RESULTS = {
    "evaluation.md": {"75.3"},  # EmoBox's, quoted for comparison
    "models.md": {"95.6", "0.21", "0.83", "40"},  # trainable parameters, the statistics refresh's share of an epoch
    "troubleshooting.md": {"750.0"},  # a proportion written outside [0, 1], in an error's example
}


def test_figures_in_the_guides_are_the_references():
    """A guide links the reference; a figure it still quotes must be one the reference shows."""
    reference = reference_numbers()
    unmatched = {}
    for path in sorted((REPO / "docs" / "guides").glob("*.md")):
        allowed = reference | NOT_RESULTS.get(path.name, set())
        missing = [figure for figure in quoted_figures(path.read_text(encoding="utf-8")) if figure not in allowed]
        if missing:
            unmatched[path.name] = missing
    assert not unmatched, f"figures with no match in the reference (link BENCHMARKS.md instead): {unmatched}"


def test_figure_check_catches_a_figure_the_results_lack():
    assert quoted_figures("test UA 61.9 % (pooled 61.9 [50.0, 61.6]); chance is 12.5 %") == ["61.9", "50.0", "61.6"]
    assert quoted_figures("UA with 95 % speaker-bootstrap intervals, a 95 % interval; 63.4 %") == ["63.4"]
    general = reference_numbers({"general_whisper_base"})
    assert "61.9" in general and "59.5" not in general  # ravdess_opensmile's figure, not this recipe's
    assert "59.5" in reference_numbers({"ravdess_opensmile"})


def test_four_corpus_rows_count_only_the_seeds_every_corpus_was_run_with(monkeypatch):
    """A training seed still running (some corpora left out, not all) is left out of the four-corpus means and of
    README.md's figure until its last corpus is written."""

    def cells(seed: int, scores: dict[str, float]) -> list[dict]:  # as `ser-hf loco` writes them
        return [{"seed": seed, "test": corpus, "unweighted_accuracy": ua} for corpus, ua in scores.items()]

    whole = {"ravdess": 60.0, "tess": 80.0, "nemo": 40.0, "banglaser": 60.0}
    document = {"cells": cells(42, whole) + cells(7, {**whole, "ravdess": 50.0}) + cells(43, {"ravdess": 99.0})}
    monkeypatch.setattr(generator, "read", lambda relative: document)
    by_corpus, seeds, mean = generator.loco4_figures("any.json")
    assert seeds == 2 and by_corpus["ravdess"] == [60.0, 50.0] and mean == (55 + 80 + 40 + 60) / 4
    assert generator.loco4_mean("general_whisper_base") == "58.8 % ([row](BENCHMARKS.md#four-corpora), 2 seeds of 3)"


def test_a_curve_gathered_from_several_runs_names_each_runs_commit():
    """bench/adapt.py --gather keeps each scenario's commit; the caption names them, not the gather's alone."""
    one_run = {"commit": "a" * 40, "sources": {"ravdess": {"ordinary": {"commit": "b" * 40, "date": "2026-11-29"}}}}
    assert generator.source_commits(one_run) == "commit bbbbbbb"
    assert generator.source_commits({"commit": "c" * 40}) == "commit ccccccc"
    several = {
        "commit": "a" * 40,
        "sources": {
            "ravdess": {"ordinary": {"commit": "b" * 40}, "few-emotions": {"commit": "c" * 40}},
            "tess:OAF->YAF": {"ordinary": {"commit": "c" * 40}},
            "tess:YAF->OAF": {"ordinary": {"commit": "c" * 40}},
        },
    }
    assert generator.source_commits(several) == (
        "commits bbbbbbb (ordinary RAVDESS); ccccccc (few-emotions RAVDESS, ordinary TESS)"
    )
