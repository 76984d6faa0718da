"""The ``ser-hf`` sub-commands: each one's module (``ser_hf/cli/<module>.py``, with ``add_<module>_parser``) and its
one-line help, in the order ``ser-hf --help`` lists them. The parser builds only the command being run from its
module; the others are listed by name and help alone, so that one command imports no other's module."""

from __future__ import annotations

from typing import NamedTuple

from ..extras import install_hint


class Command(NamedTuple):
    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "data": Command("data", "corpora: summaries, splits, leakage audits"),
    "train": Command("train", "train and evaluate from a recipe (same as python -m ser_hf.train)"),
    "adapt": Command(
        "adapt",
        "adapt a trained model to your recordings with a few labelled clips (and unlabelled ones: self-training)",
    ),
    "suggest": Command(
        "suggest",
        "choose which of your unlabelled recordings to label for ser-hf adapt, into a labelling sheet (CSV)",
    ),
    "predict": Command("predict", "classify audio files or folders with a trained model, windowing long recordings"),
    "evaluate": Command(
        "evaluate",
        "evaluate trained models on corpora (cross-corpus on their shared labels); one model and one corpus write an "
        "evaluation report, more write a matrix",
    ),
    "export": Command("export", "export a trained model to ONNX (checked against torch with onnxruntime)"),
    "ensemble": Command(
        "ensemble", "save trained models as one ensemble model (the weighted mean of their probabilities)"
    ),
    "push": Command("push", "push a finished run (model, card, reports, recipe) to the Hub"),
    "sweep": Command("sweep", "train a recipe at every point of a grid and rank the points"),
    "compare": Command("compare", "one table and bar chart of several finished runs (mean ± std for k-fold runs)"),
    "leakage-study": Command(
        "leakage_study",
        "train a recipe speaker-independently and on a random split of the same size, and report the inflation",
    ),
    "kfold": Command(
        "kfold", "a recipe's speaker k-fold accuracy: every speaker tested once, the folds pooled with an interval"
    ),
    "loco": Command(
        "loco",
        "a recipe's leave-one-corpus-out accuracy: each of its corpora left out in turn, scored on the emotions they "
        "share",
    ),
    "learning-curve": Command(
        "learning_curve",
        "how many labelled clips an adaptation needs: ser-hf adapt at k clips per emotion, drawn again and again, "
        "scored on test speakers",
    ),
    "embed": Command(
        "embed", "pooled embeddings of a model for a corpus, and their 2-D map by emotion and by speaker"
    ),
    "cache": Command(
        "cache", "list what ser-hf keeps in its cache folder (decoded audio, encoder states), delete it by age or all"
    ),
    "app": Command(
        "app", f"a web app to try a model: upload or record speech, see its emotion scores ({install_hint('app')})"
    ),
}

__all__ = ["COMMANDS", "Command"]
