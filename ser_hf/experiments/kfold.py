"""Speaker k-fold accuracy of a recipe: ``ser-hf kfold RECIPE.yaml --folds 5 --fold_seed 42 --output result.json``.

The recipe runs under the speaker-grouped k-fold protocol (``split_protocol: kfold``, ``num_folds``, ``split_seed``:
every speaker is tested once, by a model that never heard them), through the same sequence as ``ser-hf train``
(:func:`ser_hf.training.run_recipe.run_recipe`): a finished fold is read back and an interrupted one resumes from its
last checkpoint. The result file (:class:`~ser_hf.experiments.results.ResultFile`: command, date, commit, machine)
holds each fold's scores and the summary: the mean and standard deviation over the folds, and the folds' test speakers
pooled with a speaker-bootstrap 95 % interval, the figure BENCHMARKS.md reports.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import RecipeError
from .results import ResultFile

EXPERIMENT = "kfold"
#: The recipe keys the experiment sets itself: a recipe override of one of them is refused.
SET_BY_EXPERIMENT = ("split_protocol", "num_folds", "split_seed", "output_dir", "folds")


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


def run_kfold(
    recipe: str | os.PathLike,
    output: str | os.PathLike,
    *,
    folds: int = 5,
    fold_seed: int = 42,
    recipe_args: Sequence[str] = (),
    output_dir: Optional[str | os.PathLike] = None,
    command: Optional[str] = None,
) -> dict[str, Any]:
    """Run `recipe` (with ``--key value`` `recipe_args`) under speaker `folds`-fold cross-validation (fold assignment
    seeded by `fold_seed`) into `output_dir` (default: the recipe's ``output_dir`` + ``-kfold{folds}-seed{fold_seed}``)
    and write the result file `output`; returns its document."""
    from ..recipe.overrides import command_line_values
    from ..recipe.yaml_io import read_recipe_file
    from ..training.run_recipe import run_recipe

    if folds < 2:
        raise RecipeError(f"--folds {folds}: a k-fold needs 2 folds or more.")
    overrides = command_line_values(list(recipe_args))
    clashing = sorted(set(overrides) & set(SET_BY_EXPERIMENT))
    if clashing:
        raise RecipeError(
            f"{', '.join('--' + key for key in clashing)}: set by ser-hf kfold itself (--folds, --fold_seed, "
            "--output_dir); leave them out of the recipe overrides."
        )
    values = {**read_recipe_file(recipe), **overrides}
    base = values.get("output_dir") or f"outputs/{Path(recipe).stem}"
    run_dir = Path(output_dir) if output_dir is not None else Path(f"{base}-kfold{folds}-seed{fold_seed}")
    settings = {
        "recipe": str(recipe),
        "recipe_args": list(recipe_args),
        "folds": folds,
        "fold_seed": fold_seed,
        "output_dir": str(run_dir),
    }
    pooled: dict[str, Any] = {}
    results = ResultFile(output, EXPERIMENT, settings, lambda cells: _summary(cells, pooled), command=command)
    args = [str(recipe), *recipe_args, "--split_protocol", "kfold", "--num_folds", str(folds)]
    args += ["--split_seed", str(fold_seed), "--output_dir", str(run_dir)]
    reports = run_recipe(args)
    from ..run_folder import read_run

    record = read_run(run_dir)
    if record.summary is not None and record.summary.confidence_intervals:
        pooled.update(record.summary.confidence_intervals)
    for report in reports:
        key = f"fold/{report.fold}"
        if results.done(key):
            continue
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
