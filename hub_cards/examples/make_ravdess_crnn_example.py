"""Generate ``hub_cards/examples/ravdess_crnn/`` from a finished run of ``recipes/ravdess_crnn.yaml``.

    .venv/bin/python -m ser_hf.train recipes/ravdess_crnn.yaml --data_dir ../shared/data/ravdess_16k \\
        --validation_speakers 17 18 --test_speakers 19 20 --output_dir runs/ravdess_crnn
    .venv/bin/python hub_cards/examples/make_ravdess_crnn_example.py

It evaluates the run's model on RAVDESS actors 17-20 with ``ser-hf evaluate`` (writing the report into the run's
``reports/``, as a push would publish it), writes the run's ``recipe.yaml`` when the run predates it, renders the model
card for the repository id the model would be pushed to, and copies the card with the files it links to (plots,
report, recipe, metrics) into ``hub_cards/examples/ravdess_crnn/``. Nothing is pushed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default=str(REPO / "runs" / "ravdess_crnn"), help="the finished run")
    parser.add_argument(
        "--recipe",
        default=str(REPO / "recipes" / "ravdess_crnn.yaml"),
        help="the recipe the run was trained from (for recipe.yaml when the run lacks it)",
    )
    parser.add_argument(
        "--data-dir",
        default=str(REPO.parent / "shared" / "data" / "ravdess_16k"),
        help="RAVDESS (folders Actor_01 ... Actor_20)",
    )
    parser.add_argument("--speakers", default="17,18,19,20", help="actors the evaluation report is on")
    parser.add_argument("--model-id", default="ser-hf/ravdess-crnn", help="repository id the card is written for")
    parser.add_argument("--output", default=str(REPO / "hub_cards" / "examples" / "ravdess_crnn"))
    args = parser.parse_args(argv)

    from ser_hf.evaluation.evaluate_model import CorpusSource, evaluate_model
    from ser_hf.hub.card import write_model_card
    from ser_hf.recipe import RECIPE_FILE, Recipe

    run_dir = Path(args.run_dir)
    missing = [name for name in ("model.safetensors", "metrics.json") if not (run_dir / name).is_file()]
    if missing:
        print(f"{run_dir} has not finished ({', '.join(missing)} missing); train it first.", file=sys.stderr)
        return 1

    if not (run_dir / RECIPE_FILE).is_file():
        Recipe.parse([args.recipe, "--data_dir", args.data_dir, "--output_dir", str(run_dir)]).write_yaml(run_dir)

    speakers = [s.strip() for s in args.speakers.split(",") if s.strip()]
    report_name = f"ravdess-actors-{speakers[0]}-{speakers[-1]}"
    evaluate_model(
        str(run_dir),
        CorpusSource("ravdess", args.data_dir),
        speakers=speakers,
        output_dir=run_dir / "reports" / report_name,
    )
    card_path = write_model_card(run_dir, model_id=args.model_id)

    output = Path(args.output)
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    shutil.copy(card_path, output / "README.md")
    for name in (
        "metrics.json",
        "report.md",
        RECIPE_FILE,
        "training_curves.png",
        *(
            p.name
            for pattern in ("confusion_matrix_*.png", "reliability_diagram_*.png")
            for p in run_dir.glob(pattern)
        ),
    ):
        if (run_dir / name).is_file():
            shutil.copy(run_dir / name, output / name)
    shutil.copytree(run_dir / "reports", output / "reports", ignore=shutil.ignore_patterns("*.partial"))
    print(f"Example card and report written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
