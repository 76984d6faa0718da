"""The test suite keeps its caches out of the user's home: a module-scoped fixture, which pytest sets up before any
function-scoped one, already sees the session's own ``HF_DATASETS_CACHE`` (when the isolation was function-scoped,
the models such fixtures trained wrote thousands of files into ``~/.cache/huggingface/datasets/ser_hf``)."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def cache_seen_by_a_module_fixture():
    import datasets.config

    from ser_hf.data.cache_dir import ser_hf_cache_dir

    return Path(datasets.config.HF_DATASETS_CACHE), os.environ.get("HF_DATASETS_CACHE"), ser_hf_cache_dir()


def test_a_module_fixture_writes_ser_hfs_caches_under_the_sessions_temporary_folder(
    cache_seen_by_a_module_fixture, tmp_path_factory
):
    config_path, environment, ser_hf_cache = cache_seen_by_a_module_fixture
    session_cache = tmp_path_factory.getbasetemp() / "hf_datasets_cache"
    assert config_path == session_cache
    assert environment == str(session_cache)  # what the commands the tests start inherit
    assert ser_hf_cache == session_cache / "ser_hf"
