"""Encoder states reused clip by clip across datasets (issue 40: the merged corpus's cache built from each corpus's
cache, not encoded again)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
from datasets import Dataset, Features, List, Value, concatenate_datasets

from ser_hf.data.clip_index import INDEX_SUFFIX, clip_digests
from ser_hf.inputs import encoder_states
from ser_hf.inputs.encoder_states import encode_dataset
from tests.conftest_models import LABELS, load_clip, tiny_whisper_fast

FEATURES = Features({"waveform": List(Value("float32")), "label": LABELS, "corpus": Value("string")})


def _corpus(name: str, indices) -> Dataset:
    return Dataset.from_dict(
        {
            "waveform": [load_clip(index, 0.5 + 0.1 * index) for index in indices],
            "label": [index % 3 for index in indices],
            "corpus": [name] * len(indices),
        },
        features=FEATURES,
    )


def _counting_encoder(monkeypatch) -> list[int]:
    """The number of clips each `encode_dataset` batch encodes, as they are encoded."""
    counts: list[int] = []
    encode_batch = encoder_states._encode_batch

    def counting(batch, **kwargs):
        counts.append(len(batch["waveform"]))
        return encode_batch(batch, **kwargs)

    monkeypatch.setattr(encoder_states, "_encode_batch", counting)
    return counts


def test_a_merged_corpus_takes_each_corpus_cached_states_and_encodes_only_new_clips(tmp_path, monkeypatch, caplog):
    model, extractor = tiny_whisper_fast()
    # A corpus may hold the same recording twice (RAVDESS does): its cache is still whole, never taken as damaged.
    first, second = _corpus("a", [0, 1, 2, 3, 3]), _corpus("b", range(4, 8))
    for corpus in (first, second):
        encode_dataset(model, extractor, corpus, cache_dir=tmp_path)
    assert len(list(tmp_path.glob(f"encoder-*{INDEX_SUFFIX}"))) == 2

    # Merged as a multi-corpus run merges: some clips dropped (a label the corpora do not share), relabelled,
    # reordered, and one clip no cache holds: a new fingerprint, so no cache file of its own.
    merged = concatenate_datasets(
        [second.select([3, 1, 0]), first.filter(lambda label: label != 2, input_columns="label"), _corpus("c", [9])]
    ).map(lambda row: {"label": (row["label"] + 1) % 3})
    counts = _counting_encoder(monkeypatch)
    with caplog.at_level(logging.INFO, logger="ser_hf.inputs.encoder_states"):
        reused = encode_dataset(model, extractor, merged, cache_dir=tmp_path)
    assert sum(counts) == 1  # the new clip only
    assert "Reused the encoder states of 7 of 8 clips from 2 cache file(s) of the same encoder; encoded 1." in (
        caplog.text
    )
    assert "damaged" not in caplog.text
    fresh = encode_dataset(model, extractor, merged, cache_dir=tmp_path / "fresh")
    np.testing.assert_allclose(
        np.asarray(reused["encoder_states"]), np.asarray(fresh["encoder_states"]), rtol=1e-5, atol=1e-5
    )
    assert reused["label"] == merged["label"] and reused["corpus"] == ["b"] * 3 + ["a"] * 4 + ["c"]

    # The clip no cache held has a cache file of its own, indexed; the merged set is read from the three files where
    # they are, again without encoding, and no copy of the states is written for it.
    counts.clear()
    again = encode_dataset(model, extractor, merged, cache_dir=tmp_path)
    assert counts == [] and again["encoder_states"] == reused["encoder_states"]
    assert len(list(tmp_path.glob("encoder-*.arrow"))) == len(list(tmp_path.glob(f"encoder-*{INDEX_SUFFIX}"))) == 3


def test_folds_and_pools_of_an_encoded_corpus_add_no_file_to_the_cache(tmp_path, monkeypatch):
    """A learning curve's cells, a k-fold's folds and an adaptation's pools select clips of a corpus already encoded:
    each used to write a copy of its states and of its selected rows (``flatten_indices``); the cache now grows only
    with clips no file holds."""
    model, extractor = tiny_whisper_fast()
    corpus = _corpus("a", range(6)).map(lambda row: row, cache_file_name=str(tmp_path / "corpus.arrow"))
    whole = encode_dataset(model, extractor, corpus, cache_dir=tmp_path)
    files = sorted(path.name for path in tmp_path.iterdir())
    counts = _counting_encoder(monkeypatch)
    for rows in ([4, 1, 2], [0, 5], [3, 2, 1, 0]):
        part = encode_dataset(model, extractor, corpus.select(rows), cache_dir=tmp_path)
        assert part["label"] == [corpus["label"][row] for row in rows]
        np.testing.assert_array_equal(np.asarray(part["encoder_states"]), np.asarray(whole["encoder_states"])[rows])
    assert counts == [] and sorted(path.name for path in tmp_path.iterdir()) == files


def test_another_encoder_or_a_deleted_cache_is_never_reused(tmp_path, monkeypatch):
    model, extractor = tiny_whisper_fast()
    corpus = _corpus("a", range(3))
    encode_dataset(model, extractor, corpus, cache_dir=tmp_path)
    (cache,) = tmp_path.glob("encoder-*.arrow")
    counts = _counting_encoder(monkeypatch)
    other, _ = tiny_whisper_fast(seed=1)  # other weights: other states
    encode_dataset(other, extractor, corpus.select([2, 0]), cache_dir=tmp_path)
    assert sum(counts) == 2
    encode_dataset(model, extractor, corpus, cache_dir=tmp_path, precision="float16")  # stored otherwise
    assert sum(counts) == 5

    counts.clear()
    cache.unlink()  # its index stays behind, naming a file that is gone
    encode_dataset(model, extractor, corpus.select([1, 0]), cache_dir=tmp_path)
    assert sum(counts) == 2


def test_a_clip_digest_depends_on_its_samples_only():
    corpus = _corpus("a", [0, 1])
    moved = Dataset.from_dict(
        {"waveform": corpus["waveform"][::-1]}, features=Features({"waveform": FEATURES["waveform"]})
    )
    assert clip_digests(moved, "waveform") == clip_digests(corpus, "waveform")[::-1]
    assert len(set(clip_digests(corpus, "waveform"))) == 2
    louder = corpus.map(lambda row: {"waveform": np.asarray(row["waveform"], np.float32) * 0.5})
    assert not set(clip_digests(louder, "waveform")) & set(clip_digests(corpus, "waveform"))


def test_an_index_naming_a_file_outside_the_cache_folder_is_never_read_or_deleted(tmp_path):
    """The reuse deletes a damaged cache that an index names: only an encoder cache beside the index, never a path
    an index (edited, or from elsewhere) points to."""
    model, extractor = tiny_whisper_fast()
    corpus = _corpus("a", range(2))
    cache_dir = tmp_path / "cache"
    encode_dataset(model, extractor, corpus, cache_dir=cache_dir)
    (index,) = cache_dir.glob(f"encoder-*{INDEX_SUFFIX}")
    (cache,) = cache_dir.glob("encoder-*.arrow")
    # A file outside the cache folder that reads as a damaged cache (the rows it should have, values not finite).
    victim = tmp_path / "encoder-mine.arrow"
    table = Dataset.from_file(str(cache)).data.table
    poisoned = pa.table(
        {
            name: pa.array(np.full_like(np.asarray(table[name].to_pylist()), np.nan).tolist(), type=table[name].type)
            for name in table.column_names
        }
    )
    with pa.OSFile(str(victim), "wb") as sink, pa.ipc.new_stream(sink, poisoned.schema) as writer:
        writer.write_table(poisoned)
    record = json.loads(index.read_text())
    cache.unlink()
    record["cache_file"] = "../encoder-mine.arrow"
    index.write_text(json.dumps(record))
    states = encode_dataset(model, extractor, corpus.select([1, 0]), cache_dir=cache_dir)
    assert len(states) == 2 and victim.exists()
