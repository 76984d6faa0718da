"""Where ser-hf writes its caches by default, ``$HF_DATASETS_CACHE/ser_hf``: decoded waveforms and their clip indices
(:mod:`ser_hf.data.decode`), the file digests (:mod:`ser_hf.data.file_digests`), cached encoder states
(:mod:`ser_hf.inputs`). It lives in the data stage, the lowest that writes there, so that every stage reads one
answer; ``ser-hf cache`` lists and deletes what it holds (:mod:`ser_hf.inputs.cache_folder`)."""

from __future__ import annotations

from pathlib import Path


def ser_hf_cache_dir() -> Path:
    """``$HF_DATASETS_CACHE/ser_hf``, where ser-hf's caches are written by default (read when called, so that a test
    or a user that moves ``datasets``' cache moves ser-hf's with it)."""
    from datasets import config as datasets_config

    return Path(datasets_config.HF_DATASETS_CACHE) / "ser_hf"


__all__ = ["ser_hf_cache_dir"]
