"""Speaker k-fold accuracy of shipped recipes on RAVDESS: a driver over ``ser-hf kfold``
(:func:`ser_hf.experiments.kfold.run_kfold`), which holds the protocol. This script only names the corpora's folders
(``../shared/data``, or the shipped sample with ``--quick``), the fold seeds and the result files.

    python -m bench.accuracy recipes/ravdess_crnn.yaml recipes/ravdess_opensmile.yaml [--fold-seeds 42 7]
    python -m bench.accuracy recipes/demo.yaml --quick             # the shipped sample (8 actors), 4 folds
    python -m bench.accuracy recipes/general_whisper_base.yaml \\
        --model-path openai/whisper-base=../shared/models/whisper-base-encoder --num_train_epochs 15

RAVDESS is the corpus the folds split (actors 01-20 of ``../shared/data/ravdess_16k``: 5 folds of 4 test actors); a
recipe merging corpora trains on its others (from ``../shared/data``) in every fold. Any other ``--key value``
overrides the recipes (a dotted key sets one entry of a mapping: ``--feature_extractor_config.normalization corpus``).
Each recipe and fold seed writes the k-fold result file ``RESULTS/accuracy-NAME-seedS.json`` (NAME: the recipe's,
with a digest of the overrides where there are any; read back, fold by fold, when run again) and prints its row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Mapping

from bench.harness import EXTRA_CORPORA, REPO, SAMPLE, SHARED_CORPORA, SHARED_RAVDESS
from ser_hf.cli.flags import model_paths
from ser_hf.errors import RecipeError
from ser_hf.experiments.kfold import kfold_row, run_kfold
from ser_hf.recipe.overrides import command_line_values
from ser_hf.recipe.yaml_io import read_recipe_file

#: The corpus the benchmark's folds split; a merged recipe's other corpora train in every fold.
FOLDED_CORPUS = "ravdess"


def corpus_folders(recipe: Path, ravdess: Path) -> list[str]:
    """The folder of each corpus the recipe names, in its order: `ravdess` for RAVDESS, ``../shared/data`` for the
    others (a corpus it lacks is named before anything loads)."""
    corpora = read_recipe_file(recipe).get("corpus") or [FOLDED_CORPUS]
    corpora = [corpora] if isinstance(corpora, str) else corpora
    if FOLDED_CORPUS not in corpora:
        raise RecipeError(f"{recipe} does not hold {FOLDED_CORPUS}, the corpus the benchmark's folds split.")
    shared = {**SHARED_CORPORA, **EXTRA_CORPORA, FOLDED_CORPUS: ravdess}
    unknown = [name for name in corpora if name not in shared]
    if unknown:
        raise RecipeError(f"{recipe} merges {', '.join(unknown)}: not among ../shared/data's {', '.join(shared)}.")
    return [str(shared[name]) for name in corpora]


def variant_name(recipe: Path, overrides: Mapping[str, Any]) -> str:
    """A recipe's name in result files and run folders: its file name, and a digest of its overrides where there are
    any, so that a variant never reads back (or is refused by) the plain recipe's runs."""
    if not overrides:
        return recipe.stem
    return f"{recipe.stem}-{hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]}"


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser("python -m bench.accuracy", description=__doc__, allow_abbrev=False)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("recipes", nargs="+", type=Path)
    parser.add_argument("--model-path", dest="model_paths", action="append", default=[], metavar="ID=FOLDER")
    parser.add_argument("--output-dir", type=Path, default=REPO / "outputs" / "bench_accuracy", help="the runs")
    parser.add_argument("--results", type=Path, default=REPO / "outputs" / "bench_accuracy", help="result files")
    parser.add_argument("--quick", action="store_true", help="the shipped sample (actors 01-08), 4 folds")
    parser.add_argument("--data-dir", type=Path, help="RAVDESS folder (default ../shared/data/ravdess_16k)")
    parser.add_argument("--folds", type=int, help="speaker folds (default 5; 4 with --quick)")
    parser.add_argument(
        "--fold-seeds",
        type=int,
        nargs="+",
        default=[42],
        help="fold seeds, each a k-fold (42: the folds BENCHMARKS.md reports; choose options on others)",
    )
    args, recipe_flags = parser.parse_known_args(argv)
    command = f"{parser.prog} {shlex.join(sys.argv[1:] if argv is None else argv)}"
    ravdess = args.data_dir or (SAMPLE if args.quick else SHARED_RAVDESS)
    try:  # an override, a folder pair or a corpus that does not read is a usage error naming it
        overrides, paths = command_line_values(recipe_flags), model_paths(args.model_paths, "--model-path")
        folders = {recipe: corpus_folders(recipe, ravdess) for recipe in args.recipes}
    except RecipeError as error:
        parser.error(str(error))
    documents = []
    for recipe in args.recipes:
        name = variant_name(recipe, overrides)
        for fold_seed in args.fold_seeds:
            output = args.results / f"accuracy-{name}-seed{fold_seed}.json"
            document = run_kfold(
                recipe,
                output,
                folds=args.folds or (4 if args.quick else 5),
                fold_seed=fold_seed,
                overrides={"data_dir": folders[recipe], "report_to": "none", "push_to_hub": False, **overrides},
                model_paths=paths,
                output_dir=args.output_dir / f"{name}-seed{fold_seed}",
                fold_corpus=FOLDED_CORPUS if len(folders[recipe]) > 1 else None,
                command=command,
            )
            print(kfold_row(document), f"\nwritten to {output}", flush=True)
            documents.append(document)
    return documents


if __name__ == "__main__":
    main()
