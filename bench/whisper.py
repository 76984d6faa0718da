"""Whisper's frozen encoder in ser-hf against transformers' `WhisperForAudioClassification` run the straightforward
way, on the same real clips in one run.

    python -m bench.whisper --model ../shared/models/whisper-base-encoder                 # speed and window, 96 clips
    python -m bench.whisper --model ../shared/models/whisper-base-encoder --clips 1200    # all of actors 01-20
    python -m bench.whisper --model pretrained/whisper-tiny.en-encoder --device cuda      # on a GPU (both ways there)

Speed (one-off FAST cache): ser-hf encodes each clip once through `encode_dataset` (a `window`-second encoder window,
batches of 8, every layer's mean over the clip's own frames) against transformers' example way: the default
`WhisperFeatureExtractor` (30-s window) and `WhisperForAudioClassification` with `output_hidden_states`, batches of 8.
Printed: clips per second of both, their ratio, and the minutes per 1,000 clips. Window: the cosine between each
clip's mean states (per layer) through the short window and through the 30-s window, the clip's own frames pooled in
both, and what transformers' class pools (the whole window, padding included) against the clip's own frames.

"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from bench.harness import SHARED_RAVDESS, write_json
from ser_hf import load_corpus, prepare_audio
from ser_hf.experiments.results import machine_description
from ser_hf.inputs.encoder_states import encode_dataset
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor

BATCH_SIZE = 8


def corpus(data_dir: Path, clips: int):
    """RAVDESS actors 01-20 at 16 kHz, every `len // clips`-th clip (spread over actors and emotions)."""
    dataset = prepare_audio(load_corpus("ravdess", data_dir, sampling_rate=16000))
    step = max(len(dataset) // clips, 1)
    return dataset.select(range(0, len(dataset), step)[:clips]) if clips < len(dataset) else dataset


def ser_hf_encoder(model_path: str, window: int | None, labels, device: str = "cpu"):
    model = build_ssl_classifier(
        model_path, labels, freeze_base_model=True, use_weighted_layer_sum=True, encoder_window_seconds=window
    )
    return model.eval().to(device), build_ssl_feature_extractor(model_path, encoder_window_seconds=window)


@torch.no_grad()
def transformers_way(model_path: str, waveforms, labels, device: str = "cpu") -> tuple[float, list[np.ndarray]]:
    """transformers' example: its feature extractor (30-s window, no mask) and `WhisperForAudioClassification`,
    every hidden state returned; the seconds and each clip's states as that class pools them (every frame)."""
    from transformers import WhisperFeatureExtractor, WhisperForAudioClassification

    feature_extractor = WhisperFeatureExtractor.from_pretrained(model_path)
    model = WhisperForAudioClassification.from_pretrained(
        model_path, num_labels=len(labels), use_weighted_layer_sum=True
    ).eval()
    model.to(device)
    started = time.perf_counter()
    pooled = []
    for start in range(0, len(waveforms), BATCH_SIZE):
        batch = waveforms[start : start + BATCH_SIZE]
        inputs = feature_extractor(batch, sampling_rate=16000, return_tensors="pt")
        output = model(inputs["input_features"].to(device), output_hidden_states=True)
        pooled.extend(torch.stack(output.hidden_states, dim=1).mean(dim=2).float().cpu().numpy())
    return time.perf_counter() - started, pooled


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-layer cosine of `(clips, layers, hidden)` arrays: `(clips, layers)`."""
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def speed_and_window(args) -> dict:
    dataset = corpus(args.data_dir, args.clips)
    labels = dataset.features["label"].names
    waveforms = [np.asarray(w, np.float32) for w in dataset.with_format("numpy")["waveform"]]
    print(f"{len(waveforms)} clips of RAVDESS actors 01-20, {sum(map(len, waveforms)) / 16000 / len(waveforms):.2f} s")

    results = {"clips": len(waveforms), "model": str(args.model), "window_seconds": args.window}
    states = {}
    for window in (args.window, None):
        model, feature_extractor = ser_hf_encoder(str(args.model), window, labels, args.device)
        if args.device != "cpu":  # the first kernels and library handles, untimed (the other way pays them after)
            encode_dataset(model, feature_extractor, dataset.select(range(BATCH_SIZE)), batch_size=BATCH_SIZE)
        started = time.perf_counter()
        encoded = encode_dataset(model, feature_extractor, dataset, batch_size=BATCH_SIZE, load_from_cache=False)
        seconds = time.perf_counter() - started
        name = f"ser_hf_{window or 30}s"
        results[name] = {"seconds": round(seconds, 1), "clips_per_second": round(len(waveforms) / seconds, 2)}
        states[name] = np.asarray(encoded.with_format("numpy")["encoder_states"], np.float32)
        print(f"ser-hf, {window or 30}-s window: {seconds:.1f} s, {len(waveforms) / seconds:.2f} clips/s")
        if args.skip_30s:
            break

    seconds, pooled = transformers_way(str(args.model), waveforms, labels, args.device)
    results["transformers_30s"] = {
        "seconds": round(seconds, 1),
        "clips_per_second": round(len(waveforms) / seconds, 2),
    }
    short = results[f"ser_hf_{args.window}s"]
    ratio = short["clips_per_second"] / results["transformers_30s"]["clips_per_second"]
    results["ratio"] = round(ratio, 2)
    results["minutes_per_1000_clips"] = round(1000 / short["clips_per_second"] / 60, 1)
    print(
        f"transformers' WhisperForAudioClassification (30-s window): {seconds:.1f} s, "
        f"{len(waveforms) / seconds:.2f} clips/s; ser-hf is {ratio:.2f}x its clips/s "
        f"({results['minutes_per_1000_clips']} min per 1,000 clips)"
    )
    if "ser_hf_30s" in states:
        window_cosine = cosine(states[f"ser_hf_{args.window}s"], states["ser_hf_30s"])
        padding_cosine = cosine(np.stack(pooled), states["ser_hf_30s"])
        results["cosine_short_vs_30s_by_layer"] = [round(float(v), 4) for v in window_cosine.mean(0)]
        results["cosine_whole_window_vs_own_frames_by_layer"] = [round(float(v), 4) for v in padding_cosine.mean(0)]
        print(f"cosine, {args.window}-s vs 30-s window, by layer: {results['cosine_short_vs_30s_by_layer']}")
        print(
            "cosine, transformers' pooling (whole 30-s window) vs the clip's own frames, by layer: "
            f"{results['cosine_whole_window_vs_own_frames_by_layer']}"
        )
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="a Whisper checkpoint folder or Hub id")
    parser.add_argument("--data-dir", type=Path, default=SHARED_RAVDESS)
    parser.add_argument("--clips", type=int, default=96, help="clips for the speed and window measures")
    parser.add_argument("--window", type=int, default=10, help="ser-hf's encoder window in seconds")
    parser.add_argument("--skip-30s", action="store_true", help="do not encode through ser-hf's 30-s window too")
    parser.add_argument("--device", default="cpu", help="where both ways of the speed measure run (cpu or cuda)")
    parser.add_argument("--results", type=Path, help="write the results to this .json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(machine_description(args.device))
    results = speed_and_window(args)
    write_json(args.results, results, args.device)
    return results


if __name__ == "__main__":
    main()
