"""Cross-corpus accuracy: each recipe trained on every speaker of one corpus and tested on every speaker of another,
on the emotions the two share, for every ordered pair of the real corpora in ``../shared/data``.

    python bench/crosscorpus.py recipes/ravdess_whisper_base_fast.yaml \\
        recipes/ravdess_whisper_base_fast_speaker.yaml \\
        --model-path openai/whisper-base=../shared/models/whisper-base-encoder --results docs/results/crosscorpus.json

The corpora are loaded merged (``corpus: [ravdess, tess]``, speakers prefixed ``ravdess:01``, ``tess:OAF``) on the
labels they share (RAVDESS's calm, which TESS lacks, is left out), so a FAST recipe encodes every clip once for both
directions. Each direction trains on the source corpus' speakers for the recipe's fixed epochs (no validation speakers:
the shipped FAST recipes choose nothing on them) and tests on the target corpus' speakers, the way ``ser_hf.train``
trains a split. Printed: UA, WA and macro-F1 on the target corpus, with a speaker-bootstrap 95 % interval where it has
enough speakers (TESS has 2: its figure has none). With two corpora, leave-one-corpus-out is these two directions.
Speaker-normalised recipes standardise the target speakers with their own statistics (transductive), as in k-fold;
``--set feature_extractor_config.normalization=corpus`` standardises each corpus with its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import (
    METRICS,
    SPLIT_KEYS,
    add_model_path_argument,
    add_override_argument,
    parse_model_paths,
    parse_overrides,
    prepare_recipe,
    train_split,
    variant_folder,
    variant_name,
)
from harness import REPO, SHARED_CORPORA, machine_line

from ser_hf.data.dataset_info import column_values
from ser_hf.data.splits import speaker_split
from ser_hf.evaluation.bootstrap import format_interval, pooled_intervals
from ser_hf.recipe.errors import RecipeError
from ser_hf.recipe.overrides import set_value

#: The emotions RAVDESS and TESS share (TESS has no calm).
SHARED_LABELS = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def merged_values(
    recipe: Path, output_dir: Path, model_paths: dict[str, str], overrides: Optional[Mapping[str, Any]] = None
) -> dict:
    """The recipe's values (changed by `overrides`, ``--set``) on the merged corpora and shared labels, its own split
    and corpus keys dropped."""
    values = {
        key: value
        for key, value in yaml.safe_load(recipe.read_text()).items()
        if key not in SPLIT_KEYS + ("validation_size", "label_map", "labels")
    }
    for key, value in (overrides or {}).items():
        values = set_value(values, key, value)
    if values.get("load_best_model_at_end", True) or values.get("early_stopping_patience") is not None:
        raise RecipeError(
            f"{recipe} chooses its epoch on validation speakers; the cross-corpus benchmark trains on every source "
            "speaker for fixed epochs (load_best_model_at_end: false)."
        )
    if values.get("model_name_or_path") in model_paths:
        values["model_name_or_path"] = model_paths[values["model_name_or_path"]]
    values.update(
        corpus=list(SHARED_CORPORA),
        data_dir=[str(path) for path in SHARED_CORPORA.values()],
        labels=SHARED_LABELS,
        split_protocol="speaker",
        output_dir=str(output_dir),
        disable_tqdm=True,
        report_to="none",
        push_to_hub=False,
    )
    return values


def run_recipe(
    recipe: Path, output_root: Path, model_paths: dict[str, str], overrides: Optional[Mapping[str, Any]] = None
) -> list[dict]:
    overrides = overrides or {}
    output_dir = output_root / variant_folder(recipe, overrides)
    parsed, input_mode, dataset = prepare_recipe(merged_values(recipe, output_dir, model_paths, overrides))
    speakers = column_values(dataset, "speaker_id")
    rows = []
    for fold, (source, target) in enumerate((a, b) for a in SHARED_CORPORA for b in SHARED_CORPORA if a != b):
        of = {corpus: sorted({s for s in speakers if s.startswith(f"{corpus}:")}) for corpus in (source, target)}
        splits = speaker_split(dataset, train_speakers=of[source], test_speakers=of[target])
        splits.pop("validation", None)  # none: the recipe trains on every source speaker for fixed epochs
        report = train_split(parsed, input_mode, splits, fold)
        test = report["evaluation"]["test"]
        intervals = pooled_intervals([test])
        row = {
            "recipe": str(recipe),
            "variant": variant_name(recipe, overrides),
            "train": source,
            "test": target,
            "train_speakers": len(of[source]),
            "test_speakers": len(of[target]),
            "minutes": round(report["bench_minutes"], 2),
            "protocol": (report.get("normalization") or {}).get("protocol"),
            **{name: round(100 * test[name], 2) for name in METRICS},
            "confidence_intervals": intervals,
        }
        ua = f"{row['unweighted_accuracy']:.1f} {format_interval(intervals, 'unweighted_accuracy')}"
        print(
            f"  {source} -> {target} ({row['train_speakers']} -> {row['test_speakers']} speakers): UA {ua}, "
            f"WA {row['accuracy']:.1f}, macro-F1 {row['macro_f1']:.1f}; {row['minutes']:.1f} min",
            flush=True,
        )
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| recipe | train → test | UA [95 % CI] | WA | macro-F1 | minutes |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        ua = f"{row['unweighted_accuracy']:.1f} {format_interval(row['confidence_intervals'], 'unweighted_accuracy')}"
        lines.append(
            f"| `{row.get('variant', Path(row['recipe']).stem)}` | {row['train']} → {row['test']} | {ua} | "
            f"{row['accuracy']:.1f} | {row['macro_f1']:.1f} | {row['minutes']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipes", nargs="+", type=Path)
    add_model_path_argument(parser)
    add_override_argument(parser)
    parser.add_argument("--output-dir", type=Path, default=REPO / "outputs" / "bench_crosscorpus")
    parser.add_argument("--results", type=Path, help="write the rows to this .json and a table beside it (.md)")
    args = parser.parse_args(argv)
    try:
        model_paths = parse_model_paths(args.model_paths)
        overrides = parse_overrides(args.overrides)
    except RecipeError as error:
        parser.error(str(error))
    missing = [str(path) for path in SHARED_CORPORA.values() if not path.is_dir()]
    if missing:
        raise SystemExit(f"{', '.join(missing)} missing: the cross-corpus benchmark needs ../shared/data.")
    logging.basicConfig(level=logging.WARNING)
    print(machine_line())
    print(f"corpora: {', '.join(SHARED_CORPORA)}; labels shared: {', '.join(SHARED_LABELS)}")
    rows = []
    for recipe in args.recipes:
        print(f"\n{variant_name(recipe, overrides)}", flush=True)
        rows += run_recipe(recipe, args.output_dir, model_paths, overrides)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(
            json.dumps({"command": " ".join(sys.argv), "machine": machine_line(), "rows": rows}, indent=2) + "\n"
        )
        args.results.with_suffix(".md").write_text(markdown_table(rows))
        print(f"\nwrote {args.results} and {args.results.with_suffix('.md')}")
    return rows


if __name__ == "__main__":
    main()
