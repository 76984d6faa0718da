"""Speaker k-fold accuracy of a recipe: ``ser-hf kfold RECIPE.yaml --folds 5 --fold_seed 42 --output result.json``.

The recipe runs under the speaker-grouped k-fold protocol (every speaker is tested once, by a model that never heard
them), as BENCHMARKS.md's k-fold table runs every recipe: its own split lists dropped, ``split_protocol: kfold``,
``num_folds``, the fold seed as ``split_seed`` and as the training ``seed``; a recipe that chooses nothing on
validation speakers (fixed epochs, last model) trains on all of each fold's training speakers, one that does holds out
``validation_size`` of them (0.2 unless the ``validation_size`` override says); a merged recipe's folds split the one
corpus it does not list in ``train_only_corpora`` (or ``fold_corpus``) while its other corpora train in every fold. The
resolved values (:meth:`~ser_hf.recipe.Recipe.from_values`) run through the sequence ``ser-hf train`` runs
(:func:`ser_hf.training.run_recipe.run_parsed_recipe`), whose run folder keeps them in its ``recipe.yaml``: a finished
fold is read back and an interrupted one resumes from its last checkpoint. An ensemble recipe (``ensemble_members``)
runs each member so on the same folds (in ``members/NAME`` of the run folder), then fuses the members' scores fold by
fold (:func:`ser_hf.training.ensemble.fuse_members`). The result file (:class:`~ser_hf.experiments.results.ResultFile`:
command, date, commit, machine) holds each fold's scores and the summary: the mean and standard deviation over the
folds, and the folds' test speakers pooled with a speaker-bootstrap 95 % interval, the figure BENCHMARKS.md reports.
Its settings hold the resolved recipe values and a fingerprint of the clips, so that a result file is never resumed by
another recipe or on other clips (the refusal names what changed); its cells are the folds' runs as this call leaves
them. :class:`KFold` is the protocol; :func:`run_kfold` runs it (:func:`~ser_hf.experiments.protocol.run_protocol`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

from ..errors import RecipeError
from .protocol import METRICS, Protocol, cell_scores, load_corpora, run_protocol, selects_on_validation

EXPERIMENT = "kfold"
#: The share of each fold's training speakers held out for validation by a recipe that chooses on them.
VALIDATION_SIZE = 0.2


def folded_corpus(values: dict, fold_corpus: Optional[str] = None) -> Optional[str]:
    """The corpus a merged recipe's folds split (the others train in every fold): `fold_corpus` where given, else the
    one corpus the recipe does not list in ``train_only_corpora``; `None` for a recipe of one corpus."""
    corpora = values.get("corpus")
    if not isinstance(corpora, list) or len(corpora) < 2:
        return None
    if fold_corpus is not None:
        if fold_corpus not in corpora:
            raise RecipeError(
                f"fold_corpus {fold_corpus}: not among the recipe's corpora ({', '.join(corpora)}).",
                parameter="fold_corpus",
            )
        return fold_corpus
    folded = [name for name in corpora if name not in (values.get("train_only_corpora") or [])]
    if len(folded) != 1:
        raise RecipeError(
            f"The recipe merges {', '.join(corpora)} and trains on {', '.join(folded) or 'none of them'} only in "
            "its splits: name the corpus the folds split with fold_corpus (the others train in every fold).",
            parameter="fold_corpus",
        )
    return folded[0]


class KFold(Protocol):
    """Speaker k-fold (module docstring): one cell per fold, every fold trained by one run of the recipe's training
    sequence, which reads back or resumes each fold's run itself. :class:`~ser_hf.experiments.loso.LeaveOneSpeakerOut`
    is the same with one fold per speaker.

    Args:
        folds (`int`): the number of folds (2 or more).
        fold_seed (`int`): the seed of the fold assignment, and the training seed.
        fold_corpus (`str`, *optional*): in a recipe merging corpora, the corpus the folds split.
    """

    experiment = EXPERIMENT
    title = "ser-hf kfold"
    sets_how = "folds, fold_seed, output_dir"
    keeps = ("validation_size", "train_only_corpora")
    also_sets = ("split_seed", "seed", "output_dir")
    takes_ensembles = True
    rereads_runs = True
    pools_cells = True

    def __init__(self, folds: int = 5, fold_seed: int = 42, fold_corpus: Optional[str] = None):
        self.folds, self.fold_seed, self.fold_corpus = folds, fold_seed, fold_corpus
        self.run_suffix = f"-kfold{folds}-seed{fold_seed}"
        self.members: Optional[dict[str, dict[str, Any]]] = None

    def check(self) -> None:
        if self.folds < 2:
            raise RecipeError(f"folds {self.folds}: a k-fold needs 2 folds or more.", parameter="folds")

    def folded(self, values: Mapping[str, Any], output_dir: Path, validation_size: float) -> dict[str, Any]:
        """A recipe's values with its split replaced by the protocol's (module docstring): `validation_size` of each
        fold's training speakers validate where the recipe chooses on them; a merged recipe's folds split one corpus
        (:func:`folded_corpus`)."""
        folded = folded_corpus(dict(values), self.fold_corpus)
        values = self.without_split(values)
        if folded is not None:
            values["train_only_corpora"] = [name for name in values["corpus"] if name != folded]
        values.update(
            self.split_values(),
            validation_size=validation_size if selects_on_validation(values) else 0.0,
            split_seed=self.fold_seed,
            seed=self.fold_seed,
            output_dir=str(output_dir),
        )
        return values

    def split_values(self) -> dict[str, Any]:
        """The recipe's split protocol under the protocol, and its number of folds."""
        return {"split_protocol": "kfold", "num_folds": self.folds}

    def resolve(self, recipe, raw, values, run_dir, overrides, model_paths) -> None:
        from ..model_location import with_model_path
        from ..recipe.overrides import apply_overrides
        from ..training import ensemble

        self.recipe, self.run_dir = recipe, run_dir
        validation_size = float(overrides.get("validation_size", VALIDATION_SIZE))
        if not ensemble.is_ensemble_recipe(raw):
            self.values = self.folded(with_model_path(values, model_paths), run_dir, validation_size)
            return
        # Each member on the same folds (the ensemble's keys given to it) into MEMBERS_FOLDER, then fused fold by fold.
        self.members = {}
        for member in ensemble.member_recipes(recipe, raw):
            member_values = apply_overrides(ensemble.member_values(member, raw, run_dir), overrides)
            folder = run_dir / ensemble.MEMBERS_FOLDER / member.stem
            self.members[member.stem] = self.folded(
                with_model_path(member_values, model_paths), folder, validation_size
            )
        self.weights = ensemble.member_weights(recipe, raw, len(self.members))

    def fingerprint(self) -> dict[str, Any]:
        if self.members is None:
            return super().fingerprint()
        members = {name: dict(sorted(values.items())) for name, values in self.members.items()}
        return {"ensemble_members": members, "member_weights": self.weights}

    def clip_record(self) -> dict[str, Any]:
        from ..data.splits import clip_fingerprint

        if self.members is None:
            return super().clip_record()
        return {name: clip_fingerprint({"all": load_corpora(v)})["all"] for name, v in self.members.items()}

    def settings(self) -> dict[str, Any]:
        return {"folds": self.folds, "fold_seed": self.fold_seed, "output_dir": str(self.run_dir)}

    def cells(self) -> dict[str, Any]:
        # One run of the training sequence makes, reads back and resumes them all (train).
        return {f"fold/{fold}": fold for fold in range(self.folds)}

    def train(self, todo):
        from ..data.errors import TooManyFoldsError
        from ..recipe import Recipe
        from ..training.ensemble import fuse_members
        from ..training.run_recipe import run_parsed_recipe

        try:
            if self.members is not None:
                runs = [
                    (Path(v["output_dir"]), run_parsed_recipe(Recipe.from_values(v))) for v in self.members.values()
                ]
                reports = fuse_members(self.recipe, runs, self.run_dir, self.weights)
            else:
                reports = run_parsed_recipe(Recipe.from_values(self.values))
        except TooManyFoldsError as error:  # named as the caller gave it: folds, not the recipe's num_folds
            raise RecipeError(
                f"folds {self.folds}: the recipe's folded corpus has {error.speakers} speakers, and a speaker "
                f"k-fold needs one per fold at least: give 2 to {error.speakers} folds.",
                parameter="folds",
            ) from None
        for report in reports:
            test = report.evaluation["test"]
            row = {"key": f"fold/{report.fold}", "fold": report.fold}
            row["test_speakers"] = report.split.speakers.get("test", [])
            yield {**row, **cell_scores(test.to_dict()), "test_clips": test.clips}, test.to_dict()

    def summarize(self, cells: list[dict]) -> dict[str, Any]:
        import numpy as np

        if not cells:
            return {}
        values = {name: [cell[name] for cell in cells] for name in METRICS}
        return {
            "folds": len(cells),
            "mean": {name: round(float(np.mean(v)), 2) for name, v in values.items()},
            "std": {name: round(float(np.std(v, ddof=1)), 2) if len(v) > 1 else 0.0 for name, v in values.items()},
        }


def kfold_values(
    values: dict,
    folds: int,
    fold_seed: int,
    output_dir: Path,
    validation_size: float = VALIDATION_SIZE,
    fold_corpus: Optional[str] = None,
) -> dict:
    """A recipe's values with its split replaced by speaker k-fold (:meth:`KFold.folded`)."""
    return KFold(folds, fold_seed, fold_corpus).folded(values, output_dir, validation_size)


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
    """Run `recipe` under speaker `folds`-fold cross-validation (:class:`KFold`; fold assignment seeded by
    `fold_seed`) into `output_dir` (default: the recipe's ``output_dir`` + ``-kfold{folds}-seed{fold_seed}``) and
    write the result file `output` (:func:`~ser_hf.experiments.protocol.run_protocol`); returns its document."""
    protocol = KFold(folds, fold_seed, fold_corpus)
    return run_protocol(
        protocol, recipe, output, overrides=overrides, model_paths=model_paths, run_dir=output_dir, command=command
    )


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


__all__ = ["KFold", "kfold_row", "kfold_values", "run_kfold"]
