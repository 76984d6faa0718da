"""ser-hf's benchmarks: speed comparisons (each script does the same work ser-hf's way and the straightforward way, or
the peer's, in one run) and thin drivers over the protocols of :mod:`ser_hf.experiments` (``accuracy``: ``ser-hf
kfold``; ``robustness``, ``adapt``: ``ser-hf loco``'s models and ``ser-hf learning-curve``) that name the corpora of
``../shared/data``, the seeds and the result files (the headline runs ``ser-hf loco`` itself, as BENCHMARKS.md says).
Run them from the repository root as modules, ``python -m bench.NAME`` (``--help`` says what each does); they share
:mod:`bench.harness`. Not part of the wheel."""
