"""Experiments as commands whose output is a table and a picture: hyperparameter sweeps, comparisons of finished
runs, the speaker-leakage study, and embedding maps.

    ser-hf sweep RECIPE.yaml --grid KEY=V1,V2 [--grid KEY2=...] [--random N]
    ser-hf compare RUN_DIR [RUN_DIR ...]
    ser-hf leakage-study RECIPE.yaml
    ser-hf embed --model DIR --corpus NAME --data-dir DIR

Each builds on the training stages of :mod:`ser_hf.training.stages` and the entry point :mod:`ser_hf.train`: a sweep
point or a leakage-study run is a normal training run directory, which ``compare`` reads.
"""

from .compare import add_compare_parser, compare_runs, summarize_run, write_comparison
from .embed import add_embed_parser, embed_corpus, pooled_embeddings
from .leakage import add_leakage_study_parser, matched_random_split, run_leakage_study
from .sweep import add_sweep_parser, run_sweep


def register_experiment_commands(commands) -> None:
    """Add ``sweep``, ``compare``, ``leakage-study`` and ``embed`` to the ``ser-hf`` sub-command parsers."""
    add_sweep_parser(commands)
    add_compare_parser(commands)
    add_leakage_study_parser(commands)
    add_embed_parser(commands)


__all__ = [
    "add_compare_parser",
    "add_embed_parser",
    "add_leakage_study_parser",
    "add_sweep_parser",
    "compare_runs",
    "embed_corpus",
    "matched_random_split",
    "pooled_embeddings",
    "register_experiment_commands",
    "run_leakage_study",
    "run_sweep",
    "summarize_run",
    "write_comparison",
]
