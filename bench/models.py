"""Training-step throughput and peak memory of every ser-hf model kind, at realistic size, on this machine.

Baselines run at their default configurations; the SSL encoders at their base geometry (wav2vec2-base, hubert-base,
wavlm-base, data2vec-audio-base: 12 layers, 768 wide) with random weights, since nothing is downloaded. For
wav2vec2-base, the trainable-parameter counts and step times of full fine-tuning, FAST (frozen encoder) and LoRA
are compared.

A step is forward + backward + AdamW update on a batch of equal-length clips whose features were computed
beforehand. On CPU each measurement runs in a forked child so that its peak resident memory is its own; on CUDA the
peak is `torch.cuda.max_memory_allocated`.

    python bench/models.py --quick      # 1 s clips, wav2vec2-base only: about a minute on 2 CPU cores
    python bench/models.py              # 3 s clips, every SSL family: ~10 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import time
from dataclasses import dataclass

import numpy as np
import torch
import transformers
from transformers import Data2VecAudioConfig, HubertConfig, Wav2Vec2Config, WavLMConfig

from ser_hf.models import (
    build_baseline,
    build_ssl_classifier,
    build_ssl_feature_extractor,
    count_parameters,
    ssl_lora_config,
)

LABELS = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
SSL_CONFIGS = {
    "wav2vec2-base": Wav2Vec2Config,
    "hubert-base": HubertConfig,
    "wavlm-base": WavLMConfig,
    "data2vec-audio-base": Data2VecAudioConfig,
}
BASELINES = {
    "cnn2d": {},
    "crnn": {},
    "cnn1d": {},
    "mfcc (mlp)": {"head_type": "mlp"},
    "mfcc (cnn)": {"head_type": "cnn"},
}


@dataclass
class Measurement:
    name: str
    trainable: int
    total: int
    step_seconds: float
    clips_per_second: float
    peak_mib: float


def build(name: str, regime: str):
    """The model and feature extractor to measure: a baseline, or an SSL encoder under a training regime."""
    if name in SSL_CONFIGS:
        config = SSL_CONFIGS[name]()
        options = {
            "full": {},  # feature encoder frozen, as usual
            "fast": {"freeze_base_model": True},
            "lora": {"lora_config": ssl_lora_config(r=8)},
        }[regime]
        return build_ssl_classifier(config, LABELS, **options), build_ssl_feature_extractor(config)
    return build_baseline(name.split(" ")[0], LABELS, **BASELINES[name])


def measure(name: str, regime: str, batch_size: int, seconds: float, steps: int, device: str) -> Measurement:
    torch.manual_seed(0)
    rss_before = _current_rss_bytes()
    model, feature_extractor = build(name, regime)
    model.to(device).train()
    clips = list(np.random.default_rng(0).normal(0, 0.1, (batch_size, int(seconds * 16000))).astype(np.float32))
    inputs = feature_extractor(clips, sampling_rate=16000, padding=True, return_tensors="pt").to(device)
    labels = torch.arange(batch_size, device=device) % len(LABELS)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step():
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: allocator, optimizer state, kernels
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    step_seconds = (time.perf_counter() - start) / steps
    counts = count_parameters(model)
    label = name if regime == "full" or name not in SSL_CONFIGS else f"{name} {regime}"
    return Measurement(label, counts.trainable, counts.total, step_seconds, batch_size / step_seconds, peak / 2**20)


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _child(queue, arguments):
    queue.put(measure(*arguments))


def run(arguments: tuple, device: str) -> Measurement:
    """Measure in a forked child on CPU (its own peak memory), in this process on CUDA."""
    if device.startswith("cuda"):
        return measure(*arguments)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, arguments))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Short clips, small batches, one timed step.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, help="Clips per batch (default 8 for baselines, 2 for SSL).")
    parser.add_argument("--seconds", type=float, help="Clip length in seconds (default 3.0; RAVDESS: ~3.7 s).")
    parser.add_argument("--steps", type=int, help="Timed steps after one warm-up step (default 3).")
    args = parser.parse_args()
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    steps = args.steps or (1 if args.quick else 3)
    baseline_batch = args.batch_size or (4 if args.quick else 8)
    ssl_batch = args.batch_size or (1 if args.quick else 2)
    ssl_names = ["wav2vec2-base"] if args.quick else list(SSL_CONFIGS)

    print(
        f"ser-hf model benchmark: device {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"transformers {transformers.__version__}; {seconds:g} s clips, {steps} timed step(s) after 1 warm-up; "
        f"peak memory: {'max allocated' if args.device.startswith('cuda') else 'peak RSS growth of the measurement'}"
    )
    rows = [run((name, "full", baseline_batch, seconds, steps, args.device), args.device) for name in BASELINES]
    ssl_rows = {}
    for name in ssl_names:
        regimes = ("full", "fast", "lora") if name == "wav2vec2-base" else ("full",)
        for regime in regimes:
            ssl_rows[name, regime] = run((name, regime, ssl_batch, seconds, steps, args.device), args.device)
    rows += list(ssl_rows.values())

    print(f"\nTraining step (forward + backward + AdamW), baselines batch {baseline_batch}, SSL batch {ssl_batch}")
    print(f"{'model':<28}{'params':>13}{'trainable':>13}{'step s':>9}{'clips/s':>9}{'peak MiB':>10}")
    for row in rows:
        print(
            f"{row.name:<28}{row.total:>13,}{row.trainable:>13,}{row.step_seconds:>9.3f}"
            f"{row.clips_per_second:>9.1f}{row.peak_mib:>10.0f}"
        )

    full = ssl_rows["wav2vec2-base", "full"]
    print("\nwav2vec2-base regimes (full = everything but the frozen feature encoder trains)")
    print(f"{'regime':<8}{'trainable':>13}{'of total':>13}{'trainable %':>13}{'step s':>9}{'x full':>8}")
    for regime in ("full", "fast", "lora"):
        row = ssl_rows["wav2vec2-base", regime]
        print(
            f"{regime:<8}{row.trainable:>13,}{row.total:>13,}{100 * row.trainable / row.total:>12.3f}%"
            f"{row.step_seconds:>9.3f}{row.step_seconds / full.step_seconds:>8.2f}"
        )


if __name__ == "__main__":
    main()
