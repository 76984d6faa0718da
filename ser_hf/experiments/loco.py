"""Leave-one-corpus-out accuracy of a recipe: ``ser-hf loco RECIPE.yaml --seeds 42 7 43 --output result.json``.

The recipe's corpora (its ``corpus``/``data_dir`` lists, or ``corpora`` of them) are loaded merged, and each is
left out in turn: the recipe trains on every speaker of the others for its fixed epochs (no validation speakers: the
protocol chooses nothing on them, so a recipe that picks its epoch on them is refused) and is tested on every speaker
of the one left out. It trains on every emotion its training corpora hold (the recipe's ``labels`` where it sets
them), as the recipe trains; the left-out corpus is scored on its own emotions that the model has, among those every
one of the recipe's corpora holds (:func:`scored_labels`), the model's choice restricted to them
(:func:`restrict_choice`, as ``ser-hf evaluate`` scores a corpus on the labels it shares with a model). Each corpus'
statistics are over its clips in play. This is the protocol of BENCHMARKS.md's headline ("Headline:
leave-one-corpus-out"): its rows are this experiment on the four corpora with their seeds.

A cell is one (left-out corpus, training seed, normalisation); each trains through the training stages
(:func:`ser_hf.training.train_stage.train_and_evaluate`) in its own folder, so a finished cell is read back and an
interrupted one resumes from its last checkpoint, and the result file
(:class:`~ser_hf.experiments.results.ResultFile`) is written after every cell. :class:`LeaveOneCorpusOut` is the
protocol, run by :func:`~ser_hf.experiments.protocol.run_protocol` (what every protocol shares: the overrides, the
clips' fingerprint that refuses a result file written on other clips or by another recipe, resuming, the summary).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..emotions import EMOTIONS
from ..errors import RecipeError
from .protocol import Protocol, cell_scores, parse_values, read_values, run_protocol, selects_on_validation

logger = logging.getLogger(__name__)

EXPERIMENT = "loco"
#: What each normalisation needs besides the clip itself (the left-out corpus' statistics are transductive).
NORMALIZATIONS = {
    "global": "the single clip",
    "utterance": "the single clip",
    "corpus": "the corpus' unlabelled clips",
    "speaker": "the speaker's unlabelled clips",
}
#: The folder of the cells of a normalisation (the recipe's own: ``recipe``) and training seed.
CELL_FOLDER = "{normalization}-seed{seed}"


# --- The corpora and their labels ---------------------------------------------------------------------------------


def _as_list(value: Any) -> list:
    return [] if value is None else [value] if isinstance(value, (str, os.PathLike)) else list(value)


def corpus_names(values: Mapping[str, Any]) -> list[str]:
    """The names the recipe's corpora carry in the merged dataset (its ``corpus`` column, the prefix of its speakers):
    ``corpus_name`` where given, a folder corpus' folder name, or the corpus' own name."""
    from ..data.constants import canonical_corpus_name
    from ..data.corpora.folder import folder_corpus_name
    from ..data.corpus_settings import options_of_each_corpus

    corpora, data_dirs = _as_list(values.get("corpus")), _as_list(values.get("data_dir"))
    if len(corpora) != len(data_dirs):
        raise RecipeError(f"corpus names {len(corpora)} corpora but data_dir {len(data_dirs)} folders: give one each.")
    names = []
    for loader, data_dir, options in zip(
        corpora, data_dirs, options_of_each_corpus(corpora, values.get("corpus_options"))
    ):
        name = options.get("corpus_name")
        if not name and str(loader).lower() == "folder":
            name = folder_corpus_name(data_dir)
        names.append(canonical_corpus_name(str(name or loader)))
    return names


def shared_labels(labels_of: Mapping[str, Sequence[str]], corpora: Sequence[str]) -> list[str]:
    """The emotions every corpus of `corpora` holds (`labels_of`: each corpus' emotions), in ser-hf's order."""
    return [emotion for emotion in EMOTIONS if all(emotion in labels_of[name] for name in corpora)]


def training_labels(labels_of: Mapping[str, Sequence[str]], sources: Sequence[str]) -> list[str]:
    """The emotions any corpus of `sources` holds, in ser-hf's order: what the recipe trains on with them."""
    return [emotion for emotion in EMOTIONS if any(emotion in labels_of[name] for name in sources)]


def scored_labels(own: Sequence[str], model_labels: Sequence[str], shared: Sequence[str]) -> list[str]:
    """The emotions a left-out corpus is scored on: its `own` that the model has (`model_labels`), among `shared`
    (those every corpus of the benchmark holds, so that each left-out corpus is scored on the same emotions where it
    has them)."""
    return [label for label in shared if label in own and label in model_labels]


def restrict_choice(evaluation: Mapping[str, Any], labels: Sequence[str]) -> dict:
    """An evaluation (a report's ``evaluation["test"]`` as a dict) of clips of `labels` by a model trained on more,
    scored again with the model's choice restricted to them (:func:`~ser_hf.evaluation.shared_labels.scores_among`,
    as ``ser-hf evaluate`` scores a corpus on the labels it shares with a model): its metrics and speaker-bootstrap
    intervals from its ``clip_predictions``, each clip's scores of those emotions renormalised."""
    import numpy as np

    from ..evaluation.shared_labels import scores_among

    labels = list(labels)
    clips = evaluation["clip_predictions"]
    foreign = sorted({clip["label"] for clip in clips} - set(labels))
    if foreign:
        raise ValueError(f"clips of {', '.join(foreign)} in an evaluation meant for {', '.join(labels)} only")
    names = list(clips[0]["scores"]) if clips else labels
    probabilities = np.array([[clip["scores"][name] for name in names] for clip in clips]).reshape(-1, len(names))
    return scores_among(
        [clip["path"] for clip in clips],
        [clip["speaker_id"] for clip in clips],
        [clip["label"] for clip in clips],
        np.log(np.clip(probabilities, 1e-12, None)),
        names,
        labels,
    )


# --- The recipe on the merged corpora -------------------------------------------------------------------------------


def in_play_values(
    recipe: str | os.PathLike,
    values: Mapping[str, Any],
    corpora: Optional[Sequence[str]] = None,
    model_paths: Optional[Mapping[str, str]] = None,
) -> tuple[dict[str, Any], list[str]]:
    """The recipe's `values` (its overrides applied) on its merged corpora in play (`corpora` of them, by name; all by
    default), its split keys dropped, and the names of the corpora in play. `model_paths` loads a local folder wherever
    ``model_name_or_path`` names a Hub checkpoint."""
    from ..model_location import with_model_path

    values = LeaveOneCorpusOut.without_split(values)
    if selects_on_validation(values):
        raise RecipeError(
            f"{recipe} chooses its epoch on validation speakers; leave-one-corpus-out trains on every speaker of the "
            "other corpora for fixed epochs: set load_best_model_at_end: false and no early_stopping_patience (in "
            "the recipe or its overrides)."
        )
    names = corpus_names(values)
    if len(set(names)) != len(names):
        raise RecipeError(f"{recipe} names a corpus twice ({', '.join(names)}): give each a corpus_name.")
    in_play = names if corpora is None else [name for name in names if name in set(corpora)]
    unknown = sorted(set(corpora or ()) - set(names))
    if unknown:
        raise RecipeError(
            f"corpora {' '.join(unknown)}: not among the recipe's corpora ({', '.join(names)}).", parameter="corpora"
        )
    if len(in_play) < 2:
        raise RecipeError(
            f"leave-one-corpus-out needs two corpora at least (one to train on, one to leave out); {recipe} puts "
            f"{', '.join(in_play) or 'none'} in play: list more under corpus and data_dir (in the recipe or its "
            "overrides)."
        )
    keep = [index for index, name in enumerate(names) if name in in_play]
    values["corpus"] = [_as_list(values["corpus"])[index] for index in keep]
    values["data_dir"] = [str(_as_list(values["data_dir"])[index]) for index in keep]
    if isinstance(values.get("corpus_options"), list):
        values["corpus_options"] = [values["corpus_options"][index] for index in keep]
    if isinstance(values.get("corpus_weights"), Mapping):
        # A corpus out of play draws nothing; the others keep their weights.
        values["corpus_weights"] = {
            key: weight for key, weight in values["corpus_weights"].items() if str(key).lower() in in_play
        }
    values = with_model_path(values, model_paths)
    values.update(split_protocol="speaker", report_to="none", push_to_hub=False)
    return values, in_play


def loco_values(
    recipe: str | os.PathLike,
    overrides: Optional[Mapping[str, Any]] = None,
    *,
    corpora: Optional[Sequence[str]] = None,
    model_paths: Optional[Mapping[str, str]] = None,
) -> tuple[dict[str, Any], list[str]]:
    """The values the protocol trains (:func:`in_play_values`) of the file `recipe` changed by `overrides` (recipe
    keys to values, a dotted key setting one entry of a mapping), and the names of the corpora in play."""
    _, values = read_values(LeaveOneCorpusOut, recipe, overrides or {})
    return in_play_values(recipe, values, corpora, model_paths)


def cell_values(values: Mapping[str, Any], seed: Optional[int], normalization: Optional[str], run_dir: Path) -> dict:
    """`values` (:func:`loco_values`) for one training `seed` and `normalization` (the recipe's where `None`), trained
    under `run_dir`."""
    from ..recipe.overrides import set_value

    cell = dict(values)
    if seed is not None:
        cell["seed"] = seed
    if normalization is not None:
        cell = set_value(cell, "feature_extractor_config.normalization", normalization)
    cell["output_dir"] = str(run_dir)
    return cell


def corpus_labels(dataset) -> dict[str, list[str]]:
    """The emotions each corpus of `dataset` (:func:`~ser_hf.experiments.protocol.load_corpora`) holds, by corpus
    name, in ser-hf's order: what a corpus trains on, and what it can be scored on."""
    from ..data.dataset_info import column_values

    names = dataset.features["label"].names
    held: dict[str, set[str]] = {}
    for corpus, label in zip(column_values(dataset, "corpus"), column_values(dataset, "label")):
        held.setdefault(corpus, set()).add(names[label])
    return {corpus: [emotion for emotion in EMOTIONS if emotion in labels] for corpus, labels in held.items()}


def train_left_out(
    values: Mapping[str, Any],
    left_out: str,
    *,
    corpora: Sequence[str],
    labels_of: Mapping[str, Sequence[str]],
    shared: Sequence[str],
    fold: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one cell: `values` (:func:`cell_values`) with `left_out` out of the corpora in play (`corpora`), on every
    speaker of the others, tested on every speaker of `left_out`, in the folder ``fold-{fold}`` of its output_dir (a
    finished run there is read back, an interrupted one resumed). `labels_of`: each corpus' emotions
    (:func:`corpus_labels`); `shared`: those the benchmark scores (:func:`scored_labels`). Returns the cell's row and
    the run's report (a dict, the test evaluation restricted to the scored emotions)."""
    from ..data.dataset_info import column_values
    from ..data.splits import speaker_split
    from ..evaluation.bootstrap import pooled_intervals
    from ..training.data_stage import audit_split, prepare_recipe_data
    from ..training.train_stage import train_and_evaluate

    sources = [name for name in corpora if name != left_out]
    model_labels = training_labels(labels_of, sources)
    if values.get("labels"):
        model_labels = [label for label in model_labels if label in values["labels"]]
    test_labels = scored_labels(labels_of[left_out], model_labels, shared)
    if not test_labels:
        raise RecipeError(f"{left_out} holds none of the emotions the model trained without it has among {shared}.")
    recipe = parse_values({**values, "labels": model_labels})
    input_mode, dataset = prepare_recipe_data(recipe)
    speakers_of: dict[str, set[str]] = {name: set() for name in corpora}
    for corpus, speaker in zip(column_values(dataset, "corpus"), column_values(dataset, "speaker_id")):
        speakers_of.setdefault(corpus, set()).add(speaker)
    train_speakers = sorted(s for name in sources for s in speakers_of[name])
    splits = speaker_split(dataset, train_speakers=train_speakers, test_speakers=sorted(speakers_of[left_out]))
    splits.pop("validation", None)  # none: the recipe trains on every source speaker for fixed epochs
    restricted = test_labels != model_labels
    if restricted:
        names = splits["test"].features["label"].names
        keep = {names.index(label) for label in test_labels}
        # Before training, so that the left-out corpus' statistics are over its clips in play.
        splits["test"] = splits["test"].filter(lambda label: label in keep, input_columns="label")
    report = train_and_evaluate(
        recipe, splits, fold=fold, leakage_report=audit_split(splits, fold), input_mode=input_mode
    ).to_dict()
    if restricted:
        report["evaluation"]["test"] = restrict_choice(report["evaluation"]["test"], test_labels)
    test = report["evaluation"]["test"]
    row = {
        "train": "+".join(sources),
        "test": left_out,
        "train_speakers": len(train_speakers),
        "test_speakers": len(speakers_of[left_out]),
        "train_clips": len(splits["train"]),
        "test_clips": len(splits["test"]),
        "model_labels": model_labels,
        "scored_labels": test_labels,
        "minutes": round(report["training"]["wall_seconds"] / 60, 2),
        **cell_scores(test),
        "confidence_intervals": pooled_intervals([test]),
    }
    return row, report


# --- The protocol -------------------------------------------------------------------------------------------------


def cell_key(left_out: str, seed: Optional[int], normalization: Optional[str]) -> str:
    return f"{left_out}/seed={seed}/normalization={normalization or 'recipe'}"


class LeaveOneCorpusOut(Protocol):
    """Leave-one-corpus-out (module docstring): a cell per training seed, normalisation and left-out corpus, each
    trained by :func:`train_left_out` in its own folder.

    Args:
        seeds (`Sequence[int]`, *optional*): training seeds, each a run of every cell (default: the recipe's).
        normalizations (`Sequence[str]`, *optional*): ``feature_extractor_config.normalization`` values, each a run
            of every cell (default: the recipe's).
        corpora (`Sequence[str]`, *optional*): the recipe's corpora in play, by name (default: all).
        score_labels (`Sequence[str]`, *optional*): a left-out corpus is scored on its emotions among these (default:
            those every corpus in play holds).
    """

    experiment = EXPERIMENT
    title = "ser-hf loco"
    sets_how = "each corpus left out in turn, into run_dir"
    run_suffix = "-loco"

    def __init__(
        self,
        seeds: Optional[Sequence[int]] = None,
        normalizations: Optional[Sequence[str]] = None,
        corpora: Optional[Sequence[str]] = None,
        score_labels: Optional[Sequence[str]] = None,
    ):
        self.seeds, self.normalizations, self.corpora = seeds, normalizations, corpora
        self.score_labels = list(score_labels) if score_labels else None

    def check(self) -> None:
        unknown = sorted(set(self.normalizations or ()) - set(NORMALIZATIONS))
        if unknown:
            raise RecipeError(
                f"normalizations {' '.join(unknown)}: choose among {', '.join(NORMALIZATIONS)}.",
                parameter="normalizations",
            )
        unknown = [label for label in self.score_labels or () if label not in EMOTIONS]
        if unknown:
            raise RecipeError(
                f"score_labels {' '.join(unknown)}: not emotions of ser-hf ({', '.join(EMOTIONS)}).",
                parameter="score_labels",
            )

    def resolve(self, recipe, raw, values, run_dir, overrides, model_paths) -> None:
        self.values, self.in_play = in_play_values(recipe, values, self.corpora, model_paths)
        self.run_dir = run_dir
        self.seed_list = list(self.seeds) if self.seeds else [self.values.get("seed")]
        own = (self.values.get("feature_extractor_config") or {}).get("normalization")
        self.normalization_list = list(self.normalizations) if self.normalizations else [own]

    def settings(self) -> dict[str, Any]:
        return {
            "corpora": self.in_play,
            "data_dir": self.values["data_dir"],
            "seeds": self.seed_list,
            "normalizations": self.normalization_list,
            "run_dir": str(self.run_dir),
            "score_labels": self.score_labels,
        }

    def cells(self) -> dict[str, Any]:
        return {
            cell_key(corpus, seed, normalization): (seed, normalization, corpus)
            for seed in self.seed_list
            for normalization in self.normalization_list
            for corpus in self.in_play
        }

    def train(self, todo):
        from ..run_folder import fold_folder
        from ..training.run_recipe import setup_logging

        total = len(self.cells())
        setup_logging(parse_values(self.values).training)
        logger.info(
            "Leave-one-corpus-out: %d cells (%s left out; seeds %s; statistics %s), %d read back from %s",
            total,
            ", ".join(self.in_play),
            ", ".join(map(str, self.seed_list)),
            ", ".join(n or "the recipe's" for n in self.normalization_list),
            total - len(todo),
            self.result_path,
        )
        labels_of = corpus_labels(self.dataset)
        missing = [name for name in self.in_play if name not in labels_of]
        if missing:
            raise RecipeError(f"{', '.join(missing)}: no clip loaded; check data_dir.")
        # Scored on the emotions all of the recipe's corpora in play share, where the left-out corpus has them.
        shared = self.score_labels or shared_labels(labels_of, self.in_play)
        for done, (key, (seed, normalization, corpus)) in enumerate(todo, start=total - len(todo) + 1):
            folder = self.run_dir / CELL_FOLDER.format(normalization=normalization or "recipe", seed=seed)
            statistics = normalization or "the recipe's"
            logger.info("Cell %d/%d: %s left out, seed %s, %s statistics", done, total, corpus, seed, statistics)
            fold = self.in_play.index(corpus)
            row, report = train_left_out(
                cell_values(self.values, seed, normalization, folder),
                corpus,
                corpora=self.in_play,
                labels_of=labels_of,
                shared=shared,
                fold=fold,
            )
            logger.info(
                "Cell %d/%d: %s left out (trained on %s): UA %.1f, WA %.1f, macro-F1 %.1f on %s",
                done,
                total,
                corpus,
                row["train"],
                row["unweighted_accuracy"],
                row["accuracy"],
                row["macro_f1"],
                ", ".join(row["scored_labels"]),
            )
            cell = {"key": key, "seed": seed, "normalization": normalization or "recipe", **row}
            yield {**cell, "run": str(folder / fold_folder(fold))}, report.get("evaluation", {}).get("test")

    def summarize(self, cells: list[dict]) -> dict[str, Any]:
        """For each normalisation: each left-out corpus' UA over the seeds (mean, min, max), and the mean over the
        corpora of each seed that left every one out (mean, min, max): BENCHMARKS.md's headline cells."""
        import numpy as np

        summary: dict[str, Any] = {}
        for normalization in dict.fromkeys(cell["normalization"] for cell in cells):
            by_seed: dict[Any, dict[str, float]] = {}
            for cell in cells:
                if cell["normalization"] == normalization:
                    by_seed.setdefault(cell["seed"], {})[cell["test"]] = cell["unweighted_accuracy"]
            entry: dict[str, Any] = {"left_out": {}}
            for corpus in self.in_play:
                values = [runs[corpus] for runs in by_seed.values() if corpus in runs]
                if values:
                    mean = round(float(np.mean(values)), 2)
                    entry["left_out"][corpus] = {"mean": mean, "min": min(values), "max": max(values)}
                    entry["left_out"][corpus]["seeds"] = len(values)
            all_left_out = [runs for runs in by_seed.values() if set(self.in_play) <= set(runs)]
            means = [float(np.mean([runs[c] for c in self.in_play])) for runs in all_left_out]
            if means:
                entry["mean"] = {
                    "mean": round(float(np.mean(means)), 2),
                    "min": round(min(means), 2),
                    "max": round(max(means), 2),
                    "seeds": len(means),
                }
            summary[str(normalization)] = entry
        return summary


def run_loco(
    recipe: str | os.PathLike,
    output: str | os.PathLike,
    *,
    seeds: Optional[Sequence[int]] = None,
    normalizations: Optional[Sequence[str]] = None,
    corpora: Optional[Sequence[str]] = None,
    model_paths: Optional[Mapping[str, str]] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    run_dir: Optional[str | os.PathLike] = None,
    score_labels: Optional[Sequence[str]] = None,
    command: Optional[str] = None,
) -> dict[str, Any]:
    """Leave each corpus of `recipe` (its values changed by `overrides`; `corpora` of them) out in turn
    (:class:`LeaveOneCorpusOut`), training into `run_dir` (default: the recipe's ``output_dir`` + ``-loco``), and
    write the result file `output` after every cell; cells it holds are skipped
    (:func:`~ser_hf.experiments.protocol.run_protocol`). Returns its document."""
    protocol = LeaveOneCorpusOut(seeds, normalizations, corpora, score_labels)
    return run_protocol(
        protocol, recipe, output, overrides=overrides, model_paths=model_paths, run_dir=run_dir, command=command
    )


def _interval(cell: Mapping[str, Any]) -> str:
    intervals = cell.get("confidence_intervals") or {}
    bounds = (intervals.get("intervals") or {}).get("unweighted_accuracy") if intervals.get("reliable") else None
    return f" [{100 * bounds[0]:.1f}, {100 * bounds[1]:.1f}]" if bounds else ""


def loco_row(document: Mapping[str, Any]) -> str:
    """The rows a user pastes beside BENCHMARKS.md's headline table, one per normalisation: each left-out corpus' UA
    (one seed: with its speaker interval; several: their mean and range), the mean over the corpora, the seeds."""
    from ..data.corpora import CORPORA

    corpora = document["settings"]["corpora"]
    header = ["recipe", "statistics", *[f"{CORPORA[c].full_name if c in CORPORA else c} left out" for c in corpora]]
    lines = ["| " + " | ".join([*header, "mean", "seeds"]) + " |", "|---|---|" + "---:|" * (len(corpora) + 2)]
    name = Path(document["settings"]["recipe"]).stem
    for normalization, entry in document["summary"].items():
        cells = []
        for corpus in corpora:
            stats = entry["left_out"].get(corpus)
            if stats is None:
                cells.append("–")
            elif stats["seeds"] == 1:
                only = next(
                    c for c in document["cells"] if c["normalization"] == normalization and c["test"] == corpus
                )
                cells.append(f"{stats['mean']:.1f}{_interval(only)}")
            else:
                cells.append(f"{stats['mean']:.1f} ({stats['min']:.1f}-{stats['max']:.1f})")
        mean = entry.get("mean")
        if mean is None:
            overall = "–"
        elif mean["seeds"] == 1:
            overall = f"**{mean['mean']:.1f}**"
        else:
            overall = f"**{mean['mean']:.1f}** ({mean['min']:.1f}-{mean['max']:.1f})"
        needs = NORMALIZATIONS.get(normalization)
        statistics = f"{normalization} ({needs})" if needs else "the recipe's"
        seeds = len({c["seed"] for c in document["cells"] if c["normalization"] == normalization})
        lines.append(f"| `{name}` | {statistics} | {' | '.join(cells)} | {overall} | {seeds} |")
    return "\n".join(lines)


__all__ = [
    "LeaveOneCorpusOut",
    "cell_values",
    "corpus_labels",
    "corpus_names",
    "in_play_values",
    "loco_row",
    "loco_values",
    "restrict_choice",
    "run_loco",
    "scored_labels",
    "shared_labels",
    "train_left_out",
    "training_labels",
]
