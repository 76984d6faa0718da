"""The speaker-leakage study: how much a random (clip-level) split inflates a recipe's scores.

What it trains and writes is the help of ``ser-hf leakage-study`` (:mod:`ser_hf.cli.leakage_study`):
:func:`run_leakage_study` trains the recipe under its speaker-independent split and under a random split of the same
clips with the same sizes (the two cells of :class:`LeakageStudy`, trained by
:func:`~ser_hf.experiments.protocol.train_cells` as every protocol's cells are), audits both, and writes
``leakage.json``, ``leakage.md`` and ``leakage.png``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from datasets import Dataset, DatasetDict

from ..atomic_files import save_figure, write_text_atomic
from ..data.audit import LeakageReport, audit_leakage
from ..data.dataset_info import column_values, get_ser_info, set_ser_info
from ..data.splits import SplitError, random_split
from ..errors import RecipeError
from ..evaluation.bootstrap import format_intervals
from ..evaluation.constants import METRIC_LABELS, SCALAR_METRICS, view_metrics
from ..recipe.recipe import Recipe
from ..run_folder import RUN_CONFIG_FILE
from ..run_record import RunReport
from .protocol import SPLIT_KEYS, Protocol, train_cells

logger = logging.getLogger(__name__)

#: The two runs of a study, by folder name.
SPEAKER_RUN = "speaker_independent"
RANDOM_RUN = "random"
LEAKAGE_JSON = "leakage.json"
LEAKAGE_MARKDOWN = "leakage.md"
LEAKAGE_PNG = "leakage.png"
#: The metrics the study's table and plot show (all scalar metrics are in leakage.json).
SHOWN_METRICS = view_metrics("leakage")


def matched_random_fractions(sizes: Mapping[str, int]) -> tuple[float, float]:
    """``(test_size, validation_size)`` for :func:`ser_hf.data.splits.random_split` that give exactly ``sizes``' test
    and validation counts: `datasets` rounds the test share up (``ceil``), then the validation share of the rest, so
    each share is aimed half a clip below its count."""
    total = sum(sizes.values())
    n_test, n_validation = sizes.get("test", 0), sizes.get("validation", 0)
    if not n_test:
        raise SplitError(f"matched_random_fractions needs a test split, got sizes {dict(sizes)}.")
    test_size = (n_test - 0.5) / total
    if not n_validation:
        return test_size, 0.0
    # random_split takes validation_size as a share of all clips and rescales it by 1 / (1 - test_size).
    validation_size = (n_validation - 0.5) * (total - n_test + 0.5) / (total * (total - n_test))
    return test_size, validation_size


def matched_random_split(dataset: Dataset, speaker_splits: DatasetDict, seed: int = 42) -> DatasetDict:
    """A clip-level random split (stratified by label) of the clips ``speaker_splits`` uses, with the same size for
    every split. A speaker split without a test split (RAVDESS actors 01-16 / 17-20 on a copy without actors 21-24)
    gets a random train / validation split."""
    if "train" not in speaker_splits or not {"validation", "test"} & set(speaker_splits):
        raise SplitError(
            f"The leakage study needs a training split and a held-out one; the speaker split has "
            f"{', '.join(speaker_splits)}."
        )
    used = set().union(*(column_values(split, "path") for split in speaker_splits.values()))
    subset = dataset.select([row for row, path in enumerate(column_values(dataset, "path")) if path in used])
    sizes = {name: len(split) for name, split in speaker_splits.items()}
    if len(subset) != sum(sizes.values()):
        raise SplitError(
            f"The speaker split's clips ({sum(sizes.values())}) are not distinct paths of the dataset "
            f"({len(subset)} found): cannot draw a random split of the same clips."
        )
    if "test" in sizes:
        test_size, validation_size = matched_random_fractions(sizes)
        splits = random_split(subset, test_size=test_size, validation_size=validation_size, seed=seed)
    else:  # draw the held-out clips as random_split's test split, and name them validation
        test_size, _ = matched_random_fractions({"train": sizes["train"], "test": sizes["validation"]})
        drawn = random_split(subset, test_size=test_size, validation_size=0.0, seed=seed)
        splits = DatasetDict({"train": drawn["train"], "validation": set_ser_info(drawn["test"], split="validation")})
    got = {name: len(split) for name, split in splits.items()}
    if got != sizes:
        raise SplitError(f"The random split has sizes {got}, not the speaker split's {sizes}.")
    return splits


def _inflation(speaker: Mapping[str, float], leaky: Mapping[str, float]) -> dict[str, dict[str, float]]:
    rows = {}
    for metric in SCALAR_METRICS:
        a, b = speaker[metric], leaky[metric]
        rows[metric] = {SPEAKER_RUN: a, RANDOM_RUN: b, "difference": b - a, "ratio": b / a if a else None}
    return rows


def study_report(
    reports: Mapping[str, RunReport],
    audits: Mapping[str, LeakageReport],
    recipe: str,
    model_type: str,
    corpora: Sequence[str],
) -> dict[str, Any]:
    """What the study found: split sizes, both audits, the scores of each run and the inflation of every metric on
    every split both runs evaluated (random minus speaker-independent, in absolute terms, and their ratio)."""
    splits = [name for name in ("test", "validation") if all(name in report.evaluation for report in reports.values())]
    return {
        "recipe": recipe,
        "model_type": model_type,
        "corpora": list(corpora),
        "split_sizes": {name: report.split.clips for name, report in reports.items()},
        "speakers": {
            name: {split: len(speakers) for split, speakers in report.split.speakers.items()}
            for name, report in reports.items()
        },
        "audits": {name: audit.to_dict() for name, audit in audits.items()},
        "metrics": {
            name: {
                split: {m: metrics.metric(m) for m in SCALAR_METRICS} for split, metrics in report.evaluation.items()
            }
            for name, report in reports.items()
        },
        "intervals": {
            name: {split: report.evaluation[split].confidence_intervals for split in splits}
            for name, report in reports.items()
        },
        "inflation": {
            split: _inflation(
                reports[SPEAKER_RUN].evaluation[split].to_dict(), reports[RANDOM_RUN].evaluation[split].to_dict()
            )
            for split in splits
        },
    }


def format_study(study: Mapping[str, Any], audits: Mapping[str, LeakageReport]) -> str:
    """The study as Markdown: one table per split (speaker-independent, random, inflation), then both audits."""
    sizes = study["split_sizes"][SPEAKER_RUN]
    random_audit = study["audits"][RANDOM_RUN]
    shared = sorted({s for speakers in random_audit["speaker_overlap"].values() for s in speakers})
    lines = [
        f"# Speaker leakage: {study['model_type']} on {', '.join(study['corpora'])}",
        "",
        f"Recipe `{study['recipe']}`, trained twice on the same {sum(sizes.values())} clips with the same split "
        f"sizes ({', '.join(f'{name} {count}' for name, count in sizes.items())}): once with every speaker in "
        f"one split (speaker-independent), once with the clips split at random (stratified by label), which puts "
        f"{len(shared)} speaker(s) in more than one split.",
    ]
    for split, rows in study["inflation"].items():
        lines += [
            "",
            f"## {split} split",
            "",
            "| metric | speaker-independent | random split | inflation |",
            "|---|---:|---:|---:|",
        ]
        for metric in SHOWN_METRICS:
            row = rows[metric]
            ratio = f" ({row['ratio']:.2f}x)" if row["ratio"] else ""
            lines.append(
                f"| {METRIC_LABELS[metric]} | {100 * row[SPEAKER_RUN]:.1f} % | "
                f"{100 * row[RANDOM_RUN]:.1f} % | {100 * row['difference']:+.1f} points{ratio} |"
            )
        for name, label in ((SPEAKER_RUN, "Speaker-independent"), (RANDOM_RUN, "Random split")):
            intervals = format_intervals(study.get("intervals", {}).get(name, {}).get(split))
            if intervals:
                lines += ["", f"{label}: {intervals}"]
    lines += [
        "",
        "## Audits",
        "",
        "Speaker-independent split:",
        "",
        audits[SPEAKER_RUN].to_markdown(),
        "Random split:",
        "",
        audits[RANDOM_RUN].to_markdown(),
    ]
    return "\n".join(lines)


def plot_study(study: Mapping[str, Any], path: str | Path, split: str = "test") -> None:
    """Bars of each metric under both protocols, annotated with the inflation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = study["inflation"][split]
    positions = np.arange(len(SHOWN_METRICS))
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for offset, (run, label, colour) in zip(
        (-0.2, 0.2),
        ((SPEAKER_RUN, "speaker-independent", "tab:blue"), (RANDOM_RUN, "random split (leaks speakers)", "tab:red")),
    ):
        values = [100 * rows[m][run] for m in SHOWN_METRICS]
        bars = axes.bar(positions + offset, values, 0.4, label=label, color=colour)
        axes.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8, padding=2)
    for position, metric in zip(positions, SHOWN_METRICS):
        top = 100 * max(rows[metric][SPEAKER_RUN], rows[metric][RANDOM_RUN])
        axes.annotate(
            f"{100 * rows[metric]['difference']:+.1f}",
            (position, min(top + 8, 97)),
            ha="center",
            fontsize=9,
            fontweight="bold",
        )
    axes.set_xticks(positions, [METRIC_LABELS[m] for m in SHOWN_METRICS])
    axes.set_ylim(0, 105)
    axes.set_ylabel(f"{split} score (%)")
    axes.set_title(f"{study['model_type']}, {split} split: same clips and split sizes, speakers kept apart or not")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8, frameon=False)
    save_figure(figure, path)


#: The recipe keys the random run sets itself (its recipe.yaml writes them with the values it ran with).
RANDOM_SPLIT_KEYS = (
    "split_protocol",
    "test_size",
    "validation_size",
    "train_speakers",
    "validation_speakers",
    "test_speakers",
)


class LeakageStudy(Protocol):
    """The study's two cells: the recipe's speaker-independent split and a random split of the same clips with the
    same sizes (:func:`matched_random_split`), each audited and trained (or read back, or resumed) in its folder of
    the study's ``output_dir``. It keeps no result file: ``leakage.json`` is its report (:func:`run_leakage_study`).

    Args:
        recipe_args (`Sequence[str]`): ``RECIPE.yaml [--key value ...]``, as ``ser-hf train`` takes them.
    """

    experiment = "leakage-study"
    title = "ser-hf leakage-study"
    sets_how = "nothing: the recipe's speaker split is one of its two"
    keeps = SPLIT_KEYS
    also_sets = ()

    def __init__(self, recipe_args: Sequence[str]):
        self.parsed = Recipe.parse(list(recipe_args))
        self.recipe = recipe_args[0] if recipe_args and not recipe_args[0].startswith("-") else "(command line)"
        self.study_dir = Path(self.parsed.training.output_dir)
        self.audits: dict[str, LeakageReport] = {}

    def check(self) -> None:
        data_args = self.parsed.data
        if data_args.split_protocol != "speaker":
            raise RecipeError(
                f"leakage-study compares a speaker-independent train/validation/test split with a random "
                f"one; {self.recipe} has split_protocol {data_args.split_protocol!r}: use a recipe with "
                "split_protocol: speaker."
            )
        if (self.study_dir / RUN_CONFIG_FILE).is_file():
            raise RecipeError(
                f"{self.study_dir} holds a training run; the study needs a folder of its own: set --output_dir."
            )

    def cells(self) -> dict[str, Any]:
        """Each run's splits and data arguments: the recipe's corpus and input mode prepared as ser_hf.train prepares
        them (both runs read them), its speaker split, then a random split of the same clips with the same sizes."""
        from ..training.data_stage import audit_split, make_folds, prepare_recipe_data

        data_args = self.parsed.data
        self.input_mode, dataset = prepare_recipe_data(self.parsed)
        ((_, speaker_splits),) = make_folds(dataset, data_args)
        self.audits[SPEAKER_RUN] = audit_split(speaker_splits)
        random_splits = matched_random_split(dataset, speaker_splits, seed=data_args.split_seed)
        self.audits[RANDOM_RUN] = audit_leakage(random_splits, raise_on_leakage=False)
        # The random run's configuration records the shares random_split drew its held-out clips with.
        shares = get_ser_info(random_splits["train"])
        drawn = ("random", shares["test_size"], shares["validation_size"], None, None, None)
        random_data_args = dataclasses.replace(data_args, **dict(zip(RANDOM_SPLIT_KEYS, drawn)))
        return {SPEAKER_RUN: (speaker_splits, data_args), RANDOM_RUN: (random_splits, random_data_args)}

    def train(self, todo):
        from ..training.export_stage import finish_run
        from ..training.train_stage import train_and_evaluate

        for run, (splits, data_args) in todo:
            logger.info("Leakage study: training the %s run into %s", run, self.study_dir / run)
            recipe = self.parsed.replace(data=data_args, output_dir=str(self.study_dir / run))
            report = train_and_evaluate(recipe, splits, leakage_report=self.audits[run], input_mode=self.input_mode)
            # Each run's recipe.yaml and card, as for any run; never pushed (a random-split model is not a result).
            # The random run's recipe is the study's with its split keys (protocol, the shares the study drew, no
            # speaker lists) written too, so that it runs again as it ran.
            given = {*self.parsed.given, "output_dir", *(RANDOM_SPLIT_KEYS if run == RANDOM_RUN else ())}
            finish_run(recipe.replace(push_to_hub=False, given=given), [report])
            yield {"key": run, "report": report}, report.evaluation.get("test")

    def summarize(self, cells: list[dict]) -> dict[str, Any]:
        """What the study found (:func:`study_report`) from its two runs' reports."""
        reports = {cell["key"]: cell["report"] for cell in cells}
        model_args, data_args = self.parsed.model, self.parsed.data
        return study_report(reports, self.audits, self.recipe, model_args.model_type, data_args.corpus)


def run_leakage_study(recipe_args: Sequence[str]) -> dict[str, Any]:
    """Run the study for ``RECIPE.yaml [--key value ...]`` (:class:`LeakageStudy`); returns what ``leakage.json``
    holds."""
    study = LeakageStudy(recipe_args)
    study.check()
    report = study.summarize([row for row, _ in train_cells(study)])
    report["output_dir"] = str(study.study_dir)
    if study.parsed.training.should_save:
        study.study_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(study.study_dir / LEAKAGE_JSON, json.dumps(report, indent=2, default=str) + "\n")
        write_text_atomic(study.study_dir / LEAKAGE_MARKDOWN, format_study(report, study.audits))
        split = "test" if "test" in report["inflation"] else "validation"
        plot_study(report, study.study_dir / LEAKAGE_PNG, split=split)
    return report


__all__ = [
    "LeakageStudy",
    "format_study",
    "matched_random_fractions",
    "matched_random_split",
    "plot_study",
    "run_leakage_study",
    "study_report",
]
