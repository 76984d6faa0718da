"""How many labelled clips an adaptation needs: ``ser-hf learning-curve MODEL --data_dir FOLDER --adapt_speakers A
--test_speakers T``, the adaptation learning curve of a trained model on one corpus, through the adaptation users run
(:func:`ser_hf.adaptation.adapt`, the code of ``ser-hf adapt``).

The corpus' speakers are split in two: *adaptation speakers*, whose clips a user would have (a few labelled, the rest
unlabelled), and *test speakers*, never adapted on. For each k (labelled clips per emotion) and each draw (a seed),
k clips of every emotion are drawn from the adaptation speakers' clips, the same draw for every arm:

- ``zero-shot`` (k = 0): the model as it is, scored on the test speakers (``ser-hf evaluate``'s API);
- ``adapted``: ``ser-hf adapt`` on the k clips;
- ``adapted+self-training``: ``ser-hf adapt --unlabelled_dir`` with the adaptation speakers' other clips unlabelled
  (the adapted arm's figure is then read from the same run's first adaptation, which is the adapted arm's run);
- ``suggested``: ``ser-hf adapt`` on clips ``ser-hf suggest`` chose among the adaptation speakers' clips
  (``--per_emotion k``), labelled with their true labels as a person would label them: the first k x (labels scored)
  rows of the sheet, the same number of clips as the random arms, further rows only where a label is still missing
  (and a random clip of a label the whole sheet lacks, counted in the cell's ``filled_at_random``);
- ``scratch``: the same recipe with a new head (``reinitialize_head``), no L2-SP: what the k clips teach alone.

Every arm is scored on the test speakers' clips of the labels scored: the corpus' labels that the model has (or
``labels``). Each cell is a folder of links named ``SPEAKER__LABEL__N.ext`` (the test speakers' clips and the drawn
ones), which the adaptation reads as a user's folder; its adapted model is removed once scored (``keep_models``
keeps them). The result file (:class:`~ser_hf.experiments.results.ResultFile`) is written after every cell, and a run
started again with it skips the cells it holds.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import RecipeError
from .constants import LEARNING_CURVE_ARMS, LEARNING_CURVE_DEFAULTS
from .results import ResultFile

logger = logging.getLogger(__name__)

ARMS = LEARNING_CURVE_ARMS
DEFAULT_ARMS, DEFAULT_KS, DEFAULT_DRAWS = (LEARNING_CURVE_DEFAULTS[key] for key in ("arms", "ks", "draws"))
#: How a cell's links are named and read back (``SPEAKER__LABEL__N.ext``; unlabelled ones ``SPEAKER__unlabelled__N``).
LINK_SEPARATOR = "__"
LABEL_REGEX = rf"{LINK_SEPARATOR}(?P<label>[a-z_]+?){LINK_SEPARATOR}\d+\.\w+$"
SPEAKER_REGEX = rf"^(?P<speaker>.+?){LINK_SEPARATOR}"
#: What the scratch arm changes in the adaptation recipe: a new head, trained on the k clips alone.
SCRATCH_OVERRIDES = {"reinitialize_head": True, "match_head_labels": False, "starting_point_weight": 0.0}
EXPERIMENT = "learning-curve"
#: The file that marks a work folder as this experiment's own.
WORK_MARK = ".ser-hf-learning-curve"


def draw_clips(labels: Sequence[str], speakers: Sequence[str], adapt: Sequence[str], k: int, seed: int) -> np.ndarray:
    """Rows of k clips of every label, drawn at random (`seed`) from the adaptation speakers' clips."""
    labels, speakers = np.asarray(labels), np.asarray(speakers)
    generator = np.random.default_rng(seed)
    rows = []
    for label in sorted(set(labels.tolist())):
        pool = np.flatnonzero((labels == label) & np.isin(speakers, list(adapt)))
        if len(pool) < k:
            raise RecipeError(f"{label}: {len(pool)} clips of the adaptation speakers, fewer than k = {k}.")
        rows.extend(generator.choice(pool, size=k, replace=False).tolist())
    return np.sort(np.array(rows, dtype=int))


def summarize(cells: list[dict]) -> list[dict]:
    """Per arm and k: the mean, lowest and highest unweighted accuracy over the draws (in %)."""
    rows = []
    for arm in ARMS:
        for k in sorted({cell["k"] for cell in cells if cell["arm"] == arm}):
            values = [cell["unweighted_accuracy"] for cell in cells if cell["arm"] == arm and cell["k"] == k]
            rows.append(
                {
                    "arm": arm,
                    "k": k,
                    "mean": round(float(np.mean(values)), 2),
                    "min": round(min(values), 2),
                    "max": round(max(values), 2),
                    "draws": len(values),
                }
            )
    return rows


def summary_table(summary: Sequence[Mapping[str, Any]]) -> str:
    """The summary as a Markdown table, a row a user can paste beside BENCHMARKS.md's."""
    lines = ["| arm | k | UA % (mean) | range over draws | draws |", "|---|---:|---:|---|---:|"]
    for row in summary:
        lines.append(
            f"| {row['arm']} | {row['k']} | {row['mean']:.1f} | {row['min']:.1f}-{row['max']:.1f} | {row['draws']} |"
        )
    return "\n".join(lines)


class CurveCorpus:
    """The corpus of a learning curve, read by file name (nothing decoded): each clip's path, label and speaker, on
    the labels scored."""

    def __init__(
        self,
        corpus: str,
        data_dir: str | os.PathLike,
        options: Mapping[str, Any],
        model_labels: Sequence[str],
        labels: Optional[Sequence[str]],
    ):
        from ..data.corpora import load_corpus
        from ..data.dataset_info import column_values

        dataset = load_corpus(corpus, data_dir, **dict(options))
        names = dataset.features["label"].names
        self.labels = list(labels) if labels else [name for name in names if name in model_labels]
        unknown = sorted(set(self.labels) - set(names))
        if unknown:
            raise RecipeError(f"--labels {', '.join(unknown)}: not among the corpus' labels {names}.")
        if len(self.labels) < 2:
            raise RecipeError(
                f"The corpus' labels {names} and the model's {list(model_labels)} share fewer than two: nothing to "
                "score a learning curve on."
            )
        keep = [i for i, label in enumerate(column_values(dataset, "label")) if names[label] in self.labels]
        self.paths = [Path(column_values(dataset, "path")[i]) for i in keep]
        self.label_of = [names[column_values(dataset, "label")[i]] for i in keep]
        self.speaker_of = [str(column_values(dataset, "speaker_id")[i]) for i in keep]

    def check_speakers(self, adapt: Sequence[str], test: Sequence[str]) -> None:
        known = set(self.speaker_of)
        for flag, speakers in (("--adapt_speakers", adapt), ("--test_speakers", test)):
            unknown = sorted(set(speakers) - known)
            if unknown:
                raise RecipeError(f"{flag} {', '.join(unknown)}: not among the corpus' speakers {sorted(known)}.")
            if not speakers:
                raise RecipeError(f"{flag}: no speaker given.")
        both = sorted(set(adapt) & set(test))
        if both:
            raise RecipeError(f"--adapt_speakers and --test_speakers both name {', '.join(both)}: keep them apart.")

    def rows_of(self, speakers: Sequence[str]) -> list[int]:
        return [i for i, speaker in enumerate(self.speaker_of) if speaker in set(speakers)]

    def link_folder(self, folder: Path, rows: Sequence[int], unlabelled: bool = False) -> Path:
        """A folder of links to the clips `rows`, named ``SPEAKER__LABEL__N.ext`` (``unlabelled`` for the label)."""
        if folder.is_dir():
            shutil.rmtree(folder)  # a folder this experiment made, left by an interrupted cell
        folder.mkdir(parents=True)
        for number, row in enumerate(rows):
            label = "unlabelled" if unlabelled else self.label_of[row]
            speaker = self.speaker_of[row].replace("/", "_")
            name = f"{speaker}{LINK_SEPARATOR}{label}{LINK_SEPARATOR}{number:05d}{self.paths[row].suffix}"
            (folder / name).symlink_to(self.paths[row].resolve())
        return folder


def run_learning_curve(
    model: str | os.PathLike,
    data_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    adapt_speakers: Sequence[str],
    test_speakers: Sequence[str],
    corpus: str = "folder",
    corpus_options: Optional[Mapping[str, Any]] = None,
    labels: Optional[Sequence[str]] = None,
    ks: Sequence[int] = DEFAULT_KS,
    draws: Sequence[int] = DEFAULT_DRAWS,
    arms: Sequence[str] = DEFAULT_ARMS,
    work_dir: Optional[str | os.PathLike] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    keep_models: bool = False,
    command: Optional[str] = None,
    on_cell: Optional[Callable[[dict], None]] = None,
) -> dict[str, Any]:
    """Run the learning curve of `model` on the corpus in `data_dir` (module docstring) into the result file
    `output`; returns its document (``summary``: per arm and k, the mean UA over the draws, and every cell)."""
    from ..recipe.adaptation import trained_model_facts

    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise RecipeError(f"--arms {', '.join(unknown)}: the arms are {', '.join(ARMS)}.")
    if any(k < 0 for k in ks):
        raise RecipeError(f"--ks {list(ks)}: clips per emotion are 0 or more.")
    from ..adaptation.adapt import resolve_model_folder

    facts = trained_model_facts(resolve_model_folder(model))
    clips = CurveCorpus(corpus, data_dir, corpus_options or {}, facts["labels"], labels)
    clips.check_speakers(adapt_speakers, test_speakers)
    settings = {
        "model": str(model),
        "corpus": corpus,
        "data_dir": str(data_dir),
        "adapt_speakers": sorted(adapt_speakers),
        "test_speakers": sorted(test_speakers),
        "labels": clips.labels,
        "overrides": dict(overrides or {}),
    }
    results = ResultFile(output, EXPERIMENT, settings, summarize, command=command)
    work = Path(work_dir) if work_dir is not None else Path(output).with_suffix(".work")
    made_work_folder = not work.exists()
    own_work_folder(work)
    test_rows = clips.rows_of(test_speakers)
    cells = [(0, None)] if 0 in ks and "zero-shot" in arms else []
    cells += [(k, draw) for k in ks if k > 0 for draw in draws]
    for k, draw in _progress(cells):
        if k == 0:
            if not results.done("zero-shot/0"):
                _zero_shot(model, clips, test_rows, test_speakers, work, results, on_cell)
            continue
        _draw_cell(
            model, clips, test_rows, adapt_speakers, test_speakers, k, draw, arms, work, results, settings, keep_models
        )
        if on_cell is not None and results.cells:
            on_cell(results.cells[-1])
    results.write()
    if not keep_models:  # what this experiment wrote there, and the folder itself where it made it
        for child in work.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if made_work_folder:
            work.rmdir()
    return results.document()


def own_work_folder(folder: Path) -> Path:
    """`folder`, made for the cells and marked as this experiment's (:data:`WORK_MARK`), so that only a folder it made
    is ever removed; an existing folder without the mark that holds anything is refused."""
    mark = folder / WORK_MARK
    if folder.is_dir() and any(folder.iterdir()) and not mark.is_file():
        raise RecipeError(
            f"--work_dir {folder} holds files ser-hf learning-curve did not write: give a new or empty folder (the "
            "cells' folders are removed once scored)."
        )
    folder.mkdir(parents=True, exist_ok=True)
    mark.touch()
    return folder


def _progress(cells: list) -> Any:
    from tqdm.auto import tqdm

    return tqdm(cells, desc="learning curve", unit="cell", disable=None)


def _zero_shot(model, clips: CurveCorpus, test_rows, test_speakers, work: Path, results: ResultFile, on_cell) -> None:
    from ..evaluation.evaluate_model import CorpusSource, evaluate_model

    started = time.perf_counter()
    folder = clips.link_folder(work / "zero-shot", test_rows)
    source = CorpusSource("folder", str(folder), options={"label_regex": LABEL_REGEX, "speaker_regex": SPEAKER_REGEX})
    report = evaluate_model(str(model), source, speakers=list(test_speakers), labels=clips.labels)
    (metrics,) = report["evaluation"].values()
    results.add(_cell("zero-shot", 0, None, metrics, time.perf_counter() - started))
    if on_cell is not None:
        on_cell(results.cells[-1])


def _draw_cell(
    model, clips, test_rows, adapt_speakers, test_speakers, k, draw, arms, work, results, settings, keep_models
) -> None:
    """The arms of one draw of k clips per emotion, each through :func:`ser_hf.adaptation.adapt`."""
    from ..adaptation import adapt
    from ..adaptation.adapt import LABELLED_ONLY_FOLDER, RECIPE_SUFFIX, SELF_TRAINING_SUFFIX
    from ..run_folder import read_run

    def remove(*folders: Path) -> None:
        """The folders this experiment had the adaptation write (a model per cell), and the recipes beside them."""
        for folder in folders if not keep_models else ():
            if folder.is_dir():
                shutil.rmtree(folder)
            recipe = folder.parent / f"{folder.name}{RECIPE_SUFFIX}"
            if recipe.is_file():
                recipe.unlink()

    wanted = [arm for arm in arms if arm != "zero-shot" and not results.done(f"{arm}/{k}/{draw}")]
    if not wanted:
        return
    drawn = draw_clips(clips.label_of, clips.speaker_of, adapt_speakers, k, draw).tolist()
    cell_dir = work / f"k{k}-draw{draw}"
    labelled = clips.link_folder(cell_dir / "labelled", drawn + list(test_rows))
    patterns = {"label_regex": LABEL_REGEX, "speaker_regex": SPEAKER_REGEX}
    common = dict(test_speakers=list(test_speakers), labels=clips.labels, seed=draw, corpus_options=patterns)
    overrides = dict(settings["overrides"])
    if "scratch" in wanted:
        started = time.perf_counter()
        report = adapt(model, labelled, cell_dir / "scratch", overrides={**overrides, **SCRATCH_OVERRIDES}, **common)
        results.add(_cell("scratch", k, draw, _test_metrics(report), time.perf_counter() - started))
        remove(cell_dir / "scratch")
    if "suggested" in wanted:
        started = time.perf_counter()
        chosen, filled = _suggested_rows(model, clips, adapt_speakers, k, draw, cell_dir)
        folder = clips.link_folder(cell_dir / "suggested-labelled", chosen + list(test_rows))
        report = adapt(model, folder, cell_dir / "suggested", overrides=overrides, **common)
        cell = _cell("suggested", k, draw, _test_metrics(report), time.perf_counter() - started)
        results.add({**cell, "labelled_clips": len(chosen), "filled_at_random": filled})
        remove(cell_dir / "suggested")
    if "adapted+self-training" in wanted:
        pool = [row for row in clips.rows_of(adapt_speakers) if row not in set(drawn)]
        unlabelled = clips.link_folder(cell_dir / "unlabelled", pool, unlabelled=True)
        started = time.perf_counter()
        output = cell_dir / "self-trained"
        report = adapt(model, labelled, output, unlabelled_dir=unlabelled, overrides=overrides, **common)
        seconds = time.perf_counter() - started
        work_folder = output.parent / f"{output.name}{SELF_TRAINING_SUFFIX}"
        if "adapted" in wanted:  # the same run's first adaptation is the adapted arm's, on the k clips alone
            first = read_run(work_folder / LABELLED_ONLY_FOLDER).report
            results.add(_cell("adapted", k, draw, _test_metrics(first), seconds))
        results.add(_cell("adapted+self-training", k, draw, _test_metrics(report), seconds))
        remove(output, work_folder)
    elif "adapted" in wanted:
        started = time.perf_counter()
        report = adapt(model, labelled, cell_dir / "adapted", overrides=overrides, **common)
        results.add(_cell("adapted", k, draw, _test_metrics(report), time.perf_counter() - started))
        remove(cell_dir / "adapted")


def _suggested_rows(model, clips: CurveCorpus, adapt_speakers, k: int, draw: int, cell_dir: Path) -> tuple[list, int]:
    """The rows ``ser-hf suggest`` puts first in the sheet of the adaptation speakers' clips (its clustering seeded by
    `draw`), as many as the random arms label (k of each label scored), more only until every label has a clip; a
    label the whole sheet lacks gets a random clip (`draw`). Returns the rows and how many were filled at random."""
    from ..adaptation.suggest import suggest

    pool_rows = clips.rows_of(adapt_speakers)
    pool = clips.link_folder(cell_dir / "pool", pool_rows, unlabelled=True)
    sheet = cell_dir / "suggested.csv"
    if sheet.exists():
        sheet.unlink()  # this experiment's own sheet, left by an interrupted cell
    found = suggest(model, pool, sheet, per_emotion=k, speaker_regex=SPEAKER_REGEX, seed=draw)
    budget, chosen = k * len(clips.labels), []
    for sheet_row in found.rows:
        number = int(Path(sheet_row.path).stem.rsplit(LINK_SEPARATOR, 1)[1])
        row = pool_rows[number]
        missing = set(clips.labels) - {clips.label_of[r] for r in chosen}
        if len(chosen) >= budget and not missing:
            break
        if len(chosen) < budget or clips.label_of[row] in missing:
            chosen.append(row)
    generator = np.random.default_rng(draw)
    filled = 0
    for label in clips.labels:
        if label not in {clips.label_of[r] for r in chosen}:
            candidates = [r for r in pool_rows if clips.label_of[r] == label]
            chosen.append(int(generator.choice(candidates)))
            filled += 1
    return chosen, filled


def _test_metrics(report) -> dict[str, Any]:
    """A run report's test scores."""
    test = report.evaluation["test"]
    return {
        "unweighted_accuracy": test.unweighted_accuracy,
        "accuracy": test.accuracy,
        "macro_f1": test.macro_f1,
        "clips": test.clips,
    }


def _cell(arm: str, k: int, draw: Optional[int], metrics: Mapping[str, Any], seconds: float) -> dict:
    """A finished cell: its key, the scores in % and the seconds it took."""
    return {
        "key": f"{arm}/{k}" if draw is None else f"{arm}/{k}/{draw}",
        "arm": arm,
        "k": k,
        "draw": draw,
        **{name: round(100 * float(metrics[name]), 2) for name in ("unweighted_accuracy", "accuracy", "macro_f1")},
        "test_clips": int(metrics["clips"]),
        "seconds": round(seconds, 1),
    }


__all__ = ["ARMS", "draw_clips", "run_learning_curve", "summarize", "summary_table"]
