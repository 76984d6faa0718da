"""Train and evaluate a speech emotion classifier from a recipe.

    python -m ser_hf.train recipes/ravdess_crnn.yaml [--key value ...]
    accelerate launch -m ser_hf.train recipes/cremad_full.yaml
    ser-hf train recipes/demo.yaml

Each section of :func:`main` is one call into the module that does the work. The recipe's keys are checked before
anything else, and before torch and transformers are imported (seconds on a busy machine), so that a misspelt key is
answered at once: the modules that train are imported where used, after that check.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from .recipe.keys import check_recipe_before_imports

logger = logging.getLogger("ser_hf")


def setup_logging(training_args) -> None:
    import datasets
    import transformers

    from .hub.token import redact_log_handlers

    level = training_args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level, stream=sys.stdout)
    redact_log_handlers()  # a Hub error that echoes the token is logged without it
    # ser-hf's own progress (data, split audit, metrics) is shown on the main process unless asked otherwise.
    logger.setLevel(logging.INFO if training_args.should_log and training_args.log_level == "passive" else level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    if training_args.disable_tqdm:
        # The Trainer's bars follow disable_tqdm; the libraries draw their own (transformers loading weights and
        # writing model shards, datasets mapping), which only their switches turn off.
        transformers.utils.logging.disable_progress_bar()
        datasets.disable_progress_bars()


def main(args: Optional[Sequence[str]] = None) -> list[dict]:
    """Run a recipe; returns the report of every split trained (one, or one per fold). An ensemble recipe
    (``ensemble_members``, see :mod:`ser_hf.training.ensemble`) trains each member recipe this way, then fuses them."""
    args = list(sys.argv[1:] if args is None else args)
    # The recipe's keys, before torch and transformers load: a misspelt key is answered at once.
    check_recipe_before_imports(args)
    from .recipe.parser import parse_recipe
    from .recipe.yaml_io import read_recipe_file
    from .run_folder import check_output_dir, hold_output_dir
    from .training.ensemble import is_ensemble_recipe, train_ensemble

    if args and args[0].endswith((".yaml", ".yml")) and Path(args[0]).is_file():
        if is_ensemble_recipe(read_recipe_file(args[0])):
            if not logging.getLogger().handlers:
                logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
            return train_ensemble(args[0], args[1:], train=main)
    # Configuration: YAML recipe, then command-line overrides; unknown keys stop here.
    model_args, data_args, augmentation_args, training_args = parse_recipe(args)
    augmentation_args.check_model(model_args)
    setup_logging(training_args)
    logger.info(
        "Training %s on %s (%s protocol) into %s",
        model_args.model_type,
        ", ".join(data_args.corpus),
        data_args.split_protocol,
        training_args.output_dir,
    )

    # The output folder: never a data folder or a folder of the user's files, and one training in it at a time.
    if training_args.should_save:
        check_output_dir(training_args.output_dir, data_args.data_dir)
    with hold_output_dir(training_args.output_dir, enabled=training_args.should_save):
        return run(
            model_args,
            data_args,
            augmentation_args,
            training_args,
            recipe_args=args,
        )


def run(model_args, data_args, augmentation_args, training_args, recipe_args: list[str]) -> list[dict]:
    """The run itself, once the recipe is parsed and the output folder held: data, splits, training, card, push."""
    from .evaluation.report import write_fold_summary
    from .training.stages import finish_run, prepare_recipe_data, train_folds

    # Data and model inputs: the corpora decoded (cached), and what the recipe's input mode computes once for the
    # whole corpus before it is split (the frozen encoder's outputs, the openSMILE functionals).
    input_mode, dataset = prepare_recipe_data(model_args, data_args, augmentation_args, training_args)

    # Split by speaker, audit each split (leakage, labels) before its model is built, then train and evaluate each.
    recipe = recipe_args[0] if recipe_args and not recipe_args[0].startswith("-") else None
    reports = [
        report
        for _, _, report in train_folds(
            model_args, data_args, augmentation_args, training_args, input_mode, dataset, recipe=recipe
        )
    ]

    # Folds: mean ± std of every metric.
    if len(reports) > 1 and training_args.should_save:
        split = "test" if all("test" in r["evaluation"] for r in reports) else "validation"
        summary = write_fold_summary(Path(training_args.output_dir), reports, split=split)
        logger.info(
            "%d folds, %s UA %.1f ± %.1f %%",
            summary["folds"],
            split,
            100 * summary["mean"]["unweighted_accuracy"],
            100 * summary["std"]["unweighted_accuracy"],
        )

    # Card and push: the recipe and model card of the run, then the Hub when push_to_hub is set (main process).
    commit = finish_run(model_args, data_args, augmentation_args, training_args, reports, recipe_args=recipe_args)
    if training_args.should_save:
        logger.info("%s", where_the_run_is(Path(training_args.output_dir), reports, commit))
    return reports


def where_the_run_is(output_dir: Path, reports: list[dict], commit=None) -> str:
    """The closing line of a run: the folder it was written to, its model(s), and the Hub commit when pushed."""
    folds = [f"fold-{report['fold']}" for report in reports if report.get("fold") is not None]
    if folds:
        models = f"{len(folds)} fold model(s) in {', '.join(folds)}" + (
            ", mean ± std in summary.json" if len(folds) > 1 else ""
        )
        line = f"Finished: the run is in {output_dir} ({models})"
    else:
        line = (
            f"Finished: the run is in {output_dir} (model, metrics.json, model card); try it: "
            f"ser-hf predict {output_dir} AUDIO_FILE"
        )
    return line + (f"; pushed to {commit.commit_url}" if commit is not None else "")


if __name__ == "__main__":
    from .cli.errors import RESUME_HINT, run_reporting_errors

    # The errors `ser-hf train` prints as one line (a recipe mistake, a corpus or split problem, a folder that cannot
    # be written) are printed the same way here, also under `accelerate launch -m ser_hf.train`; so is Ctrl-C.
    sys.exit(run_reporting_errors(main, "ser_hf.train", interrupted_hint=RESUME_HINT))
