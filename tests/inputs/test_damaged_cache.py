"""A FAST cache that does not read back whole, or holds values that are not finite, is named, discarded and encoded
again (issue 44, item 6)."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
from datasets import Dataset, Features, List, Value

from ser_hf.inputs.encoder_states import encode_dataset
from tests.conftest_models import LABELS, load_clip, tiny_whisper_fast


def test_a_cut_short_or_non_finite_cache_is_named_and_encoded_again(tmp_path, caplog):
    model, extractor = tiny_whisper_fast()
    clips = Dataset.from_dict(
        {"waveform": [load_clip(index, 0.6 + 0.2 * index) for index in range(4)], "label": [0, 1, 2, 0]},
        features=Features({"waveform": List(Value("float32")), "label": LABELS}),
    )
    expected = np.asarray(encode_dataset(model, extractor, clips, cache_dir=tmp_path)["encoder_states"])
    (cache,) = tmp_path.glob("encoder-*.arrow")

    whole = cache.read_bytes()
    cache.write_bytes(whole[: len(whole) // 2])  # an interrupted write, a full disk
    with caplog.at_level(logging.WARNING):
        again = np.asarray(encode_dataset(model, extractor, clips, cache_dir=tmp_path)["encoder_states"])
    np.testing.assert_allclose(again, expected, atol=1e-6)
    assert f"The encoder cache {cache} is damaged (it does not read back" in caplog.text

    caplog.clear()
    table = Dataset.from_file(str(cache)).data.table
    poisoned = pa.table(
        {"encoder_states": pa.array(np.full_like(expected, np.nan).tolist(), type=table.schema[0].type)}
    )
    with pa.OSFile(str(cache), "wb") as sink, pa.ipc.new_stream(sink, poisoned.schema) as writer:
        writer.write_table(poisoned)
    with caplog.at_level(logging.WARNING):
        again = np.asarray(encode_dataset(model, extractor, clips, cache_dir=tmp_path)["encoder_states"])
    np.testing.assert_allclose(again, expected, atol=1e-6)
    assert "it holds values that are not finite (NaN or infinite)" in caplog.text
