"""Speaker k-fold accuracy of a recipe: ``ser-hf kfold RECIPE.yaml --folds 5 --fold_seed 42 --output result.json``.

The recipe runs under the speaker-grouped k-fold protocol (every speaker is tested once, by a model that never heard
them), as BENCHMARKS.md's k-fold table runs every recipe: its own split lists dropped, ``split_protocol: kfold``,
``num_folds``, the fold seed as ``split_seed`` and as the training ``seed``; a recipe that chooses nothing on
validation speakers (fixed epochs, last model) trains on all of each fold's training speakers, one that does holds out
``validation_size`` of them (0.2 unless ``--validation_size`` says); a merged recipe's folds split the one corpus
it does not list in ``train_only_corpora`` (or ``--fold_corpus``) while its other corpora train in every fold. The
resolved values (:meth:`~ser_hf.recipe.Recipe.from_values`) run through the
sequence ``ser-hf train`` runs (:func:`ser_hf.training.run_recipe.run_parsed_recipe`), whose run folder keeps them in
its ``recipe.yaml``: a finished fold is read back and an interrupted one resumes from its last checkpoint. An ensemble
recipe (``ensemble_members``) runs each member so on the same folds (in ``members/NAME`` of the run folder), then
fuses the members' scores fold by fold (:func:`ser_hf.training.ensemble.fuse_members`). The result
file (:class:`~ser_hf.experiments.results.ResultFile`: command, date, commit, machine) holds each fold's scores and the
summary: the mean and standard deviation over the folds, and the folds' test speakers pooled with a speaker-bootstrap
95 % interval, the figure BENCHMARKS.md reports. Its settings hold the resolved recipe values and a fingerprint of the
clips, so that a result file is never resumed by another recipe or on other clips (the refusal names what changed);
its cells are the folds' runs as this call leaves them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

from ..errors import RecipeError
from .results import CLIPS_SETTING, ResultFile

EXPERIMENT = "kfold"
#: A recipe's fixed split, dropped for k-fold.
SPLIT_KEYS = ("train_speakers", "validation_speakers", "test_speakers", "test_size", "folds")
#: The recipe keys the experiment sets itself: a recipe override of one of them is refused.
SET_BY_EXPERIMENT = SPLIT_KEYS + ("split_protocol", "num_folds", "split_seed", "seed", "output_dir")
#: The share of each fold's training speakers held out for validation by a recipe that chooses on them.
VALIDATION_SIZE = 0.2


def selects_on_validation(values: dict) -> bool:
    """Whether a recipe uses validation speakers to choose anything: its best epoch (``load_best_model_at_end``, on by
    default) or when to stop (``early_stopping_patience``)."""
    return bool(values.get("load_best_model_at_end", True)) or values.get("early_stopping_patience") is not None


def folded_corpus(values: dict, fold_corpus: Optional[str] = None) -> Optional[str]:
    """The corpus a merged recipe's folds split (the others train in every fold): `fold_corpus` where given, else the
    one corpus the recipe does not list in ``train_only_corpora``; `None` for a recipe of one corpus."""
    corpora = values.get("corpus")
    if not isinstance(corpora, list) or len(corpora) < 2:
        return None
    if fold_corpus is not None:
        if fold_corpus not in corpora:
            raise RecipeError(f"--fold_corpus {fold_corpus}: not among the recipe's corpora ({', '.join(corpora)}).")
        return fold_corpus
    folded = [name for name in corpora if name not in (values.get("train_only_corpora") or [])]
    if len(folded) != 1:
        raise RecipeError(
            f"The recipe merges {', '.join(corpora)} and trains on {', '.join(folded) or 'none of them'} only in "
            "its splits: name the corpus the folds split with --fold_corpus (the others train in every fold)."
        )
    return folded[0]


def kfold_values(
    values: dict,
    folds: int,
    fold_seed: int,
    output_dir: Path,
    validation_size: float = VALIDATION_SIZE,
    fold_corpus: Optional[str] = None,
) -> dict:
    """A recipe's values with its split replaced by speaker k-fold (module docstring); `validation_size` of each fold's
    training speakers validate where the recipe chooses on them; a merged recipe's folds split one corpus
    (:func:`folded_corpus`)."""
    folded = folded_corpus(values, fold_corpus)
    values = {key: value for key, value in values.items() if key not in SPLIT_KEYS}
    if folded is not None:
        values["train_only_corpora"] = [name for name in values["corpus"] if name != folded]
    values.update(
        split_protocol="kfold",
        num_folds=folds,
        validation_size=validation_size if selects_on_validation(values) else 0.0,
        split_seed=fold_seed,
        seed=fold_seed,
        output_dir=str(output_dir),
    )
    return values


def _summary(cells: list[dict], pooled: Optional[dict] = None) -> dict[str, Any]:
    import numpy as np

    if not cells:
        return {}
    values = {name: [cell[name] for cell in cells] for name in ("unweighted_accuracy", "accuracy", "macro_f1")}
    summary: dict[str, Any] = {
        "folds": len(cells),
        "mean": {name: round(float(np.mean(v)), 2) for name, v in values.items()},
        "std": {name: round(float(np.std(v, ddof=1)), 2) if len(v) > 1 else 0.0 for name, v in values.items()},
    }
    if pooled:
        summary["pooled"] = pooled
    return summary


def clips_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """The clips the recipe `values` loads (:func:`~ser_hf.data.splits.rows_fingerprint` of its merged corpora)."""
    from ..data.splits import clip_fingerprint
    from .loco import load_corpora

    return clip_fingerprint({"all": load_corpora(values)})["all"]


def run_kfold(
    recipe: str | os.PathLike,
    output: str | os.PathLike,
    *,
    folds: int = 5,
    fold_seed: int = 42,
    overrides: Optional[Mapping[str, Any]] = None,
    model_paths: Optional[Mapping[str, str]] = None,
    output_dir: Optional[str | os.PathLike] = None,
    fold_corpus: Optional[str] = None,
    command: Optional[str] = None,
) -> dict[str, Any]:
    """Run `recipe` (its values changed by `overrides`, recipe keys to values, a dotted key setting one entry of a
    mapping; ``model_name_or_path`` read from the local folder `model_paths` gives for it) under speaker `folds`-fold
    cross-validation (fold assignment seeded by `fold_seed`) into `output_dir` (default: the recipe's ``output_dir`` +
    ``-kfold{folds}-seed{fold_seed}``) and write the result file `output`; returns its document."""
    from ..data.errors import TooManyFoldsError
    from ..evaluation.bootstrap import pooled_intervals
    from ..recipe import Recipe
    from ..recipe.overrides import apply_overrides, overridden_keys, with_model_path
    from ..recipe.yaml_io import read_recipe_file
    from ..training.ensemble import (
        MEMBERS_FOLDER,
        fuse_members,
        is_ensemble_recipe,
        member_recipes,
        member_values,
        member_weights,
    )
    from ..training.run_recipe import run_parsed_recipe

    if folds < 2:
        raise RecipeError(f"--folds {folds}: a k-fold needs 2 folds or more.")
    overrides = dict(overrides or {})
    clashing = sorted(overridden_keys(overrides) & set(SET_BY_EXPERIMENT))
    if clashing:
        raise RecipeError(
            f"{', '.join('--' + key for key in clashing)}: set by ser-hf kfold itself (--folds, --fold_seed, "
            "--output_dir); leave them out of the recipe overrides."
        )
    raw = read_recipe_file(recipe)
    values = apply_overrides(raw, overrides)
    base = values.get("output_dir") or f"outputs/{Path(recipe).stem}"
    run_dir = Path(output_dir) if output_dir is not None else Path(f"{base}-kfold{folds}-seed{fold_seed}")
    validation_size = float(overrides.get("validation_size", VALIDATION_SIZE))

    def folded(values: dict, folder: Path) -> dict:
        values = with_model_path(values, model_paths)
        return kfold_values(values, folds, fold_seed, folder, validation_size, fold_corpus)

    if is_ensemble_recipe(raw):
        # Each member on the same folds (the ensemble's keys given to it) into MEMBERS_FOLDER, then fused fold by fold.
        members = {
            member.stem: folded(
                apply_overrides(member_values(member, raw, run_dir), overrides), run_dir / MEMBERS_FOLDER / member.stem
            )
            for member in member_recipes(recipe, raw)
        }
        weights = member_weights(recipe, raw, len(members))
        fingerprint = {"ensemble_members": {name: dict(sorted(v.items())) for name, v in members.items()}}
        fingerprint["member_weights"] = weights
    else:
        resolved = folded(values, run_dir)
        fingerprint = {key: resolved[key] for key in sorted(resolved)}
    settings = {
        "recipe": str(recipe),
        "overrides": overrides,
        "model_paths": dict(model_paths or {}),
        "folds": folds,
        "fold_seed": fold_seed,
        "output_dir": str(run_dir),
        # What the folds train, not where the recipe lay: an edited recipe is another experiment.
        "recipe_values": fingerprint,
        # And on which clips (each member's, for an ensemble): clips added, removed or relabelled are another too.
        CLIPS_SETTING: (
            {name: clips_of(v) for name, v in members.items()} if is_ensemble_recipe(raw) else clips_of(resolved)
        ),
    }
    pooled: dict[str, Any] = {}
    results = ResultFile(output, EXPERIMENT, settings, lambda cells: _summary(cells, pooled), command=command)
    try:
        if is_ensemble_recipe(raw):
            runs = [(Path(v["output_dir"]), run_parsed_recipe(Recipe.from_values(v))) for v in members.values()]
            reports = fuse_members(recipe, runs, run_dir, weights)
        else:
            reports = run_parsed_recipe(Recipe.from_values(resolved))
    except TooManyFoldsError as error:  # named as the user typed it: --folds, not the recipe's num_folds
        raise RecipeError(
            f"--folds {folds}: the recipe's folded corpus has {error.speakers} speakers, and a speaker k-fold needs "
            f"one per fold at least: give --folds 2 to {error.speakers}."
        ) from None
    # The folds' test speakers pooled with a speaker-bootstrap interval, from the reports the run returned.
    pooled.update(pooled_intervals([report.evaluation["test"].to_dict() for report in reports]) or {})
    # The cells are the folds' runs as they are now (read back or trained by this call): a fold trained anew
    # (overwrite_output_dir) replaces the figure an earlier run wrote, never sits beside it.
    results.cells = []
    for report in reports:
        key = f"fold/{report.fold}"
        test = report.evaluation["test"]
        results.cells.append(
            {
                "key": key,
                "fold": report.fold,
                "test_speakers": report.split.speakers.get("test", []),
                "unweighted_accuracy": round(100 * test.unweighted_accuracy, 2),
                "accuracy": round(100 * test.accuracy, 2),
                "macro_f1": round(100 * test.macro_f1, 2),
                "test_clips": test.clips,
            }
        )
    results.write()
    return results.document()


def kfold_row(document: dict[str, Any]) -> str:
    """The row a user pastes beside BENCHMARKS.md's k-fold table: recipe, UA mean ± std, pooled UA [95 % CI]."""
    summary = document["summary"]
    mean, std = summary["mean"], summary["std"]
    pooled = summary.get("pooled") or {}
    value = (pooled.get("pooled") or {}).get("unweighted_accuracy")
    low_high = (pooled.get("intervals") or {}).get("unweighted_accuracy") if pooled.get("reliable") else None
    interval = "-" if value is None else f"{100 * value:.1f}"
    if value is not None and low_high:
        interval += f" [{100 * low_high[0]:.1f}, {100 * low_high[1]:.1f}]"
    return (
        "| recipe | UA mean ± std | UA, folds pooled [95 % CI] | WA | macro-F1 |\n|---|---:|---:|---:|---:|\n"
        f"| {Path(document['settings']['recipe']).stem} ({summary['folds']} folds, seed "
        f"{document['settings']['fold_seed']}) | {mean['unweighted_accuracy']:.1f} ± {std['unweighted_accuracy']:.1f} "
        f"| {interval} | {mean['accuracy']:.1f} | {mean['macro_f1']:.1f} |"
    )


__all__ = ["kfold_row", "run_kfold"]
