"""Inference throughput: ``ser-hf predict``'s batched `pipeline("audio-classification")` against one pipeline call per
file, in one run.

    python -m bench.inference --quick        # 60 clips of the shipped sample (actors 07-08)
    python -m bench.inference                # 240 clips of ../shared/data/ravdess_16k (actors 17-20)
    python -m bench.inference --device cuda  # on a GPU

The model is the Whisper tiny.en encoder the repository embeds (real weights) under a classifier head, as the demo
recipe builds it, saved with `save_pretrained` and loaded by `pipeline("audio-classification")`, as a trained model
would be. "one call per file" is what notebooks do: ``classifier(path)`` for each file, the pipeline decoding it
through FFmpeg; "one call per decoded clip" leaves the decoding out (ser-hf's decoder, before the calls). "batched" is
what ``ser-hf predict`` runs (``classify_files``): each file decoded once with ser-hf's decoder, a chunk of clips at a
time sorted by length, ``batch_size`` clips a forward pass. They return every label's score; the largest score
difference between batched and one call per file is printed (the model masks padding, so batching changes no score
beyond float rounding)."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from statistics import median

import datasets
from transformers import pipeline, set_seed

from bench.harness import REPO, SAMPLE, SHARED_RAVDESS, alternating, speed_arguments, speed_parser, write_json
from ser_hf.data.decode import decode_waveform
from ser_hf.deploy.classify import classify_files
from ser_hf.emotions import EMOTIONS
from ser_hf.experiments.results import machine_description
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor

#: The Whisper encoder the repository embeds (real weights, so its batching is measured on a real encoder).
EMBEDDED_WHISPER = REPO / "pretrained" / "whisper-tiny.en-encoder"
#: The model's name in the results.
MODEL_NAME = "Whisper tiny.en (10-s window, layer statistics)"


def save_model(folder: str) -> str:
    """The embedded Whisper tiny.en encoder under a classifier head, as the demo recipe builds it (10-s window, layer
    statistics), saved in `folder`."""
    set_seed(0)
    options = dict(use_weighted_layer_sum=True, pooling_mode="layer_statistics", encoder_window_seconds=10)
    model = build_ssl_classifier(str(EMBEDDED_WHISPER), list(EMOTIONS), **options)
    model.save_pretrained(folder)
    build_ssl_feature_extractor(str(EMBEDDED_WHISPER), encoder_window_seconds=10).save_pretrained(folder)
    return folder


def one_call_per_file(classifier, files) -> list:
    """What notebooks do: the pipeline given each file's path (it decodes the file through an FFmpeg process)."""
    return [classifier(str(path), top_k=None) for path in files]


def one_call_per_array(classifier, files) -> list:
    """One call per file on audio decoded beforehand (ser-hf's decoder): the cost of the calls alone."""
    sampling_rate = classifier.feature_extractor.sampling_rate
    return [
        classifier({"raw": decode_waveform(str(path), sampling_rate), "sampling_rate": sampling_rate}, top_k=None)
        for path in files
    ]


def batched(classifier, files, batch_size: int) -> list:
    """What ``ser-hf predict`` runs (:func:`~ser_hf.deploy.classify.classify_files`): the files decoded with ser-hf's
    decoder a chunk at a time, longest first, `batch_size` clips a forward pass; every label's score, highest first."""
    predictions = classify_files(classifier, [str(path) for path in files], batch_size=batch_size, progress=False)
    ranked = (sorted(prediction.scores.items(), key=lambda item: -item[1]) for prediction in predictions)
    return [[{"label": label, "score": score} for label, score in scores] for scores in ranked]


def same_top_label(first: list, second: list) -> int:
    return sum(a[0]["label"] == b[0]["label"] for a, b in zip(first, second))


def largest_difference(first: list, second: list) -> float:
    return max(
        abs(a["score"] - {s["label"]: s["score"] for s in b_scores}[a["label"]])
        for a_scores, b_scores in zip(first, second)
        for a in a_scores
    )


def bench(files, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_inference_") as folder:
        model_folder = save_model(str(Path(folder) / "model"))
        classifier = pipeline("audio-classification", model=model_folder, device=args.device)
        print(f"\n## {MODEL_NAME}: {len(files)} clips, batch {args.batch_size}", flush=True)
        ways = {
            "one call per file": one_call_per_file,
            "one call per decoded clip": one_call_per_array,
            "batched": lambda c, f: batched(c, f, args.batch_size),
        }
        one_call_per_file(classifier, files[:2])  # first-call costs are not part of either figure
        batched(classifier, files[:2], args.batch_size)
        times, results = {way: [] for way in ways}, {}
        for _, way in alternating(args.repeats, list(ways), mirrored=True):
            started = time.perf_counter()
            results[way] = ways[way](classifier, files)
            times[way].append(time.perf_counter() - started)
    rates = {arm: len(files) / median(seconds) for arm, seconds in times.items()}
    for arm, rate in rates.items():
        print(f"{arm:<29}: {rate:8.1f} clips/s   {rate / rates['one call per file']:6.2f}x one call per file")
    difference = largest_difference(results["one call per file"], results["batched"])
    agree = same_top_label(results["one call per file"], results["batched"])
    print(f"batched vs one call per file: largest score difference {difference:.2e}, same top label for {agree}")
    report = {"model": MODEL_NAME, "clips": len(files), "rates": rates, "seconds": times}
    return {**report, "largest_difference": difference, "same_top_label": agree}


def main(argv=None) -> None:
    parser = speed_parser(__doc__, quick="60 clips of the shipped sample", smoke="4 clips, batch 2, one run")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, help="alternating runs of each way (default 3; quick 2)")
    args = speed_arguments(parser, argv, repeats=1, batch_size=2)
    datasets.disable_progress_bars()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    args.repeats = args.repeats or (2 if args.quick else 3)
    if args.quick:
        folders = [SAMPLE / "Actor_07", SAMPLE / "Actor_08"]
    else:
        folders = [SHARED_RAVDESS / f"Actor_{actor}" for actor in range(17, 21)]
    files = sorted(path for folder in folders for path in folder.rglob("*") if path.suffix in (".flac", ".wav"))
    if args.smoke:
        files = files[:4]
    print(f"# bench/inference.py on {machine_description(args.device)}")
    print(f"files: {len(files)} under {', '.join(str(f) for f in folders)}; device {args.device}")
    write_json(args.json, {"results": [bench(files, args)]}, args.device)


if __name__ == "__main__":
    main()
