"""Accuracy of shipped recipes, judged by stratified speaker-grouped k-fold on RAVDESS (never by one split).

    python bench/accuracy.py recipes/ravdess_opensmile.yaml recipes/ravdess_crnn.yaml [--folds 5] [--seeds 1]
    python bench/accuracy.py recipes/demo.yaml --quick            # the shipped sample (8 actors), 4 folds
    python bench/accuracy.py recipes/ravdess_opensmile_speaker.yaml --test-emotions-per-speaker 2

Each recipe is trained on every fold of ``../shared/data/ravdess_16k`` (actors 01-20; 5 folds of 4 test actors).
The validation speakers that choose the best epoch and stop training early come from each fold's *training*
speakers (``validation_size``), never from its test fold. Per fold and as mean ± std over folds (and seeds): test
UA, WA, macro-F1 and training minutes. ``--test-emotions-per-speaker N`` keeps only N emotions of each test speaker
(chosen per speaker, seeded) to show what speaker normalisation does when a speaker does not span the emotions.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, SAMPLE, SHARED_RAVDESS, machine_line  # noqa: E402

from ser_hf.configs import parse_recipe  # noqa: E402
from ser_hf.dataset_info import column_values  # noqa: E402
from ser_hf.training import (add_functionals_once, audit_split, load_dataset_from_args, make_folds,  # noqa: E402
                             train_and_evaluate)

#: Recipe keys of a fixed split, dropped for k-fold.
SPLIT_KEYS = ("train_speakers", "validation_speakers", "test_speakers", "test_size", "folds")
METRICS = ("unweighted_accuracy", "accuracy", "macro_f1")


def kfold_recipe(recipe: Path, data_dir: Path, folds: int, seed: int, output_dir: Path,
                 validation_size: float) -> dict:
    """The recipe's values with its split replaced by speaker k-fold on `data_dir`."""
    values = {key: value for key, value in yaml.safe_load(recipe.read_text()).items() if key not in SPLIT_KEYS}
    values.update(data_dir=str(data_dir), split_protocol="kfold", num_folds=folds, validation_size=validation_size,
                  split_seed=seed, seed=seed, output_dir=str(output_dir), disable_tqdm=True, report_to="none",
                  push_to_hub=False)
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


def run_recipe(values: dict, emotions_per_speaker: Optional[int]) -> list[dict]:
    """Train every fold as ``ser_hf.train`` does (same stages), optionally reducing each test fold first."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(values, handle)
    model_args, data_args, augmentation_args, training_args = parse_recipe([handle.name])
    dataset = add_functionals_once(load_dataset_from_args(data_args), model_args, data_args)
    reports = []
    for fold, splits in make_folds(dataset, data_args):
        if emotions_per_speaker:
            splits = reduce_test_emotions(splits, emotions_per_speaker, seed=training_args.seed + fold)
        report = train_and_evaluate(model_args, data_args, augmentation_args, training_args, splits, fold=fold,
                                    leakage_report=audit_split(splits, fold))
        report["bench_minutes"] = report["training"]["wall_seconds"] / 60
        reports.append(report)
        test = report["evaluation"]["test"]
        print(f"  fold {fold}: test speakers {', '.join(report['split']['speakers']['test'])}; "
              + ", ".join(f"{name} {100 * test[name]:.1f}" for name in METRICS)
              + f"; {report['bench_minutes']:.1f} min", flush=True)
    return reports


def mean_std(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    return f"{values.mean():.1f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.1f}"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipes", nargs="+", type=Path)
    parser.add_argument("--folds", type=int, help="speaker folds (default 5; 4 with --quick)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per recipe (split and training)")
    parser.add_argument("--fold-seed", type=int, default=42,
                        help="seed of the first seed's folds and training (42: the folds BENCHMARKS.md reports); tune "
                             "recipes on other fold seeds, then report on 42")
    parser.add_argument("--validation-size", type=float, default=0.2,
                        help="share of each fold's training speakers held out for early stopping")
    parser.add_argument("--quick", action="store_true", help="the shipped sample (actors 01-08) instead")
    parser.add_argument("--data-dir", type=Path, help="RAVDESS folder (default ../shared/data/ravdess_16k)")
    parser.add_argument("--test-emotions-per-speaker", type=int, help="keep N emotions of each test speaker")
    parser.add_argument("--output-dir", type=Path, default=REPO / "outputs" / "bench_accuracy")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or (SAMPLE if args.quick else SHARED_RAVDESS)
    folds = args.folds or (4 if args.quick else 5)
    logging.basicConfig(level=logging.WARNING)
    print(machine_line())
    print(f"data: {data_dir}; {folds} speaker folds, validation speakers from each fold's training speakers "
          f"({args.validation_size:.0%}); fold seed {args.fold_seed}, seeds: {args.seeds}"
          + (f"; test speakers reduced to {args.test_emotions_per_speaker} emotions each"
             if args.test_emotions_per_speaker else ""))
    results = {}
    for recipe in args.recipes:
        print(f"\n{recipe}", flush=True)
        reports = []
        for seed in range(args.seeds):
            output_dir = args.output_dir / f"{recipe.stem}-seed{seed}" / (
                f"test{args.test_emotions_per_speaker}" if args.test_emotions_per_speaker else "all")
            values = kfold_recipe(recipe, data_dir, folds, args.fold_seed + seed, output_dir, args.validation_size)
            reports += run_recipe(values, args.test_emotions_per_speaker)
        tests = [report["evaluation"]["test"] for report in reports]
        line = {name: mean_std([100 * test[name] for test in tests]) for name in METRICS}
        minutes = [report["bench_minutes"] for report in reports]
        normalization = reports[0].get("normalization") or {}
        print(f"  mean ± std over {len(reports)} folds: UA {line['unweighted_accuracy']}, WA {line['accuracy']}, "
              f"macro-F1 {line['macro_f1']}; {np.sum(minutes) / args.seeds:.1f} min per {folds} folds"
              + (f"; {normalization['protocol']}" if normalization else ""), flush=True)
        results[str(recipe)] = {"folds": reports, "summary": line}
    return results


if __name__ == "__main__":
    main()
