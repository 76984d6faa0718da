"""Experiments as commands whose output is a table and a picture: hyperparameter sweeps, comparisons of finished
runs, the speaker-leakage study, embedding maps, and the adaptation learning curve.

    ser-hf sweep RECIPE.yaml --grid KEY=V1,V2 [--grid KEY2=...] [--random N]
    ser-hf compare RUN_DIR [RUN_DIR ...]
    ser-hf leakage-study RECIPE.yaml
    ser-hf embed --model DIR --corpus NAME --data-dir DIR
    ser-hf kfold RECIPE.yaml --folds 5 --fold_seed 42 --output result.json
    ser-hf loco RECIPE.yaml --seeds 42 7 43 --output result.json
    run_protocol(LeaveOneSpeakerOut(), "RECIPE.yaml", "result.json")
    ser-hf learning-curve MODEL --data_dir DIR --adapt_speakers A,B --test_speakers C --output curve.json

Each builds on the training stages (:mod:`ser_hf.training.train_stage` and its siblings) and on
:func:`ser_hf.training.run_recipe.run_recipe`, which runs a recipe as ``python -m ser_hf.train`` does: a sweep point or
a leakage-study run is a normal training run directory, which ``compare`` reads. Their command lines live in
:mod:`ser_hf.cli` (``cli/sweep.py``, ``cli/compare.py``, ``cli/leakage_study.py``, ``cli/embed.py``); the names below
are imported when first used.
"""

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

#: Public name -> the module that defines it.
_EXPORTS = {
    "KFold": ".kfold",
    "LeaveOneCorpusOut": ".loco",
    "LeaveOneSpeakerOut": ".loso",
    "Protocol": ".protocol",
    "compare_runs": ".compare",
    "embed_corpus": ".embed",
    "matched_random_split": ".leakage",
    "pooled_embeddings": ".embed",
    "run_leakage_study": ".leakage",
    "run_kfold": ".kfold",
    "run_learning_curve": ".learning_curve",
    "run_loco": ".loco",
    "run_protocol": ".protocol",
    "run_sweep": ".sweep",
    "summarize_run": ".compare",
    "write_comparison": ".compare",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "KFold",
    "LeaveOneCorpusOut",
    "LeaveOneSpeakerOut",
    "Protocol",
    "compare_runs",
    "embed_corpus",
    "matched_random_split",
    "pooled_embeddings",
    "run_kfold",
    "run_leakage_study",
    "run_learning_curve",
    "run_loco",
    "run_protocol",
    "run_sweep",
    "summarize_run",
    "write_comparison",
]

if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from .compare import compare_runs, summarize_run, write_comparison
    from .embed import embed_corpus, pooled_embeddings
    from .kfold import KFold, run_kfold
    from .leakage import matched_random_split, run_leakage_study
    from .learning_curve import run_learning_curve
    from .loco import LeaveOneCorpusOut, run_loco
    from .loso import LeaveOneSpeakerOut
    from .protocol import Protocol, run_protocol
    from .sweep import run_sweep
