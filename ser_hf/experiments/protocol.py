"""What every evaluation protocol shares: :class:`Protocol`, the small class a protocol is, and :func:`run_protocol`,
which runs one.

A protocol (speaker k-fold, leave-one-speaker-out, leave-one-corpus-out) says only which cells exist (a fold, a
left-out corpus for a seed) and how a cell's splits are made and trained. :func:`run_protocol` does the rest, the same
way for each: it refuses a recipe override of a key the protocol sets itself, reads the recipe with its overrides,
records the resolved values and a fingerprint of the clips in the result file's settings (so that a result file is
never resumed by another recipe or on other clips, :class:`~ser_hf.experiments.results.ResultFile`), skips the cells
the result file holds (or, for a protocol whose training sequence resumes its own runs, reads every run back), scores
each cell, and writes the summary with its speaker-bootstrap interval.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Mapping, Optional

from ..errors import RecipeError
from .results import CLIPS_SETTING, ResultFile

#: A recipe's split keys: a protocol replaces them by its own split, except those it lets the recipe set (`keeps`).
SPLIT_KEYS = (
    "split_protocol",
    "train_speakers",
    "validation_speakers",
    "test_speakers",
    "test_size",
    "validation_size",
    "num_folds",
    "folds",
    "train_only_corpora",
)
#: The test metrics each cell records, in percent.
METRICS = ("unweighted_accuracy", "accuracy", "macro_f1")


def selects_on_validation(values: Mapping[str, Any]) -> bool:
    """Whether a recipe uses validation speakers to choose anything: its best epoch (``load_best_model_at_end``, on by
    default) or when to stop (``early_stopping_patience``)."""
    return bool(values.get("load_best_model_at_end", True)) or values.get("early_stopping_patience") is not None


def parse_values(values: Mapping[str, Any]):
    """The :class:`~ser_hf.recipe.Recipe` of `values`, parsed as ``ser-hf train`` parses a file (every key checked)."""
    from ..recipe import Recipe

    return Recipe.from_values(values)


def load_corpora(values: Mapping[str, Any]):
    """The clips of every corpus of `values` as ``ser-hf train`` loads them (the recipe's ``label_map`` and ``labels``
    applied, every clip checked and decoded once into the waveform cache that training then reads): one dataset with
    ``corpus``, ``path``, ``label`` and ``speaker_id`` columns."""
    from ..training.data_stage import load_dataset_from_args, recipe_shortest_clip

    recipe = parse_values(values)
    return load_dataset_from_args(
        recipe.data, shortest_clip=recipe_shortest_clip(recipe.model, recipe.data.sampling_rate)
    )


def cell_scores(evaluation: Mapping[str, Any]) -> dict[str, float]:
    """A cell's test metrics (:data:`METRICS`) in percent, as its result file row holds them."""
    return {name: round(100 * evaluation[name], 2) for name in METRICS}


class Protocol(abc.ABC):
    """An evaluation protocol: which cells exist and how each is trained; :func:`run_protocol` runs it.

    A subclass sets the class attributes and implements :meth:`resolve`, :meth:`settings`, :meth:`cells`,
    :meth:`train` and :meth:`summarize`; :meth:`check` and :meth:`clip_record` have defaults.
    """

    #: The protocol's name: the ``ser-hf`` command and the result file's ``experiment``.
    experiment: ClassVar[str]
    #: What refusals call it: the command that runs it (``ser-hf kfold``), or its name where none does.
    title: ClassVar[str]
    #: How the protocol sets the keys it sets, for the refusal of an override of one of them.
    sets_how: ClassVar[str]
    #: The split keys (:data:`SPLIT_KEYS`) a recipe still sets under the protocol.
    keeps: ClassVar[tuple[str, ...]] = ()
    #: Recipe keys besides the split's that the protocol sets.
    also_sets: ClassVar[tuple[str, ...]] = ("output_dir",)
    #: The end of the default runs' folder, after the recipe's ``output_dir``.
    run_suffix: str = ""
    #: Whether it trains an ensemble recipe (each member on the same cells).
    takes_ensembles: ClassVar[bool] = False
    #: Whether its cells are its runs as this call leaves them: the training sequence reads back or resumes each run
    #: itself, so every cell is recomputed (a run trained anew replaces the figure an earlier call wrote).
    rereads_runs: ClassVar[bool] = False
    #: Whether the summary pools the cells' test speakers with a speaker-bootstrap interval (``summary["pooled"]``).
    pools_cells: ClassVar[bool] = False

    #: The resolved values the cells train (set by :meth:`resolve`), and the clips they load (:meth:`clip_record`).
    values: dict[str, Any]
    dataset: Any = None
    #: The result file (set by :func:`run_protocol`), named in what the protocol logs.
    result_path: Optional[Path] = None

    @classmethod
    def sets(cls) -> tuple[str, ...]:
        """The recipe keys the protocol sets itself: a recipe override of one of them is refused."""
        return tuple(key for key in SPLIT_KEYS if key not in cls.keeps) + cls.also_sets

    @classmethod
    def without_split(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` without the split keys the protocol sets itself."""
        dropped = set(cls.sets()) & set(SPLIT_KEYS)
        return {key: value for key, value in values.items() if key not in dropped}

    def check(self) -> None:
        """Refuse the protocol's own arguments (a number of folds, unknown names) before the recipe is read."""

    def resolve(
        self,
        recipe: str | os.PathLike,
        raw: Mapping[str, Any],
        values: dict[str, Any],
        run_dir: Path,
        overrides: Mapping[str, Any],
        model_paths: Mapping[str, str],
    ) -> None:
        """Set :attr:`values` from the recipe file's `raw` values and those `overrides` changed (`values`), training
        under `run_dir`, ``model_name_or_path`` read from the local folder `model_paths` gives for it. Only
        :func:`run_protocol` calls it: a protocol that trains its cells through :func:`train_cells` alone (the leakage
        study) need not implement it."""
        raise TypeError(f"{type(self).__name__} is not run by run_protocol: it reads no recipe values (resolve)")

    def fingerprint(self) -> dict[str, Any]:
        """What the cells train (the result file's ``recipe_values``): the resolved values, sorted."""
        return {key: self.values[key] for key in sorted(self.values)}

    def clip_record(self) -> dict[str, Any]:
        """The clips the cells load (:func:`~ser_hf.data.splits.rows_fingerprint` of the merged corpora), loaded once
        into :attr:`dataset` for the cells."""
        from ..data.splits import clip_fingerprint

        self.dataset = load_corpora(self.values)
        return clip_fingerprint({"all": self.dataset})["all"]

    def settings(self) -> dict[str, Any]:
        """The protocol's own settings (its arguments, its runs' folder): a result file written with others is
        refused. Only :func:`run_protocol` calls it (as :meth:`resolve`)."""
        raise TypeError(f"{type(self).__name__} is not run by run_protocol: it records no settings")

    @abc.abstractmethod
    def cells(self) -> dict[str, Any]:
        """Every cell, by key, with what :meth:`train` needs to train it."""

    @abc.abstractmethod
    def train(self, todo: list[tuple[str, Any]]) -> Iterable[tuple[dict[str, Any], Mapping[str, Any]]]:
        """Train the cells `todo` (key and :meth:`cells`' value each); yield each cell's result file row (its key
        first) and its test evaluation (a report's ``evaluation["test"]`` as a dict)."""

    @abc.abstractmethod
    def summarize(self, cells: list[dict]) -> dict[str, Any]:
        """The summary of the result file's cells."""


def check_overrides(protocol: type[Protocol] | Protocol, overrides: Mapping[str, Any]) -> None:
    """Refuse an override of a recipe key the protocol sets itself."""
    from ..recipe.overrides import overridden_keys

    clashing = sorted(overridden_keys(overrides) & set(protocol.sets()))
    if clashing:
        raise RecipeError(
            f"{', '.join(clashing)}: set by {protocol.title} itself "
            f"({protocol.sets_how}); leave them out of the recipe overrides."
        )


def read_values(
    protocol: type[Protocol] | Protocol, recipe: str | os.PathLike, overrides: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(the recipe file's values, those values changed by overrides)``, an override of a key `protocol` sets itself
    refused first, and an ensemble recipe where the protocol trains none."""
    from ..recipe.overrides import apply_overrides
    from ..recipe.yaml_io import read_recipe_file
    from ..training.ensemble import is_ensemble_recipe

    check_overrides(protocol, overrides)
    raw = read_recipe_file(recipe)
    if is_ensemble_recipe(raw) and not protocol.takes_ensembles:
        raise RecipeError(f"{recipe} is an ensemble recipe: run {protocol.title} on each member recipe.")
    return raw, apply_overrides(raw, overrides)


def train_cells(
    protocol: Protocol, results: Optional[ResultFile] = None
) -> Iterator[tuple[dict[str, Any], Optional[Mapping[str, Any]]]]:
    """Train and score the protocol's cells, each row recorded in `results` as it comes (and the file written, where
    the cells are trained one by one); yields each cell's row and test evaluation. The cells `results` holds are
    skipped, unless the protocol rereads its runs (or keeps no result file): then every cell is its run as this call
    leaves it, read back or trained."""
    cells = protocol.cells()
    rereads = protocol.rereads_runs or results is None
    todo = [(key, cell) for key, cell in cells.items() if rereads or not results.done(key)]
    if not todo:
        return
    trained = protocol.train(todo)
    if results is not None and protocol.rereads_runs:
        # Every run read back or trained by this call: a run trained anew (overwrite_output_dir) replaces the figure
        # an earlier call wrote, never sits beside it.
        trained = list(trained)
        results.cells = []
    for row, evaluation in trained:
        if results is not None:
            results.cells.append(row)
            if not protocol.rereads_runs:  # written after every cell: an interrupted run keeps what it finished
                results.write()
        yield row, evaluation


def run_protocol(
    protocol: Protocol,
    recipe: str | os.PathLike,
    output: str | os.PathLike,
    *,
    overrides: Optional[Mapping[str, Any]] = None,
    model_paths: Optional[Mapping[str, str]] = None,
    run_dir: Optional[str | os.PathLike] = None,
    command: Optional[str] = None,
) -> dict[str, Any]:
    """Run `recipe` (its values changed by `overrides`, recipe keys to values, a dotted key setting one entry of a
    mapping; ``model_name_or_path`` read from the local folder `model_paths` gives for it) under `protocol`, training
    into `run_dir` (default: the recipe's ``output_dir`` + the protocol's :attr:`~Protocol.run_suffix`), and write the
    result file `output` (``command``, date, commit, machine, each cell's row, the summary); returns its document."""
    from ..evaluation.bootstrap import pooled_intervals

    protocol.check()
    overrides = dict(overrides or {})
    raw, values = read_values(protocol, recipe, overrides)
    base = values.get("output_dir") or f"outputs/{Path(recipe).stem}"
    run_dir = Path(run_dir) if run_dir is not None else Path(f"{base}{protocol.run_suffix}")
    model_paths = dict(model_paths or {})
    protocol.resolve(recipe, raw, values, run_dir, overrides, model_paths)
    settings = {
        "recipe": str(recipe),
        "overrides": overrides,
        "model_paths": model_paths,
        **protocol.settings(),
        # What the cells train, not where the recipe lay: an edited recipe is another experiment.
        "recipe_values": protocol.fingerprint(),
        # And on which clips: clips added, removed or relabelled are another experiment too.
        CLIPS_SETTING: protocol.clip_record(),
    }
    evaluations: list[Mapping[str, Any]] = []

    def summarize(cells: list[dict]) -> dict[str, Any]:
        summary = protocol.summarize(cells)
        pooled = pooled_intervals(evaluations) if protocol.pools_cells and evaluations else None
        if summary and pooled:  # the cells' test speakers pooled with a speaker-bootstrap interval
            summary["pooled"] = pooled
        return summary

    results = ResultFile(output, protocol.experiment, settings, summarize, command=command)
    protocol.result_path = results.path
    for _, evaluation in train_cells(protocol, results):
        evaluations.append(evaluation)
    results.write()
    return results.document()


__all__ = [
    "METRICS",
    "Protocol",
    "SPLIT_KEYS",
    "cell_scores",
    "check_overrides",
    "load_corpora",
    "parse_values",
    "read_values",
    "run_protocol",
    "selects_on_validation",
    "train_cells",
]
