"""ser-hf's speed benchmarks: each script does the same work ser-hf's way and the straightforward way (or the peer's)
in one run. Run them from the repository root as modules, ``python -m bench.NAME`` (``--help`` says what each
measures); they share :mod:`bench.harness`. Not part of the wheel: setup.py packages ``ser_hf`` alone."""
