"""Running a recipe from start to finish: the one sequence that ``python -m ser_hf.train`` (and ``ser-hf train``)
and every point of a sweep call. An ensemble recipe trains each member recipe this way, then fuses them; any other
recipe is parsed (an unknown key stops it there), its output folder checked and held, and its sections run in order:
data, splits, training and evaluation of each split, the k-fold summary, the recipe and card, the push.

Heavy modules (datasets, torch, the training stages) are imported where they are used, so that importing this module
costs no more than the recipe parser.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

from ..recipe.keys import split_recipe_args
from ..recipe.recipe import Recipe
from ..recipe.yaml_io import read_recipe_file
from ..run_folder import SUMMARY_FILE, check_output_dir, fold_folder, hold_output_dir
from ..run_record import RunReport

logger = logging.getLogger("ser_hf")


def setup_logging(training_args) -> None:
    """Log ser-hf's progress (data, split audit, metrics) on the main process at INFO unless asked otherwise, and
    datasets' and transformers' at the run's level, Hub tokens redacted from every message."""
    import datasets
    import transformers

    from ..hub.token import redact_log_handlers

    level = training_args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level, stream=sys.stdout)
    redact_log_handlers()  # a Hub error that echoes the token is logged without it
    logger.setLevel(logging.INFO if training_args.should_log and training_args.log_level == "passive" else level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    if training_args.disable_tqdm:
        # The Trainer's bars follow disable_tqdm; the libraries draw their own (transformers loading weights and
        # writing model shards, datasets mapping), which only their switches turn off.
        transformers.utils.logging.disable_progress_bar()
        datasets.disable_progress_bars()


#: The loggers whose INFO lines describe loading or building a model (``Built SerWhisperForAudioClassification: ...``,
#: ``Whisper encoder window: ...``): a run builds the same model more than once (to encode the corpus, then for each
#: split, seeded alike), and says so once.
MODEL_LOGGERS = "ser_hf.models"


class OncePerRunFilter(logging.Filter):
    """A handler filter that lets through an INFO line of :data:`MODEL_LOGGERS` the first time its text is logged in
    the run, and drops it after (one record passes every handler it reaches)."""

    def __init__(self):
        super().__init__()
        self.first_records: dict[tuple[str, str], logging.LogRecord] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not (
            record.name == MODEL_LOGGERS or record.name.startswith(f"{MODEL_LOGGERS}.")
        ):
            return True
        return self.first_records.setdefault((record.name, record.getMessage()), record) is record


@contextmanager
def model_lines_once() -> Iterator[None]:
    """While a run lasts, each model loading or building line is logged once (:class:`OncePerRunFilter` on the
    handlers those lines reach); the handlers are left as they were afterwards."""
    loggers = [logging.getLogger(), logging.getLogger("ser_hf"), logging.getLogger(MODEL_LOGGERS)]
    handlers = list(dict.fromkeys(handler for logger_ in loggers for handler in logger_.handlers))
    once = OncePerRunFilter()
    for handler in handlers:
        handler.addFilter(once)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(once)


def check_pretrained_model(model_args) -> None:
    """Raise at once when the recipe's ``model_name_or_path`` cannot be loaded from where it points: a local folder
    that is not there, or a Hub repository that is neither in the Hub cache nor reachable (``HF_HUB_OFFLINE`` set,
    no network, no such repository); see :func:`~ser_hf.models.runtime.location.check_model_location`."""
    if model_args.model_name_or_path:
        from ..models.runtime.location import check_model_location

        check_model_location(model_args.model_name_or_path, revision=model_args.model_revision)


def run_recipe(args: Sequence[str], file_values: Optional[Mapping[str, Any]] = None) -> list[RunReport]:
    """Run ``RECIPE.yaml [--key value ...]`` (`file_values`: the recipe file's values where the caller read them
    already, as :func:`ser_hf.train.main` does for its early checks); returns the report (``metrics.json``) of every
    split trained: one, or one per fold. An ensemble recipe (``ensemble_members``, see :mod:`ser_hf.training.ensemble`)
    trains each member recipe from its values through :func:`run_parsed_recipe`, then fuses them."""
    from .ensemble import is_ensemble_recipe, train_ensemble

    path, flags = split_recipe_args(args)
    if file_values is None and path is not None:
        file_values = read_recipe_file(path)
    if path is not None and is_ensemble_recipe(file_values):
        if not logging.getLogger().handlers:
            logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
        return train_ensemble(path, file_values, flags, train=run_parsed_recipe)
    # Configuration: YAML recipe, then command-line overrides; unknown keys stop here.
    return run_parsed_recipe(Recipe.parse(args, file_values))


def run_parsed_recipe(recipe: Recipe) -> list[RunReport]:
    """Run a parsed :class:`~ser_hf.recipe.Recipe` (:meth:`~ser_hf.recipe.Recipe.from_values` makes one from values:
    the entry the experiments call); returns the report of every split trained."""
    # A Hub model that cannot be had (offline and not cached, no such repository, the Hub unreachable) stops the run
    # here, in one line, before the corpus is decoded or anything is written.
    check_pretrained_model(recipe.model)
    setup_logging(recipe.training)
    logger.info(
        "Training %s on %s (%s protocol) into %s",
        recipe.model.model_type,
        ", ".join(recipe.data.corpus),
        recipe.data.split_protocol,
        recipe.training.output_dir,
    )
    # The output folder: never a data folder or a folder of the user's files, and one training in it at a time.
    if recipe.training.should_save:
        check_output_dir(recipe.training.output_dir, recipe.data.data_dir)
    with hold_output_dir(recipe.training.output_dir, enabled=recipe.training.should_save), model_lines_once():
        return train_recipe(recipe)


def train_recipe(recipe: Recipe) -> list[RunReport]:
    """The run itself, once the recipe is parsed and its output folder held: data, splits, training, the k-fold
    summary, the recipe and card, the push."""
    from ..evaluation.report import write_fold_summary
    from .data_stage import prepare_recipe_data
    from .export_stage import finish_run
    from .train_stage import train_folds

    # Data and model inputs: the corpora decoded (cached), and what the recipe's input mode computes once for the
    # whole corpus before it is split (the frozen encoder's outputs, the openSMILE functionals).
    input_mode, dataset = prepare_recipe_data(recipe)

    # Split by speaker, audit each split (leakage, labels) before its model is built, then train and evaluate each.
    reports = train_folds(recipe, input_mode, dataset)

    # Folds: mean ± std of every metric.
    output_dir = Path(recipe.training.output_dir)
    if len(reports) > 1 and recipe.training.should_save:
        split = "test" if all("test" in report.evaluation for report in reports) else "validation"
        summary = write_fold_summary(output_dir, reports, split=split)
        logger.info(
            "%d folds, %s UA %.1f ± %.1f %%",
            summary.folds,
            split,
            100 * summary.mean["unweighted_accuracy"],
            100 * summary.std["unweighted_accuracy"],
        )

    # Card and push: the recipe and model card of the run, then the Hub when push_to_hub is set (main process).
    commit = finish_run(recipe, reports)
    if recipe.training.should_save:
        logger.info("%s", where_the_run_is(output_dir, reports, commit))
    return reports


def where_the_run_is(output_dir: Path, reports: Sequence[RunReport], commit=None) -> str:
    """The closing line of a run: the folder it was written to, its model(s), and the Hub commit when pushed."""
    folds = [fold_folder(report.fold) for report in reports if report.fold is not None]
    if folds:
        models = f"{len(folds)} fold model(s) in {', '.join(folds)}" + (
            f", mean ± std in {SUMMARY_FILE}" if len(folds) > 1 else ""
        )
        line = f"Finished: the run is in {output_dir} ({models})"
    else:
        line = (
            f"Finished: the run is in {output_dir} (model, metrics.json, model card); try it: "
            f"ser-hf predict {output_dir} AUDIO_FILE"
        )
    return line + (f"; pushed to {commit.commit_url}" if commit is not None else "")


__all__ = [
    "OncePerRunFilter",
    "check_pretrained_model",
    "model_lines_once",
    "run_recipe",
    "setup_logging",
    "train_recipe",
    "where_the_run_is",
]
