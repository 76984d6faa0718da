"""Accuracy of shipped recipes, judged by stratified speaker-grouped k-fold on RAVDESS (never by one split).

    python -m bench.accuracy recipes/ravdess_opensmile.yaml recipes/ravdess_crnn.yaml [--folds 5] [--seeds 1]
    python -m bench.accuracy recipes/demo.yaml --quick            # the shipped sample (8 actors), 4 folds
    python -m bench.accuracy recipes/ravdess_opensmile_speaker.yaml --test-emotions-per-speaker 2
    python -m bench.accuracy recipes/ravdess_crnn.yaml --set num_train_epochs=40 --set model_config.lstm_hidden_size=64
    python -m bench.accuracy recipes/ravdess_crnn.yaml --only-folds 3 4   # beside another process training 0-2
    python -m bench.accuracy recipes/ravdess_whisper_ensemble_speaker.yaml \
        --model-path openai/whisper-base=../shared/models/whisper-base-encoder \
        --model-path openai/whisper-tiny.en=../shared/models/whisper-tiny.en-encoder

Each recipe is trained on every fold of ``../shared/data/ravdess_16k`` (actors 01-20; 5 folds of 4 test actors).
The validation speakers that choose the best epoch and stop training early come from each fold's *training*
speakers (``validation_size``), never from its test fold. Per fold and as mean ± std over folds (and seeds): test
UA, WA, macro-F1 and training minutes. ``--test-emotions-per-speaker N`` keeps only N emotions of each test speaker
(chosen per speaker, seeded) to show what speaker normalisation does when a speaker does not span the emotions.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import yaml

from bench.harness import EXTRA_CORPORA, REPO, SAMPLE, SHARED_CORPORA, SHARED_RAVDESS, machine_line, run_fields
from ser_hf.data.audit import audit_leakage
from ser_hf.data.dataset_info import column_values, get_ser_info
from ser_hf.errors import RecipeError
from ser_hf.evaluation.bootstrap import format_interval, pooled_intervals
from ser_hf.evaluation.constants import INTERVAL_METRICS
from ser_hf.experiments.leakage import matched_random_split
from ser_hf.recipe import Recipe
from ser_hf.recipe.overrides import check_dotted_key, set_value
from ser_hf.recipe.yaml_io import load_yaml, read_recipe_file
from ser_hf.run_folder import fold_folder
from ser_hf.run_record import RunReport
from ser_hf.training.data_stage import audit_split, prepare_recipe_data
from ser_hf.training.ensemble import (
    ensemble_report,
    is_ensemble_recipe,
    member_recipes,
    member_weights,
)
from ser_hf.training.train_stage import train_and_evaluate, train_folds

#: Recipe keys of a fixed split, dropped for k-fold.
SPLIT_KEYS = ("train_speakers", "validation_speakers", "test_speakers", "test_size", "folds")
METRICS = INTERVAL_METRICS


def selects_on_validation(values: dict) -> bool:
    """Whether a recipe uses validation speakers to choose anything: its best epoch (``load_best_model_at_end``, on
    by default) or when to stop (``early_stopping_patience``)."""
    return values.get("load_best_model_at_end", True) or values.get("early_stopping_patience") is not None


#: Recipe keys the benchmark sets itself: ``--set`` may not change them.
BENCHMARK_KEYS = SPLIT_KEYS + (
    "data_dir",
    "split_protocol",
    "num_folds",
    "validation_size",
    "split_seed",
    "seed",
    "output_dir",
)


def parse_overrides(settings: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs as recipe values (each value read as YAML; a dotted key such as
    ``feature_extractor_config.normalization`` sets one entry of a mapping), every key checked against the recipe's
    keys before any training."""
    overrides = {}
    for setting in settings:
        key, equals, value = setting.partition("=")
        if not equals or not key:
            raise RecipeError(
                f"--set {setting!r}: expected KEY=VALUE, e.g. feature_extractor_config.normalization=speaker."
            )
        top = check_dotted_key(key, "--set")
        if top in BENCHMARK_KEYS:
            raise RecipeError(f"--set {setting!r}: the benchmark sets {top} itself (speaker k-fold).")
        overrides[key] = load_yaml(value)
    return overrides


def parse_model_paths(settings: Sequence[str]) -> dict[str, str]:
    """``--model-path ID=FOLDER`` pairs: each recipe (or ensemble member) whose ``model_name_or_path`` is ID loads
    FOLDER instead (a local copy of a Hub checkpoint, as benchmarks without network read them)."""
    paths = {}
    for setting in settings:
        model_id, equals, folder = setting.partition("=")
        if not equals or not model_id or not folder:
            raise RecipeError(f"--model-path {setting!r}: expected ID=FOLDER, e.g. openai/whisper-base=PATH.")
        if not Path(folder).is_dir():
            raise RecipeError(f"--model-path {setting!r}: {folder} is not a folder.")
        paths[model_id] = folder
    return paths


def variant_name(recipe: Path, overrides: Mapping[str, Any]) -> str:
    """The recipe's name with its ``--set`` overrides, as tables and output folders name the variant."""
    return recipe.stem + "".join(f" {key}={value}" for key, value in overrides.items())


#: The longest variant folder name kept whole: file systems allow 255 bytes, and suffixes (``-seed42-test2``,
#: ensemble members) follow it.
MAX_VARIANT_FOLDER = 160


def variant_folder(recipe: Path, overrides: Mapping[str, Any]) -> str:
    """The output folder's name of a recipe variant: its overrides in the name, so that a variant never trains into
    (or reads back) the plain recipe's folds. A name too long for a file system (many ``--set``) keeps its start
    and ends with a digest of the whole name, so that two long variants still get folders of their own."""
    name = re.sub(r"[^A-Za-z0-9._=-]+", "_", variant_name(recipe, overrides))
    if len(name) <= MAX_VARIANT_FOLDER:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{name[: MAX_VARIANT_FOLDER - len(digest) - 1]}-{digest}"


def kfold_recipe(
    recipe: Path,
    data_dir: Path,
    folds: int,
    seed: int,
    output_dir: Path,
    validation_size: float,
    overrides: Optional[Mapping[str, Any]] = None,
    only_folds: Optional[Sequence[int]] = None,
    model_paths: Optional[Mapping[str, str]] = None,
) -> dict:
    """The recipe's values, changed by `overrides` (``--set``), with its split replaced by speaker k-fold on
    `data_dir`. A recipe that chooses nothing on validation speakers (fixed epochs, last model) trains on all of each
    fold's training speakers. `only_folds` trains those folds alone (the others can run in other processes: a later
    run over every fold reads the finished ones back). `model_paths` (``--model-path``) replaces a
    ``model_name_or_path`` by a local folder."""
    values = {key: value for key, value in yaml.safe_load(recipe.read_text()).items() if key not in SPLIT_KEYS}
    for key, value in (overrides or {}).items():
        values = set_value(values, key, value)
    if values.get("model_name_or_path") in (model_paths or {}):
        values["model_name_or_path"] = model_paths[values["model_name_or_path"]]
    if not selects_on_validation(values):
        validation_size = 0.0
    corpora = values.get("corpus")
    if isinstance(corpora, list) and len(corpora) > 1:
        # A merged recipe: RAVDESS is folded as alone, the other corpora train in every fold.
        if "ravdess" not in corpora:
            raise RecipeError(f"{recipe} merges {corpora}: the benchmark folds RAVDESS, which it does not hold.")
        shared = {**SHARED_CORPORA, **EXTRA_CORPORA}
        unknown = [name for name in corpora if name != "ravdess" and name not in shared]
        if unknown:
            raise RecipeError(f"{recipe} merges {', '.join(unknown)}: not among ../shared/data's {', '.join(shared)}.")
        values["data_dir"] = [str(data_dir if name == "ravdess" else shared[name]) for name in corpora]
        values["train_only_corpora"] = [name for name in corpora if name != "ravdess"]
    else:
        values["data_dir"] = str(data_dir)
    values.update(
        split_protocol="kfold",
        num_folds=folds,
        validation_size=validation_size,
        split_seed=seed,
        seed=seed,
        output_dir=str(output_dir),
        folds=list(only_folds) if only_folds else None,
        disable_tqdm=True,
        report_to="none",
        push_to_hub=False,
    )
    return values


def reduce_test_emotions(splits, emotions_per_speaker: int, seed: int):
    """Keep `emotions_per_speaker` emotions of each test speaker (drawn per speaker), as a speaker heard in a few
    emotions only would be."""
    test = splits["test"]
    speakers, labels = column_values(test, "speaker_id"), column_values(test, "label")
    keep = {}
    for index, speaker in enumerate(sorted(set(speakers))):
        own = sorted({label for s, label in zip(speakers, labels) if s == speaker})
        rng = np.random.default_rng([seed, index])
        keep[speaker] = set(rng.choice(own, size=min(emotions_per_speaker, len(own)), replace=False).tolist())
    rows = [i for i, (speaker, label) in enumerate(zip(speakers, labels)) if label in keep[speaker]]
    splits["test"] = test.select(rows)
    return splits


def random_fold_run(dataset, splits, data_args, training_args, fold: int):
    """The leakage study's control for one fold: a clip-level random split (stratified by label) of the same clips
    with the same split sizes, so that every speaker is in train and test; its own output folder."""
    random_splits = matched_random_split(dataset, splits, seed=data_args.split_seed + fold)
    shares = get_ser_info(random_splits["train"])
    random_data_args = dataclasses.replace(
        data_args, split_protocol="random", test_size=shares["test_size"], validation_size=shares["validation_size"]
    )
    random_training_args = dataclasses.replace(
        training_args, output_dir=str(Path(training_args.output_dir) / "random")
    )
    return random_splits, random_data_args, random_training_args


def fold_line(fold: int, report: dict, random_split: bool = False) -> str:
    test = report["evaluation"]["test"]
    held_out = (
        "random split of the same clips and sizes"
        if random_split
        else f"test speakers {', '.join(report['split']['speakers']['test'])}"
    )
    return (
        f"  fold {fold}: {held_out}; "
        + ", ".join(f"{name} {100 * test[name]:.1f}" for name in METRICS)
        + f"; {report['bench_minutes']:.1f} min"
    )


def prepare_recipe(values: dict) -> tuple[Recipe, Any, Any]:
    """The :class:`~ser_hf.recipe.Recipe` parsed from ``values`` (as ``ser_hf.train`` parses a file), its input mode
    and its corpus, prepared by that mode (decoded, and encoded once in FAST mode)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "recipe.yaml"
        path.write_text(yaml.safe_dump(values))
        recipe = Recipe.parse([str(path)])
    return (recipe, *prepare_recipe_data(recipe))


def train_split(recipe: Recipe, input_mode, splits, fold: int) -> dict:
    """Train and evaluate one split as ``ser_hf.train`` does (same stages, leakage audit included); its report, with
    the training minutes under ``bench_minutes``."""
    report = train_and_evaluate(
        recipe, splits, fold=fold, leakage_report=audit_split(splits, fold), input_mode=input_mode
    )
    return with_minutes(report.to_dict())


def with_minutes(report: dict) -> dict:
    """The report, with its training minutes under ``bench_minutes``."""
    report["bench_minutes"] = report["training"]["wall_seconds"] / 60
    return report


def add_model_path_argument(parser: argparse.ArgumentParser) -> None:
    """``--model-path ID=FOLDER`` (repeatable; see :func:`parse_model_paths`)."""
    parser.add_argument(
        "--model-path",
        dest="model_paths",
        action="append",
        default=[],
        metavar="ID=FOLDER",
        help="load FOLDER wherever a recipe or ensemble member has model_name_or_path ID (repeatable), e.g. "
        "openai/whisper-base=../shared/models/whisper-base-encoder",
    )


def add_override_argument(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable; see :func:`parse_overrides`)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a recipe value for this run (repeatable; dotted keys set one entry of a mapping, e.g. "
        "feature_extractor_config.normalization=corpus): the variant is reported under the recipe's name with its "
        "overrides",
    )


def run_recipe(values: dict, emotions_per_speaker: Optional[int], leakage: bool = False) -> list[dict]:
    """Train every fold as ``ser_hf.train`` does (same stages), optionally reducing each test fold first. With
    ``leakage``, each fold also trains on a random split of the same clips and sizes (its report under
    ``"random"``)."""
    recipe, input_mode, dataset = prepare_recipe(values)
    reports = []

    def reduce_test(splits, fold: int):
        return reduce_test_emotions(splits, emotions_per_speaker, seed=recipe.training.seed + fold)

    for fold, splits, report in train_folds(
        recipe, input_mode, dataset, reduce_test=reduce_test if emotions_per_speaker else None
    ):
        report = report.to_dict()
        print(fold_line(fold, with_minutes(report)), flush=True)
        if leakage:
            random_splits, random_data_args, random_training_args = random_fold_run(
                dataset, splits, recipe.data, recipe.training, fold
            )
            report["random"] = with_minutes(
                train_and_evaluate(
                    recipe.replace(data=random_data_args, training=random_training_args),
                    random_splits,
                    fold=fold,
                    leakage_report=audit_leakage(random_splits, raise_on_leakage=False),
                    input_mode=input_mode,
                ).to_dict()
            )
            print(fold_line(fold, report["random"], random_split=True), flush=True)
        reports.append(report)
    return reports


def run_output_dir(
    output_root: Path, recipe: Path, seed: int, emotions_per_speaker: Optional[int], overrides=None
) -> Path:
    """Where the benchmark trains a recipe's (or a variant's) folds for one seed under ``--output-dir``: one folder
    named after the run (``ravdess_cnn2d-seed42``, ``...-seed42-test2``), which names an ensemble's members."""
    suffix = f"-test{emotions_per_speaker}" if emotions_per_speaker else ""
    return output_root / f"{variant_folder(recipe, overrides or {})}-seed{seed}{suffix}"


def run_ensemble(
    recipe: Path,
    data_dir: Path,
    folds: int,
    seed: int,
    output_root: Path,
    validation_size: float,
    emotions_per_speaker: Optional[int],
    only_folds: Optional[Sequence[int]] = None,
    model_paths: Optional[Mapping[str, str]] = None,
) -> list[dict]:
    """An ensemble recipe: every member recipe trained on every fold (as :func:`run_recipe` trains a recipe), then
    each fold's members fused into one saved ensemble model, scored on the fold's test speakers. A member's folds are
    the member recipe's own run under the same ``--output-dir`` (the same recipe, folds and seed): a member benchmarked
    on its own, or in another ensemble, is read back instead of trained again."""
    values = read_recipe_file(recipe)
    members = member_recipes(recipe, values)
    weights = member_weights(recipe, values, len(members))
    output_dir = run_output_dir(output_root, recipe, seed, emotions_per_speaker)
    member_runs = []
    for member in members:
        print(f"  member {member.name}:", flush=True)
        member_dir = run_output_dir(output_root, member, seed, emotions_per_speaker)
        member_values = kfold_recipe(
            member, data_dir, folds, seed, member_dir, validation_size, only_folds=only_folds, model_paths=model_paths
        )
        member_runs.append((member_dir, run_recipe(member_values, emotions_per_speaker)))
    reports = []
    for fold_reports in zip(*(reports for _, reports in member_runs)):
        fold = fold_reports[0]["fold"]
        report = ensemble_report(
            [RunReport.from_dict(member) for member in fold_reports],
            [member_dir / fold_folder(fold) for member_dir, _ in member_runs],
            output_dir / fold_folder(fold),
            weights,
        ).to_dict()
        report["bench_minutes"] = sum(member["bench_minutes"] for member in fold_reports)
        print(fold_line(fold, report), flush=True)
        reports.append(report)
    return reports


def mean_std(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    return f"{values.mean():.1f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.1f}"


def summarize(
    recipe: Path, reports: list[dict], folds: int, seeds: int, overrides: Optional[Mapping[str, Any]] = None
) -> dict:
    """Mean ± std over folds (and seeds) of every metric, each fold's figures, and with ``--leakage`` the random
    splits' and the inflation (random minus speaker-grouped, per fold)."""
    tests = [report["evaluation"]["test"] for report in reports]
    normalization = reports[0].get("normalization") or {}
    summary = {
        "recipe": str(recipe),
        "name": variant_name(recipe, overrides or {}),
        "overrides": dict(overrides or {}),
        "protocol": normalization.get("protocol"),
        "transductive": normalization.get("transductive", False),
        "folds": [
            {
                "fold": report["fold"],
                "test_speakers": report["split"]["speakers"]["test"],
                "minutes": round(report["bench_minutes"], 2),
                **{name: round(100 * report["evaluation"]["test"][name], 2) for name in METRICS},
            }
            for report in reports
        ],
        "mean_std": {name: mean_std([100 * test[name] for test in tests]) for name in METRICS},
        # All folds' test speakers pooled into one speaker bootstrap (a fold's 4 speakers are too few for one).
        "confidence_intervals": pooled_intervals(tests),
        "minutes_per_run": round(float(np.sum([report["bench_minutes"] for report in reports])) / seeds, 2),
        "num_folds": folds,
        "seeds": seeds,
    }
    if all("random" in report for report in reports):
        random = [report["random"]["evaluation"]["test"] for report in reports]
        summary["random_split"] = {name: mean_std([100 * test[name] for test in random]) for name in METRICS}
        summary["inflation"] = {
            name: mean_std([100 * (r[name] - t[name]) for r, t in zip(random, tests)]) for name in METRICS
        }
        for row, test in zip(summary["folds"], random):
            row["random_split"] = {name: round(100 * test[name], 2) for name in METRICS}
    return summary


def pooled_ua(summary: dict) -> str:
    """UA of all folds' test clips pooled, with its speaker-bootstrap interval (``–`` in summaries written before
    the benchmark recorded it)."""
    intervals = summary.get("confidence_intervals")
    if not intervals:
        return "–"
    return (
        f"{100 * intervals['pooled']['unweighted_accuracy']:.1f} {format_interval(intervals, 'unweighted_accuracy')}"
    )


def summary_name(summary: dict) -> str:
    """A summary's recipe name with its overrides (summaries written before ``--set`` have no ``name``)."""
    return summary.get("name") or Path(summary["recipe"]).stem


def markdown_table(summaries: list[dict]) -> str:
    """One row per recipe: UA of every fold (a column per fold number, so a run of some folds, ``--only-folds``,
    puts each under its own; with several seeds a fold's figures are joined by ``/``), then mean ± std of UA, WA
    and macro-F1, and the minutes."""
    folds = sorted({row["fold"] for summary in summaries for row in summary["folds"]})
    lines = [
        "| recipe | "
        + " | ".join(f"fold {fold}" for fold in folds)
        + " | UA mean ± std | WA | macro-F1 | UA, folds pooled [95 % CI] | minutes |",
        "|---|" + "---:|" * (len(folds) + 5),
    ]
    for summary in summaries:
        uas = {fold: [] for fold in folds}
        for row in summary["folds"]:
            uas[row["fold"]].append(f"{row['unweighted_accuracy']:.1f}")
        mean = summary["mean_std"]
        lines.append(
            f"| `{summary_name(summary)}`{' (transductive)' if summary['transductive'] else ''} | "
            + " | ".join(" / ".join(uas[fold]) for fold in folds)
            + f" | **{mean['unweighted_accuracy']}** | "
            f"{mean['accuracy']} | {mean['macro_f1']} | {pooled_ua(summary)} | {summary['minutes_per_run']:.1f} |"
        )
    if any("inflation" in summary for summary in summaries):
        lines += [
            "",
            "| recipe | UA, speaker-grouped folds | UA, random folds (same sizes) | inflation (points) | "
            "WA inflation | macro-F1 inflation |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for summary in summaries:
            if "inflation" in summary:
                inflation = summary["inflation"]
                lines.append(
                    f"| `{summary_name(summary)}` | {summary['mean_std']['unweighted_accuracy']} | "
                    f"{summary['random_split']['unweighted_accuracy']} | "
                    f"{inflation['unweighted_accuracy']} | {inflation['accuracy']} | "
                    f"{inflation['macro_f1']} |"
                )
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("recipes", nargs="+", type=Path)
    parser.add_argument("--folds", type=int, help="speaker folds (default 5; 4 with --quick)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per recipe (split and training)")
    parser.add_argument(
        "--fold-seed",
        type=int,
        default=42,
        help="seed of the first seed's folds and training (42: the folds BENCHMARKS.md reports); tune "
        "recipes on other fold seeds, then report on 42",
    )
    parser.add_argument(
        "--validation-size",
        type=float,
        default=0.2,
        help="share of each fold's training speakers held out for early stopping (recipes that "
        "choose nothing on validation train on all of them)",
    )
    parser.add_argument(
        "--only-folds",
        type=int,
        nargs="+",
        metavar="FOLD",
        help="train these folds (0-based) alone, e.g. in parallel processes; a later run without it reads them back",
    )
    parser.add_argument("--quick", action="store_true", help="the shipped sample (actors 01-08) instead")
    parser.add_argument("--data-dir", type=Path, help="RAVDESS folder (default ../shared/data/ravdess_16k)")
    parser.add_argument("--test-emotions-per-speaker", type=int, help="keep N emotions of each test speaker")
    parser.add_argument(
        "--leakage",
        action="store_true",
        help="also train each fold on a random split of the same clips and sizes (every speaker in "
        "train and test) and report the inflation",
    )
    add_override_argument(parser)
    add_model_path_argument(parser)
    parser.add_argument("--output-dir", type=Path, default=REPO / "outputs" / "bench_accuracy")
    parser.add_argument("--results", type=Path, help="write the summaries to this .json and a table beside it (.md)")
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.overrides)
        model_paths = parse_model_paths(args.model_paths)
    except RecipeError as error:
        parser.error(str(error))
    data_dir = args.data_dir or (SAMPLE if args.quick else SHARED_RAVDESS)
    folds = args.folds or (4 if args.quick else 5)
    logging.basicConfig(level=logging.WARNING)
    print(machine_line())
    print(
        f"data: {data_dir}; {folds} speaker folds, validation speakers from each fold's training speakers "
        f"({args.validation_size:.0%}, none for recipes that choose nothing on them); fold seed {args.fold_seed}, "
        f"seeds: {args.seeds}"
        + (
            f"; test speakers reduced to {args.test_emotions_per_speaker} emotions each"
            if args.test_emotions_per_speaker
            else ""
        )
        + ("; with random-split controls" if args.leakage else "")
    )
    summaries = []
    for recipe in args.recipes:
        print(f"\n{recipe}" + "".join(f" --set {key}={value}" for key, value in overrides.items()), flush=True)
        reports = []
        for seed in range(args.fold_seed, args.fold_seed + args.seeds):
            if is_ensemble_recipe(read_recipe_file(recipe)):
                if args.leakage or overrides:
                    parser.error(f"--leakage and --set are not available for the ensemble recipe {recipe}.")
                reports += run_ensemble(
                    recipe,
                    data_dir,
                    folds,
                    seed,
                    args.output_dir,
                    args.validation_size,
                    args.test_emotions_per_speaker,
                    args.only_folds,
                    model_paths,
                )
                continue
            output_dir = run_output_dir(args.output_dir, recipe, seed, args.test_emotions_per_speaker, overrides)
            values = kfold_recipe(
                recipe,
                data_dir,
                folds,
                seed,
                output_dir,
                args.validation_size,
                overrides,
                args.only_folds,
                model_paths,
            )
            reports += run_recipe(values, args.test_emotions_per_speaker, leakage=args.leakage)
        summary = summarize(recipe, reports, folds, args.seeds, overrides)
        mean = summary["mean_std"]
        print(
            f"  mean ± std over {len(reports)} folds: UA {mean['unweighted_accuracy']}, WA {mean['accuracy']}, "
            f"macro-F1 {mean['macro_f1']}; all folds pooled: UA {pooled_ua(summary)} (95 % speaker-bootstrap "
            f"interval); {summary['minutes_per_run']:.1f} min per {len(reports) // args.seeds} folds"
            + (f"; {summary['protocol']}" if summary["protocol"] else ""),
            flush=True,
        )
        if "inflation" in summary:
            print(
                f"  random folds of the same sizes: UA {summary['random_split']['unweighted_accuracy']}; "
                f"inflation {summary['inflation']['unweighted_accuracy']} points",
                flush=True,
            )
        summaries.append(summary)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps({**run_fields(), "recipes": summaries}, indent=2) + "\n")
        args.results.with_suffix(".md").write_text(markdown_table(summaries))
        print(f"\nwrote {args.results} and {args.results.with_suffix('.md')}")
    return summaries


if __name__ == "__main__":
    main()
