"""A merged corpus's encoder states taken from each corpus's cache (``ser_hf.data.clip_index``), against encoding
the merged corpus anew (the straightforward way, and what ser-hf did before: the cache was keyed by the dataset
alone), on the same encoder and clips, in one run, each arm in an empty cache folder of its own.

    python -m bench.merged_cache --quick     # the shipped sample as two "corpora" (actors 01-04, 05-08): ~1 min
    python -m bench.merged_cache --threads 1 # RAVDESS 01-20, TESS and nEMO merged as leave-one-corpus-out merges them

The full mode loads the three real corpora of ``../shared/data`` alone (as a run on one of them does: every label,
every clip) and merged on the labels they share (as ``ser-hf loco`` and a multi-corpus recipe do: RAVDESS's
calm and disgust and TESS's disgust left out, speakers renamed, another row order), through the FAST recipe of
Whisper tiny.en (``recipes/ravdess_whisper_tiny_en_fast.yaml``, the weights in ``../shared/models``), each clip
through its own length (``trim_window``). Arms:

- "anew": the merged corpus encoded in an empty cache folder;
- "from each corpus's cache": each corpus encoded alone first (the one-off cost a user has paid who trained on each,
  printed apart), then the merged corpus, whose states are taken from those caches (its digests computed, rows
  read where they are since 2026-11-30, copied into a cache file of its own before); no clip is encoded again.

Printed: seconds of each, the ratio, and the largest difference between the two arms' states (0: the same values).
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

from bench.harness import REPO, SAMPLE, SHARED_CORPORA, speed_arguments, speed_parser, write_json
from ser_hf import load_corpus, merge_corpora, prepare_audio
from ser_hf.data.corpora import CORPORA
from ser_hf.experiments.loco import shared_labels
from ser_hf.experiments.results import machine_description
from ser_hf.inputs.encoder_states import ENCODER_STATES_COLUMN, encode_dataset
from ser_hf.recipe import parse_recipe
from ser_hf.training.model_stage import build_model

FULL_RECIPE = REPO / "recipes" / "ravdess_whisper_tiny_en_fast.yaml"
FULL_MODEL = REPO.parent / "shared" / "models" / "whisper-tiny.en-encoder"
FULL_MODEL_CONFIG = "{classifier_proj_size: 64, head_dropout: 0.5, trim_window: true}"
QUICK_RECIPE = REPO / "recipes" / "demo_whisper.yaml"  # the shipped tiny.en encoder, trim_window


def corpora(quick: bool, smoke: bool) -> tuple[dict, object]:
    """``({corpus: decoded clips}, merged and decoded)`` as a run on each corpus and a multi-corpus run load them."""
    if quick:
        sample = load_corpus("ravdess", SAMPLE)
        halves = {
            "actors 01-04": sample.filter(lambda speaker: speaker <= "04", input_columns="speaker_id"),
            "actors 05-08": sample.filter(lambda speaker: speaker > "04", input_columns="speaker_id"),
        }
        if smoke:
            halves = {name: part.select(range(0, len(part), len(part) // 3)) for name, part in halves.items()}
        alone = {name: prepare_audio(part) for name, part in halves.items()}
        # Merged as merge_corpora merges: a label left out, the rows in another order.
        first, second = halves.values()
        keep = first.features["label"].names[1:]
        merged = merge_corpora([second, first], labels=keep)
        return alone, prepare_audio(merged)
    loaded = {name: load_corpus(name, folder) for name, folder in SHARED_CORPORA.items()}
    alone = {name: prepare_audio(corpus) for name, corpus in loaded.items()}
    labels = shared_labels({name: list(CORPORA[name].emotion_codes.values()) for name in loaded}, list(loaded))
    return alone, prepare_audio(merge_corpora(list(loaded.values()), labels=labels))


def main(argv=None) -> None:
    parser = speed_parser(__doc__.split("\n\n")[0], "the shipped sample as two corpora", "3 clips a corpus", False)
    args = speed_arguments(parser, argv)
    args.quick = args.quick or not FULL_MODEL.is_dir()

    recipe = QUICK_RECIPE if args.quick else FULL_RECIPE
    # Each clip through its own length (trim_window, as the top-layers recipes encode), not the 10-s window.
    overrides = [] if args.quick else ["--model_name_or_path", str(FULL_MODEL), "--model_config", FULL_MODEL_CONFIG]
    model_args, data_args, augmentation_args, training_args = parse_recipe([str(recipe), *overrides])
    alone, merged = corpora(args.quick, args.smoke)
    model, feature_extractor = build_model(model_args, augmentation_args, merged.features["label"])

    def encode(dataset, cache_dir: str):
        started = time.perf_counter()
        encoded = encode_dataset(
            model,
            feature_extractor,
            dataset,
            batch_size=training_args.per_device_eval_batch_size,
            cache_dir=cache_dir,
            precision=data_args.cache_precision,
        )
        return encoded, time.perf_counter() - started

    with tempfile.TemporaryDirectory() as anew_dir, tempfile.TemporaryDirectory() as reuse_dir:
        anew, anew_seconds = encode(merged, anew_dir)
        each_seconds = {name: encode(dataset, reuse_dir)[1] for name, dataset in alone.items()}
        reused, reuse_seconds = encode(merged, reuse_dir)
        difference = float(
            np.abs(np.asarray(anew[ENCODER_STATES_COLUMN]) - np.asarray(reused[ENCODER_STATES_COLUMN])).max()
        )

    clips = {name: len(dataset) for name, dataset in alone.items()}
    report = {
        "recipe": str(recipe.relative_to(REPO)),
        "clips": {"merged": len(merged), **clips},
        "seconds": {"anew": anew_seconds, "from each corpus's cache": reuse_seconds},
        "one_off_seconds": each_seconds,
        "ratio": anew_seconds / reuse_seconds,
        "max_abs_difference": difference,
    }
    print(machine_description())
    print(f"{report['recipe']}: {len(merged)} clips merged from " + ", ".join(f"{n} ({c})" for n, c in clips.items()))
    print(
        "  each corpus encoded alone first (one-off): " + ", ".join(f"{n} {s:.1f} s" for n, s in each_seconds.items())
    )
    print(f"  merged, encoded anew:                  {anew_seconds:8.1f} s")
    print(f"  merged, from each corpus's cache:      {reuse_seconds:8.1f} s   ({report['ratio']:.1f}x)")
    print(f"  largest difference between the arms' states: {difference:.2e}")
    write_json(args.json, report)


if __name__ == "__main__":
    main()
