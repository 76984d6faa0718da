"""Inference throughput: batched `pipeline("audio-classification")` against one pipeline call per file, the
`ser-hf predict` command on the same folder, and onnxruntime against torch on the same model, in one run.

    python -m bench.inference --quick        # 60 clips of the shipped sample (actors 07-08), CRNN and SSL
    python -m bench.inference                # 240 clips of ../shared/data/ravdess_16k (actors 17-20), CRNN and SSL
    python -m bench.inference --only-onnx    # the onnxruntime and torch arms alone
    python -m bench.inference --device cuda  # on a GPU (no onnxruntime arms: they compare CPU runs)

The models are saved with `save_pretrained` (random weights: throughput does not depend on them) and loaded by
`pipeline("audio-classification")`, as a trained model would be. "one call per file" is what notebooks do:
``classifier(path)`` for each file, the pipeline decoding it through FFmpeg; "one call per decoded clip" leaves the
decoding out (ser-hf's decoder, before the calls). "batched" decodes every file once with ser-hf's decoder, sorts
the clips by length and calls the pipeline once with ``batch_size``. They return every label's score; the largest
score difference between batched and one call per file is printed (the models mask padding, so batching changes no
score beyond float rounding). "ser-hf predict" runs the command line on the folder's files in a subprocess, with the
same ``--batch-size`` (it decodes the files one at a time and batches windows of many files, a chunk of 16 batches
sorted by length at a time), interpreter start and imports included; "once started" takes off the time of the same
command on one file.

onnxruntime against torch (CPU): the model is exported with ``ser_hf.deploy.onnx_export.export_onnx`` (the code of
``ser-hf export``, its parity check on the clips benchmarked) and loaded as ``ser-hf predict`` loads an exported
folder: its saved feature extractor in Python, the graph in an ``onnxruntime.InferenceSession`` behind the same
pipeline, with as many intra-op threads as torch has here. "batched, onnxruntime" is the batched arm on it (same
clips, same order, same ``batch_size``); "forward, torch" and "forward, onnxruntime" run the model alone on the
same padded feature batches, computed beforehand, so that the pipeline's share (decoding, feature extraction,
softmax) and the graph's show apart. Figures are clips per second, the median of ``--repeats`` alternating runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import datasets
import torch
from transformers import Wav2Vec2Config, pipeline, set_seed

from bench.harness import (
    REPO,
    SAMPLE,
    SHARED_RAVDESS,
    add_threads_argument,
    machine_line,
    median,
    run_fields,
    set_threads,
)
from bench.train_step import BASELINE_CONFIGS, SSL_GEOMETRIES
from ser_hf.data.decode import decode_waveform
from ser_hf.emotions import EMOTIONS
from ser_hf.models import build_baseline, build_ssl_classifier, build_ssl_feature_extractor, load_feature_extractor

#: Layer-norm feature encoder (as wav2vec2-large-lv60 and the other "stable layer norm" checkpoints): its extractor
#: returns an attention mask, so padded batches give each clip the scores it gets alone.
#: The Whisper encoder the repository embeds (real weights, so its batching is measured on a real encoder).
EMBEDDED_WHISPER = REPO / "pretrained" / "whisper-tiny.en-encoder"
LAYER_NORM_SSL = dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)


def save_model(kind: str, geometry: str, folder: str) -> str:
    set_seed(0)
    labels = list(EMOTIONS)
    if kind == "crnn":
        model, feature_extractor = build_baseline("crnn", labels, **BASELINE_CONFIGS["crnn"])
    elif kind == "whisper":
        # The embedded Whisper tiny.en encoder, as the demo recipe builds it (10-s window, layer statistics).
        options = dict(use_weighted_layer_sum=True, pooling_mode="layer_statistics", encoder_window_seconds=10)
        model = build_ssl_classifier(str(EMBEDDED_WHISPER), labels, **options)
        feature_extractor = build_ssl_feature_extractor(str(EMBEDDED_WHISPER), encoder_window_seconds=10)
    else:
        config = Wav2Vec2Config(**SSL_GEOMETRIES[geometry], **LAYER_NORM_SSL)
        model, feature_extractor = build_ssl_classifier(config, labels), build_ssl_feature_extractor(config)
    model.save_pretrained(folder)
    feature_extractor.save_pretrained(folder)
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
    """Every file's scores from one pipeline call over all of them: decoded once with ser-hf's decoder (libsndfile +
    soxr, as training reads them), longest first so that each batch holds clips of similar length."""
    sampling_rate = classifier.feature_extractor.sampling_rate
    waveforms = [decode_waveform(str(path), sampling_rate) for path in files]
    order = sorted(range(len(files)), key=lambda index: -len(waveforms[index]))
    inputs = [{"raw": waveforms[index], "sampling_rate": sampling_rate} for index in order]
    results = [None] * len(files)
    for index, scores in zip(order, classifier(inputs, batch_size=batch_size, top_k=None)):
        results[index] = scores
    return results


def predict_command(model: str, files, device: str, batch_size: int) -> float:
    """Seconds of ``ser-hf predict MODEL FILES... --batch-size B`` in a subprocess (start-up and imports included),
    with as many torch threads as this process."""
    command = [
        str(Path(sys.executable).parent / "ser-hf"),
        "predict",
        model,
        *map(str, files),
        "--batch-size",
        str(batch_size),
        "--no-progress",
    ]
    env = {
        **os.environ,
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
        **({"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {}),
    }
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def same_top_label(first: list, second: list) -> int:
    return sum(a[0]["label"] == b[0]["label"] for a, b in zip(first, second))


def largest_difference(first: list, second: list) -> float:
    return max(
        abs(a["score"] - {s["label"]: s["score"] for s in b_scores}[a["label"]])
        for a_scores, b_scores in zip(first, second)
        for a in a_scores
    )


def feature_batches(classifier, files, batch_size: int, input_names) -> list[dict]:
    """The model inputs of ``files`` as the pipeline's feature extractor makes them (decoded with ser-hf's decoder,
    longest first, padded batches of ``batch_size``): what the forward-pass arms run, computed once."""
    extractor = classifier.feature_extractor
    waveforms = sorted((decode_waveform(str(path), extractor.sampling_rate) for path in files), key=lambda w: -len(w))
    batches = []
    for start in range(0, len(waveforms), batch_size):
        features = extractor(
            waveforms[start : start + batch_size],
            sampling_rate=extractor.sampling_rate,
            padding=True,
            return_tensors="pt",
        )
        batches.append(
            {
                name: features[name].long() if name == "attention_mask" else features[name].float()
                for name in input_names
                if name in features
            }
        )
    return batches


def forward_torch(model, batches) -> list:
    with torch.no_grad():
        return [model(**batch).logits for batch in batches]


def forward_onnx(onnx_model, batches) -> list:
    return [onnx_model.logits(**batch) for batch in batches]


def onnx_classifier(folder: str, onnx_folder: str, files, threads: int):
    """The model exported to ``onnx_folder`` (parity checked on ``files``) and loaded as ``ser-hf predict`` loads an
    exported folder, with ``threads`` intra-op threads; and the export's parity report."""
    from ser_hf.deploy.onnx_export import export_onnx
    from ser_hf.deploy.pipelines import onnx_audio_classification_pipeline

    export = export_onnx(folder, onnx_folder, parity_audio=files)
    feature_extractor = load_feature_extractor(onnx_folder)
    return (
        onnx_audio_classification_pipeline(onnx_folder, feature_extractor, intra_op_num_threads=threads),
        export,
    )


def bench(kind: str, files, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_inference_") as folder:
        model_folder = str(Path(folder) / "model")
        save_model(kind, args.ssl_geometry, model_folder)
        classifier = pipeline("audio-classification", model=model_folder, device=args.device)
        name = {"crnn": "crnn", "whisper": "Whisper tiny.en (10-s window, layer statistics)"}.get(
            kind, f"wav2vec2 ({args.ssl_geometry}, layer norm)"
        )
        print(f"\n## {name}: {len(files)} clips, batch {args.batch_size}", flush=True)
        ways = {}
        if not args.only_onnx:
            ways["one call per file"] = one_call_per_file
            ways["one call per decoded clip"] = one_call_per_array
        ways["batched"] = lambda c, f: batched(c, f, args.batch_size)
        onnx = None
        if args.onnx and kind != "whisper":  # Whisper's export is measured by bench/whisper.py
            threads = torch.get_num_threads()
            onnx, export = onnx_classifier(model_folder, str(Path(folder) / "onnx"), files, threads)
            parity = export.parity
            print(
                f"{export.manifest['exporter']}: parity on {parity.clips} of the clips, max |logit difference| "
                f"{parity.max_abs_logit_difference:.2e}, same argmax: {parity.argmax_identical}",
                flush=True,
            )
            batches = feature_batches(classifier, files, args.batch_size, list(onnx.model.inputs))
            ways["batched, onnxruntime"] = lambda c, f: batched(onnx, f, args.batch_size)
            ways["forward, torch"] = lambda c, f: forward_torch(c.model, batches)
            ways["forward, onnxruntime"] = lambda c, f: forward_onnx(onnx.model, batches)
            forward_torch(classifier.model, batches[:1])  # first-call costs are not part of either figure
            forward_onnx(onnx.model, batches[:1])
            batched(onnx, files[:2], args.batch_size)
        if "one call per file" in ways:
            one_call_per_file(classifier, files[:2])  # first-call costs are not part of either figure
        batched(classifier, files[:2], args.batch_size)
        cli = not (args.no_cli or args.only_onnx)
        times = {way: [] for way in [*ways, *(["ser-hf predict"] if cli else [])]}
        startup = []  # ser-hf predict on one file: start-up, imports, model loading
        results = {}
        for repeat in range(args.repeats):
            for way in list(ways) if repeat % 2 == 0 else list(ways)[::-1]:
                started = time.perf_counter()
                results[way] = ways[way](classifier, files)
                times[way].append(time.perf_counter() - started)
            if cli:
                times["ser-hf predict"].append(predict_command(model_folder, files, args.device, args.batch_size))
                startup.append(predict_command(model_folder, files[:1], args.device, args.batch_size))
    rates = {arm: len(files) / median(seconds) for arm, seconds in times.items() if seconds}
    if startup and len(files) > 1 and median(times["ser-hf predict"]) > median(startup):
        # Its rate once started: the files after the first over the time they added.
        rates["ser-hf predict, once started"] = (len(files) - 1) / (median(times["ser-hf predict"]) - median(startup))
    base_arm = "one call per file" if "one call per file" in rates else "batched"
    base = rates[base_arm]
    for arm, rate in rates.items():
        print(f"{arm:<29}: {rate:8.1f} clips/s   {rate / base:6.2f}x {base_arm}")
    report = {"model": name, "clips": len(files), "rates": rates, "seconds": times}
    if "one call per file" in results:
        difference = largest_difference(results["one call per file"], results["batched"])
        agree = same_top_label(results["one call per file"], results["batched"])
        print(
            f"batched vs one call per file: largest score difference {difference:.2e}, same top label for "
            f"{agree}/{len(files)} clips"
        )
        report.update(largest_difference=difference, same_top_label=agree)
    if onnx is not None:
        onnx_report = {
            "exporter": export.manifest["exporter"],
            "parity": export.parity.to_dict(),
            "batched_ratio": rates["batched, onnxruntime"] / rates["batched"],
            "forward_ratio": rates["forward, onnxruntime"] / rates["forward, torch"],
            "largest_difference": largest_difference(results["batched"], results["batched, onnxruntime"]),
            "same_top_label": same_top_label(results["batched"], results["batched, onnxruntime"]),
        }
        print(
            f"onnxruntime / torch: {onnx_report['batched_ratio']:.2f}x batched pipeline, "
            f"{onnx_report['forward_ratio']:.2f}x forward pass alone; largest score difference "
            f"{onnx_report['largest_difference']:.2e}, same top label for {onnx_report['same_top_label']}/"
            f"{len(files)} clips"
        )
        report["onnx"] = onnx_report
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="60 clips of the shipped sample")
    parser.add_argument("--smoke", action="store_true", help="4 clips, one run, tiny models (tests)")
    parser.add_argument("--data-dir", type=Path, help="a folder of audio files instead of the default")
    parser.add_argument(
        "--models", nargs="+", choices=["crnn", "ssl", "whisper"], help="default: crnn ssl (smoke: crnn)"
    )
    parser.add_argument("--ssl-geometry", choices=list(SSL_GEOMETRIES), default="reduced")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, help="alternating runs of each way (default 3; quick 2)")
    parser.add_argument("--no-cli", action="store_true", help="leave out the ser-hf predict subprocess")
    parser.add_argument("--no-onnx", action="store_true", help="leave out the onnxruntime arms")
    parser.add_argument(
        "--only-onnx", action="store_true", help="only the arms of onnxruntime against torch (batched, forward)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_threads_argument(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    if args.smoke:
        args.quick, args.ssl_geometry, args.repeats, args.batch_size = True, "tiny", 1, 2
    args.models = args.models or (["crnn"] if args.smoke else ["crnn", "ssl"])
    args.onnx = not args.no_onnx and args.device == "cpu"
    if args.only_onnx and not args.onnx:
        parser.error("--only-onnx needs the onnxruntime arms: --device cpu, without --no-onnx")
    datasets.disable_progress_bars()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    args.repeats = args.repeats or (2 if args.quick else 3)
    if args.data_dir is not None:
        folders = [args.data_dir]
    elif args.quick:
        folders = [SAMPLE / "Actor_07", SAMPLE / "Actor_08"]
    else:
        folders = [SHARED_RAVDESS / f"Actor_{actor}" for actor in range(17, 21)]
    files = sorted(path for folder in folders for path in folder.rglob("*") if path.suffix in (".flac", ".wav"))
    if args.smoke:
        files = files[:4]
    print(f"# bench/inference.py on {machine_line(args.device)}")
    print(f"files: {len(files)} under {', '.join(str(f) for f in folders)}; device {args.device}")
    results = [bench(kind, files, args) for kind in args.models]
    if args.json:
        args.json.write_text(json.dumps({**run_fields(args.device), "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
