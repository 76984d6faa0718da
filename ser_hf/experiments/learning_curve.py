"""How many labelled clips an adaptation needs: ``ser-hf learning-curve MODEL --data-dir FOLDER --adapt-speakers A
--test-speakers T``, the adaptation learning curve of a trained model on one corpus, through the adaptation users run
(:func:`ser_hf.adaptation.adapt`, the code of ``ser-hf adapt``).

The corpus' speakers are split in two: *adaptation speakers*, whose clips a user would have (a few labelled, the rest
unlabelled), and *test speakers*, never adapted on. For each k and each draw (a seed), the arms label clips of the
adaptation speakers as a user could:

- ``zero-shot`` (k = 0): the model as it is, scored on the test speakers (``ser-hf evaluate``'s API);
- ``random``: k x (labels scored) clips drawn at random from the adaptation speakers' clips *without looking at their
  labels* (a user labelling whatever comes, with no suggestion); an emotion the draw missed keeps the model's own
  classifier row (the cell records ``missing_labels``), and a draw of one emotion is not adapted (the user keeps the
  model: the cell is the zero-shot figure, ``kept: "not adapted"``);
- ``suggested``: the first k x (labels scored) clips of the sheet ``ser-hf suggest`` writes for the adaptation
  speakers' clips, labelled with their true labels as a person would label them (missed emotions as in ``random``);
- ``oracle``: k clips of every emotion, drawn by their true labels: a baseline no user has (they would have to know
  the labels to choose the clips), kept to compare with earlier curves;
- ``oracle+self-training``: the oracle's clips, and the adaptation speakers' other clips unlabelled
  (``ser-hf adapt --unlabelled-dir``).

Scenarios (what a user's speakers and recordings are like; a *recording condition* is the other word, that of
``ser-hf evaluate --conditions``): ``ordinary`` (every clip); ``few-emotions``: every adaptation and test speaker
heard in :data:`FEW_EMOTIONS` emotions only (:func:`ser_hf.evaluation.conditions.assign_emotions`, the assignment
``ser-hf evaluate --emotions-per-speaker`` makes, per side so that every emotion stays; a side whose speakers cannot
cover every emotion so is refused before any cell), where per-speaker statistics break; the oracle then labels k clips
of an emotion or as many as the speakers have; ``telephone-babble``: every clip of the corpus heard through
:data:`~.constants.TELEPHONE_BABBLE` (the functions of ``ser-hf evaluate --conditions``: other speakers of the corpus
talking at 5 dB, then a telephone channel), written once as FLAC files under the work folder: recordings far from
any the model trained on, where the labels have the most to add.

In every adapted arm the adaptation speakers' other clips are given unlabelled (``--unlabelled-dir``, statistics only:
a user has their recordings, labelled or not), and ``oracle+self-training`` also self-trains on them.

Every arm is scored on the test speakers' clips of the labels scored: the corpus' labels that the model has (or
``labels``), and every adapted cell records the adaptation's own cross-validated estimate (``estimate_ua`` and its
interval) and what it kept (``kept``) beside the test figure. Each cell is a folder of links named
``SPEAKER__LABEL__N.ext`` (the test speakers' clips and the drawn ones), which the adaptation reads as a user's folder;
its adapted model is removed once scored (``keep_models`` keeps them). The result file
(:class:`~ser_hf.experiments.results.ResultFile`, bound to the model's files and the clips by fingerprints) is written
after every cell, and a run started again with it skips the cells it holds.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..adaptation.errors import AdaptationError
from ..atomic_files import output_relation
from .constants import LEARNING_CURVE_ARMS, LEARNING_CURVE_DEFAULTS, LEARNING_CURVE_SCENARIOS, TELEPHONE_BABBLE
from .results import CLIPS_SETTING, ResultFile, file_fingerprint

logger = logging.getLogger(__name__)

ARMS, SCENARIOS = LEARNING_CURVE_ARMS, LEARNING_CURVE_SCENARIOS
DEFAULT_ARMS, DEFAULT_KS, DEFAULT_DRAWS, DEFAULT_SCENARIOS = (
    LEARNING_CURVE_DEFAULTS[key] for key in ("arms", "ks", "draws", "scenarios")
)
#: The emotions each speaker keeps in the ``few-emotions`` scenario.
FEW_EMOTIONS = 2
#: The seed of the ``few-emotions`` scenario's assignment of emotions to speakers, and of ``telephone-babble``'s
#: recording conditions.
SCENARIO_SEED = 0
#: How a cell's links are named and read back (``SPEAKER__LABEL__N.ext``; unlabelled ones ``SPEAKER__unlabelled__N``).
LINK_SEPARATOR = "__"
LABEL_REGEX = rf"{LINK_SEPARATOR}(?P<label>[a-z_]+?){LINK_SEPARATOR}\d+\.\w+$"
SPEAKER_REGEX = rf"^(?P<speaker>.+?){LINK_SEPARATOR}"
EXPERIMENT = "learning-curve"
#: The file that marks a work folder as this experiment's own.
WORK_MARK = ".ser-hf-learning-curve"


def draw_clips(
    labels: Sequence[str], speakers: Sequence[str], adapt: Sequence[str], k: int, seed: int, at_most: bool = False
) -> np.ndarray:
    """Rows of k clips of every label, drawn at random (`seed`) from the adaptation speakers' clips (the oracle arm:
    the draw reads the labels); with `at_most`, a label with fewer clips gives all of them."""
    labels, speakers = np.asarray(labels), np.asarray(speakers)
    generator = np.random.default_rng(seed)
    rows = []
    for label in sorted(set(labels.tolist())):
        pool = np.flatnonzero((labels == label) & np.isin(speakers, list(adapt)))
        if len(pool) < k and not at_most:
            raise AdaptationError(f"{label}: {len(pool)} clips of the adaptation speakers, fewer than k = {k}.")
        rows.extend(generator.choice(pool, size=min(k, len(pool)), replace=False).tolist())
    return np.sort(np.array(rows, dtype=int))


def draw_unstratified(pool: Sequence[int], count: int, seed: int) -> list[int]:
    """`count` of the rows `pool` (the adaptation speakers' clips) drawn at random (`seed`), their labels unread (the
    random arm: what a user labelling whatever comes ends with)."""
    if len(pool) < count:
        raise AdaptationError(f"{len(pool)} clips of the adaptation speakers, fewer than the {count} to label.")
    return sorted(np.random.default_rng([seed, count]).choice(np.asarray(pool), size=count, replace=False).tolist())


def summarize(cells: list[dict]) -> list[dict]:
    """Per scenario, arm and k: the mean, lowest and highest unweighted accuracy over the draws (in %), and the mean
    of the adaptation's own estimates where it made them."""
    rows = []
    for scenario in SCENARIOS:
        for arm in ARMS:
            chosen = [cell for cell in cells if scenario_of(cell) == scenario and cell["arm"] == arm]
            for k in sorted({cell["k"] for cell in chosen}):
                at_k = [cell for cell in chosen if cell["k"] == k]
                values = [cell["unweighted_accuracy"] for cell in at_k]
                rows.append(
                    {
                        "scenario": scenario,
                        "arm": arm,
                        "k": k,
                        "mean": round(float(np.mean(values)), 2),
                        "min": round(min(values), 2),
                        "max": round(max(values), 2),
                        **estimate_summary(at_k),
                        "draws": len(values),
                    }
                )
    return rows


def scenario_of(cell: Mapping[str, Any]) -> str:
    """The scenario of a cell or a summary row: ``scenario``, or ``condition`` in the files written before the word
    was changed (docs/results/adapt/ keeps them as they were measured)."""
    return str(cell.get("scenario", cell.get("condition", "ordinary")))


def estimate_summary(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How the adaptation's own estimates of `cells` held on the test speakers: their mean, their mean absolute error
    from the test UA, the share of intervals that hold the test UA (coverage), and how many cells had an estimate."""
    estimated = [cell for cell in cells if cell.get("estimate_ua") is not None]
    covered = [cell["covered"] for cell in estimated if cell.get("covered") is not None]

    def mean(values) -> Optional[float]:
        values = list(values)
        return round(float(np.mean(values)), 2) if values else None

    return {
        "estimate": mean(cell["estimate_ua"] for cell in estimated),
        "estimate_error": mean(abs(cell["estimate_ua"] - cell["unweighted_accuracy"]) for cell in estimated),
        "coverage": mean(100.0 * bool(value) for value in covered),
        "estimated": len(estimated),
    }


def summary_table(summary: Sequence[Mapping[str, Any]]) -> str:
    """The summary as a Markdown table, a row a user can paste beside BENCHMARKS.md's."""
    lines = [
        "| scenario | arm | k | UA % (mean) | range over draws | own estimate % (error) | interval holds the "
        "test UA | draws |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for row in summary:
        estimate = "-" if row.get("estimate") is None else f"{row['estimate']:.1f} ({row['estimate_error']:.1f})"
        coverage = "-" if row.get("coverage") is None else f"{row['coverage']:.0f} % of {row['estimated']}"
        lines.append(
            f"| {scenario_of(row)} | {row['arm']} | {row['k']} | {row['mean']:.1f} | "
            f"{row['min']:.1f}-{row['max']:.1f} | {estimate} | {coverage} | {row['draws']} |"
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
            raise AdaptationError(
                f"labels {', '.join(unknown)}: not among the corpus' labels {names}.", parameter="labels"
            )
        if len(self.labels) < 2:
            raise AdaptationError(
                f"The corpus' labels {names} and the model's {list(model_labels)} share fewer than two: nothing to "
                "score a learning curve on."
            )
        keep = [i for i, label in enumerate(column_values(dataset, "label")) if names[label] in self.labels]
        self.paths = [Path(column_values(dataset, "path")[i]) for i in keep]
        self.label_of = [names[column_values(dataset, "label")[i]] for i in keep]
        self.speaker_of = [str(column_values(dataset, "speaker_id")[i]) for i in keep]
        self.dataset = dataset.select(keep)
        #: Each scenario's recordings where they are not the corpus' own (``telephone-babble``'s degraded copies).
        self.scenario_paths: dict[str, list[Path]] = {}

    def check_speakers(self, adapt: Sequence[str], test: Sequence[str]) -> None:
        self.adapt_speakers, self.test_speakers = list(adapt), list(test)
        known = set(self.speaker_of)
        for name, speakers in (("adapt_speakers", adapt), ("test_speakers", test)):
            unknown = sorted(set(speakers) - known)
            if unknown:
                raise AdaptationError(
                    f"{name} {', '.join(unknown)}: not among the corpus' speakers {sorted(known)}.", parameter=name
                )
            if not speakers:
                raise AdaptationError(f"{name}: no speaker given.", parameter=name)
        both = sorted(set(adapt) & set(test))
        if both:
            raise AdaptationError(
                f"adapt_speakers and test_speakers both name {', '.join(both)}: keep them apart.",
                parameter="adapt_speakers",
                mentions=("test_speakers",),
            )

    def check_scenario(self, scenario: str) -> None:
        """Refuse, before any cell, a ``few-emotions`` scenario whose speakers on one side cannot keep every emotion
        (each speaker is heard in :data:`FEW_EMOTIONS`): its cells would score a subset of the emotions."""
        if scenario != "few-emotions":
            return
        kept = self.kept_rows(scenario)
        for name, side in (("adapt_speakers", self.adapt_speakers), ("test_speakers", self.test_speakers)):
            heard = {self.label_of[row] for row in kept if self.speaker_of[row] in set(side)}
            missing = [label for label in self.labels if label not in heard]
            if missing:
                raise AdaptationError(
                    f"scenarios few-emotions: {name} ({len(side)} speaker(s)), each heard in {FEW_EMOTIONS} "
                    f"emotions, cannot keep every emotion scored (no clip of {', '.join(missing)} left): its cells "
                    f"would score a subset of the {len(self.labels)} labels. Give that side more speakers "
                    f"({-(-len(self.labels) // FEW_EMOTIONS)} at least), or leave the scenario out.",
                    parameter="scenarios",
                    mentions=(name,),
                )

    def path_of(self, row: int, scenario: str) -> Path:
        """The recording of `row` under `scenario`."""
        return self.scenario_paths[scenario][row] if scenario in self.scenario_paths else self.paths[row]

    def degrade(self, scenario: str, folder: Path) -> None:
        """Write every clip heard under `scenario` (``telephone-babble``: :data:`~.constants.TELEPHONE_BABBLE` in
        turn, seeded by :data:`SCENARIO_SEED`) as 16-bit FLAC into `folder` once (files already there are kept),
        and read the scenario's clips from there."""
        if scenario != "telephone-babble":
            return
        targets = [folder / f"{row:05d}.flac" for row in range(len(self.paths))]
        if not all(target.is_file() for target in targets):
            import soundfile

            from ..data.decode import WAVEFORM_COLUMN, prepare_audio
            from ..evaluation.conditions import degraded_clips
            from ..inputs.degradations import parse_condition

            sampling_rate = self.dataset.features["audio"].sampling_rate or 16000
            clips = prepare_audio(self.dataset.cast_column("audio", _audio(sampling_rate)))
            for spec in TELEPHONE_BABBLE:
                clips = degraded_clips(clips, parse_condition(spec), SCENARIO_SEED, sampling_rate)
            folder.mkdir(parents=True, exist_ok=True)
            for target, row in zip(targets, clips.select_columns([WAVEFORM_COLUMN]).with_format("numpy")):
                waveform = np.clip(np.asarray(row[WAVEFORM_COLUMN], dtype=np.float32), -1.0, 1.0)
                partial = target.with_suffix(".partial.flac")
                soundfile.write(partial, waveform, sampling_rate, subtype="PCM_16")
                partial.replace(target)
        self.scenario_paths[scenario] = targets

    def rows_of(self, speakers: Sequence[str], scenario: str = "ordinary") -> list[int]:
        """The rows of `speakers`' clips; under the ``few-emotions`` scenario, of the emotions each keeps."""
        kept = self.kept_rows(scenario)
        return [i for i, speaker in enumerate(self.speaker_of) if speaker in set(speakers) and i in kept]

    def kept_rows(self, scenario: str) -> set[int]:
        """The clips the scenario keeps: every clip, or (``few-emotions``) each speaker's clips of the
        :data:`FEW_EMOTIONS` emotions :func:`~ser_hf.evaluation.conditions.assign_emotions` gives them, assigned
        among the adaptation speakers and among the test speakers apart (each side keeps every emotion)."""
        if scenario != "few-emotions":
            return set(range(len(self.paths)))
        from ..evaluation.conditions import assign_emotions

        emotions = list(range(len(self.labels)))
        kept = set()
        for side in (self.adapt_speakers, self.test_speakers):
            assigned = assign_emotions(sorted(side), emotions, FEW_EMOTIONS, SCENARIO_SEED)
            kept |= {
                i
                for i, (speaker, label) in enumerate(zip(self.speaker_of, self.label_of))
                if speaker in assigned and self.labels.index(label) in assigned[speaker]
            }
        return kept

    def link_folder(
        self, folder: Path, rows: Sequence[int], unlabelled: bool = False, scenario: str = "ordinary"
    ) -> Path:
        """A folder of links to the clips `rows` (as heard under `scenario`), named ``SPEAKER__LABEL__N.ext``
        (``unlabelled`` for the label)."""
        if folder.is_dir():
            shutil.rmtree(folder)  # a folder this experiment made, left by an interrupted cell
        folder.mkdir(parents=True)
        for number, row in enumerate(rows):
            label = "unlabelled" if unlabelled else self.label_of[row]
            speaker = self.speaker_of[row].replace("/", "_")
            path = self.path_of(row, scenario)
            name = f"{speaker}{LINK_SEPARATOR}{label}{LINK_SEPARATOR}{number:05d}{path.suffix}"
            (folder / name).symlink_to(path.resolve())
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
    scenarios: Sequence[str] = DEFAULT_SCENARIOS,
    work_dir: Optional[str | os.PathLike] = None,
    keep_models: bool = False,
    command: Optional[str] = None,
) -> dict[str, Any]:
    """Run the learning curve of `model` on the corpus in `data_dir` (module docstring) into the result file
    `output`; returns its document (``summary``: per scenario, arm and k, the mean UA over the draws, and every
    cell)."""
    from ..adaptation.trained_model import trained_model_facts
    from ..data.splits import rows_fingerprint

    for name, given, known in (("arms", arms, ARMS), ("scenarios", scenarios, SCENARIOS)):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise AdaptationError(f"{name} {', '.join(unknown)}: the choices are {', '.join(known)}.", parameter=name)
    if any(k < 0 for k in ks):
        raise AdaptationError(f"ks {list(ks)}: clips per emotion are 0 or more.", parameter="ks")
    if any(draw < 0 for draw in draws):
        raise AdaptationError(f"draws {list(draws)}: draw seeds are 0 or more.", parameter="draws")
    work = Path(work_dir) if work_dir is not None else Path(output).with_suffix(".work")
    if output_relation(output, work) == "is inside":
        raise AdaptationError(
            f"output {output} is inside work_dir {work}, whose cells are removed once scored: write the result "
            "file elsewhere.",
            parameter="output",
            mentions=("work_dir",),
        )
    from ..adaptation.adapt import resolve_model_folder

    model_dir = resolve_model_folder(model)
    facts = trained_model_facts(model_dir)
    clips = CurveCorpus(corpus, data_dir, corpus_options or {}, facts["labels"], labels)
    clips.check_speakers(adapt_speakers, test_speakers)
    settings = {
        "model": str(model),
        # The model's files, not its path: a folder whose model was replaced is another experiment.
        "model_fingerprint": file_fingerprint([model_dir / "config.json", model_dir / "model.safetensors"]),
        "corpus": corpus,
        "data_dir": str(data_dir),
        "adapt_speakers": sorted(adapt_speakers),
        "test_speakers": sorted(test_speakers),
        "labels": clips.labels,
        # The clips, not the folder: clips added, removed or relabelled since are another experiment.
        CLIPS_SETTING: rows_fingerprint([str(path) for path in clips.paths], clips.label_of, clips.speaker_of),
    }
    for scenario in scenarios:
        clips.check_scenario(scenario)
    results = ResultFile(output, EXPERIMENT, settings, summarize, command=command)
    made_work_folder = not work.exists()
    own_work_folder(work)
    for scenario in scenarios:
        clips.degrade(scenario, work / f"corpus-{scenario}")
    cells = [(scenario, 0, None) for scenario in scenarios if 0 in ks and "zero-shot" in arms]
    cells += [(scenario, k, draw) for scenario in scenarios for k in ks if k > 0 for draw in draws]
    for scenario, k, draw in _progress(cells):
        before = len(results.cells)
        if k == 0:
            if not results.done(_key(scenario, "zero-shot", 0, None)):
                _zero_shot(model, clips, scenario, work, results)
        else:
            _draw_cell(model, clips, scenario, k, draw, arms, work, results, keep_models)
        for cell in results.cells[before:]:
            logger.info("learning curve cell %s: UA %.2f %%", cell["key"], cell["unweighted_accuracy"])
    results.write()
    if (
        not keep_models
    ):  # what this experiment wrote there (the degraded corpora kept), and the folder where it made it
        # The degraded corpora are kept for the next run, with the mark that says they are this experiment's.
        kept = any(child.name.startswith("corpus-") for child in work.iterdir())
        for child in work.iterdir():
            if child.name.startswith("corpus-") or (kept and child.name == WORK_MARK):
                continue
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if made_work_folder and not any(work.iterdir()):
            work.rmdir()
    return results.document()


def _audio(sampling_rate: int):
    from datasets import Audio

    return Audio(sampling_rate=sampling_rate)


def _key(scenario: str, arm: str, k: int, draw: Optional[int]) -> str:
    """A cell's key: ``arm/k/draw`` (``zero-shot/0``), prefixed by its scenario other than ``ordinary``."""
    key = f"{arm}/{k}" if draw is None else f"{arm}/{k}/{draw}"
    return key if scenario == "ordinary" else f"{scenario}:{key}"


def own_work_folder(folder: Path) -> Path:
    """`folder`, made for the cells and marked as this experiment's (:data:`WORK_MARK`), so that only a folder it made
    is ever removed; an existing folder without the mark that holds anything is refused."""
    mark = folder / WORK_MARK
    if folder.is_dir() and any(folder.iterdir()) and not mark.is_file():
        raise AdaptationError(
            f"work_dir {folder} holds files ser-hf learning-curve did not write: give a new or empty folder (the "
            "cells' folders are removed once scored).",
            parameter="work_dir",
        )
    folder.mkdir(parents=True, exist_ok=True)
    mark.touch()
    return folder


def _progress(cells: list) -> Any:
    from tqdm.auto import tqdm

    return tqdm(cells, desc="learning curve", unit="cell", disable=None)


def _zero_shot(model, clips: CurveCorpus, scenario: str, work: Path, results: ResultFile) -> None:
    from ..evaluation.evaluate_model import CorpusSource, evaluate_model

    started = time.perf_counter()
    test_rows = clips.rows_of(clips.test_speakers, scenario)
    folder = clips.link_folder(work / f"zero-shot-{scenario}", test_rows, scenario=scenario)
    source = CorpusSource("folder", str(folder), options={"label_regex": LABEL_REGEX, "speaker_regex": SPEAKER_REGEX})
    report = evaluate_model(str(model), source, speakers=list(clips.test_speakers), labels=clips.labels)
    (metrics,) = report["evaluation"].values()
    results.add(_cell(scenario, "zero-shot", 0, None, _scores(metrics), time.perf_counter() - started))


def _draw_cell(model, clips: CurveCorpus, scenario, k, draw, arms, work, results, keep_models) -> None:
    """The arms of one draw (`draw`) at k, each through :func:`ser_hf.adaptation.adapt`."""
    from ..adaptation import adapt
    from ..adaptation.adapt import LABELLED_ONLY_FOLDER, SELF_TRAINING_SUFFIX

    wanted = [arm for arm in arms if arm != "zero-shot" and not results.done(_key(scenario, arm, k, draw))]
    if not wanted:
        return
    test_rows = clips.rows_of(clips.test_speakers, scenario)
    pool = clips.rows_of(clips.adapt_speakers, scenario)
    cell_dir = work / f"{scenario}-k{k}-draw{draw}"
    patterns = {"label_regex": LABEL_REGEX, "speaker_regex": SPEAKER_REGEX}
    common = dict(test_speakers=list(clips.test_speakers), seed=draw, corpus_options=patterns)
    budget = k * len(clips.labels)

    def remove(*folders: Path) -> None:
        """The folders this experiment had the adaptation write (a model per cell)."""
        for folder in folders if not keep_models else ():
            if folder.is_dir():
                shutil.rmtree(folder)

    def adapted_cell(arm: str, rows: list[int], started: float, **extra) -> None:
        """Adapt on the clips `rows` (an emotion they lack keeps the model's own row), score the test speakers on
        every label scored, and record the cell."""
        present = [label for label in clips.labels if label in {clips.label_of[row] for row in rows}]
        output = cell_dir / arm
        if len(present) < 2:  # ser-hf adapt needs clips of two emotions: the user keeps the model
            zero = next(c for c in results.cells if c["key"] == _key(scenario, "zero-shot", 0, None))
            scores = {name: zero[name] / 100 for name in ("unweighted_accuracy", "accuracy", "macro_f1")}
            scores["test_clips"] = zero["test_clips"]
            cell = {**_cell(scenario, arm, k, draw, scores, time.perf_counter() - started), "kept": "not adapted"}
        else:
            folder = clips.link_folder(cell_dir / f"{arm}-labelled", list(rows) + list(test_rows), scenario=scenario)
            if "unlabelled_dir" not in extra:  # the adaptation speakers' other recordings: statistics only
                others = [row for row in pool if row not in set(rows)]
                unlabelled = clips.link_folder(cell_dir / f"{arm}-unlabelled", others, True, scenario)
                extra = {**extra, "unlabelled_dir": unlabelled, "self_train": False}
            report = adapt(model, folder, output, labels=clips.labels, **common, **extra)
            scores = _scores(report.evaluation["test"].to_dict())
            cell = {**_cell(scenario, arm, k, draw, scores, time.perf_counter() - started), **_estimate(output)}
            if cell["estimate_ua"] is not None:
                low, high = cell["estimate_interval"]
                cell["covered"] = low <= cell["unweighted_accuracy"] <= high
        missing = [label for label in clips.labels if label not in present]
        results.add({**cell, "labelled_clips": len(rows), "missing_labels": missing})
        remove(output)

    if "random" in wanted:
        started = time.perf_counter()
        adapted_cell("random", draw_unstratified(pool, budget, draw), started)
    if "suggested" in wanted:
        started = time.perf_counter()
        adapted_cell("suggested", _suggested_rows(model, clips, pool, budget, draw, cell_dir, scenario), started)
    oracle = draw_clips(
        [clips.label_of[row] for row in pool],
        [clips.speaker_of[row] for row in pool],
        clips.adapt_speakers,
        k,
        draw,
        at_most=scenario != "ordinary",
    )
    oracle = [pool[row] for row in oracle]
    if "oracle" in wanted:
        adapted_cell("oracle", oracle, time.perf_counter())
    if "oracle+self-training" in wanted:
        started = time.perf_counter()
        unlabelled = clips.link_folder(
            cell_dir / "unlabelled", [row for row in pool if row not in set(oracle)], True, scenario
        )
        adapted_cell("oracle+self-training", oracle, started, unlabelled_dir=unlabelled)
        remove(cell_dir / f"oracle+self-training{SELF_TRAINING_SUFFIX}" / LABELLED_ONLY_FOLDER)


def _suggested_rows(
    model, clips: CurveCorpus, pool_rows, budget: int, draw: int, cell_dir: Path, scenario: str
) -> list[int]:
    """The first `budget` rows of the sheet ``ser-hf suggest`` writes for the adaptation speakers' clips (its
    clustering seeded by `draw`): what a user following the suggestions labels with that budget."""
    from ..adaptation.suggest import suggest

    pool = clips.link_folder(cell_dir / "pool", pool_rows, True, scenario)
    sheet = cell_dir / "suggested.csv"
    if sheet.exists():
        sheet.unlink()  # this experiment's own sheet, left by an interrupted cell
    per_emotion = -(-budget // len(clips.labels))
    found = suggest(model, pool, sheet, per_emotion=per_emotion, speaker_regex=SPEAKER_REGEX, seed=draw)
    return [pool_rows[int(Path(row.path).stem.rsplit(LINK_SEPARATOR, 1)[1])] for row in found.rows[:budget]]


def _scores(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A split's UA, WA and macro-F1 (fractions) and its clips."""
    return {
        **{name: float(metrics[name]) for name in ("unweighted_accuracy", "accuracy", "macro_f1")},
        "test_clips": int(metrics["clips"]),
    }


def _estimate(output: Path) -> dict[str, Any]:
    """What the adaptation in `output` kept and its own cross-validated estimate (``adaptation.json``)."""
    from ..run_record import read_adaptation_record

    selection = read_adaptation_record(output)["selection"]
    estimate, before = selection["estimate"], selection.get("before_adaptation") or {}
    return {
        "kept": selection["chosen"],
        "statistics_rule": selection.get("statistics_rule"),
        "estimate_ua": estimate["ua"],
        "estimate_interval": [estimate["low"], estimate["high"]],
        "estimate_level": estimate.get("confidence_level"),
        "estimate_before_ua": before.get("ua"),
        "nested_gain": selection.get("nested_gain_over_unchanged"),
    }


def _cell(scenario: str, arm: str, k: int, draw: Optional[int], scores: Mapping[str, Any], seconds: float) -> dict:
    """A finished cell: its key, the scores in % and the seconds it took."""
    return {
        "key": _key(scenario, arm, k, draw),
        "scenario": scenario,
        "arm": arm,
        "k": k,
        "draw": draw,
        **{name: round(100 * float(scores[name]), 2) for name in ("unweighted_accuracy", "accuracy", "macro_f1")},
        "test_clips": int(scores["test_clips"]),
        "seconds": round(seconds, 1),
    }


__all__ = [
    "ARMS",
    "SCENARIOS",
    "draw_clips",
    "draw_unstratified",
    "run_learning_curve",
    "scenario_of",
    "summarize",
    "summary_table",
]
