"""Training-step throughput and peak memory of every ser-hf model kind, at realistic size, on this machine.

Baselines run at their default configurations; the SSL encoders at their base geometry (wav2vec2-base, hubert-base,
wavlm-base, data2vec-audio-base: 12 layers, 768 wide) with random weights, since nothing is downloaded. For
wav2vec2-base, the trainable-parameter counts and step times of full fine-tuning, FAST (frozen encoder) and LoRA
are compared.

A step is forward + backward + AdamW update on a batch of equal-length clips whose features were computed
beforehand. On CPU each measurement runs in a forked child so that its peak resident memory is its own; on CUDA the
peak is `torch.cuda.max_memory_allocated`. "fast (cached)" is the step FAST mode trains with: the head alone on cached
encoder states (`ser_hf.inputs.fast_mode.CachedEncoderHead`); "fast" runs the frozen encoder too.

Peak memory of LoRA against full fine-tuning is also accounted for, device-independently: the bytes of the tensors
autograd saves for the backward pass (counted through `torch.autograd.graph.saved_tensors_hooks`, each storage once,
parameters left out), plus parameters, gradients and AdamW's state. Saved activations grow linearly with the batch, so
the accounting at the measured batch is also scaled to ``--account-batch`` clips (32 by default, the issue's figure).

    python -m bench.models --quick      # 1 s clips, wav2vec2-base only: about a minute on 2 CPU cores
    python -m bench.models              # 3 s clips, every SSL family: ~10 minutes on 2 CPU cores
    python -m bench.models --ssl-only --device cuda --bf16 --batch-size 32 --seconds 3   # the GPU figures
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import resource
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import transformers
from transformers import Data2VecAudioConfig, HubertConfig, Wav2Vec2Config, WavLMConfig

from bench.harness import run_fields
from ser_hf.inputs.fast_mode import CachedEncoderHead
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


#: transformers' test geometry, for --smoke.
TINY_SSL = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    conv_dim=(32, 32, 32),
    conv_stride=(4, 4, 4),
    conv_kernel=(8, 8, 8),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    classifier_proj_size=8,
)


@dataclass
class Measurement:
    name: str
    trainable: int
    total: int
    step_seconds: float
    clips_per_second: float
    peak_mib: float
    accounted: Optional[dict] = None


def build(name: str, regime: str, smoke: bool = False):
    """The model and feature extractor to measure: a baseline, or an SSL encoder under a training regime."""
    if name in SSL_CONFIGS:
        # No layer drop: a dropped layer computes, saves and updates nothing, which would make two measurements of
        # the same regime differ by chance (and undercount the peak, reached when every layer runs).
        config = SSL_CONFIGS[name](**(TINY_SSL if smoke else {}), layerdrop=0.0)
        options = {
            "full": {},  # feature encoder frozen, as usual
            "fast": {"freeze_base_model": True},
            "fast (cached)": {"freeze_base_model": True},
            "lora": {"lora_config": ssl_lora_config(r=8)},
            "lora + checkpointing": {"lora_config": ssl_lora_config(r=8)},
        }[regime]
        model = build_ssl_classifier(config, LABELS, **options)
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        if regime.endswith("checkpointing"):
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return model, build_ssl_feature_extractor(config)
    return build_baseline(name.split(" ")[0], LABELS, **BASELINES[name])


def saved_activation_bytes(parameters: set[int]):
    """A context manager counting the bytes of the tensors autograd saves for backward (each storage once, parameters
    left out), and the dict it fills in."""
    saved: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    return torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), saved


def measure(
    name: str,
    regime: str,
    batch_size: int,
    seconds: float,
    steps: int,
    device: str,
    bf16: bool = False,
    smoke: bool = False,
) -> Measurement:
    torch.manual_seed(0)
    rss_before = _current_rss_bytes()
    model, feature_extractor = build(name, regime, smoke)
    model.to(device).train()
    labels = torch.arange(batch_size, device=device) % len(LABELS)
    if regime == "fast (cached)":
        trained = CachedEncoderHead(model)
        inputs = {"encoder_states": torch.randn(batch_size, model.config.hidden_size, device=device)}
    else:
        trained = model
        clips = list(np.random.default_rng(0).normal(0, 0.1, (batch_size, int(seconds * 16000))).astype(np.float32))
        inputs = feature_extractor(clips, sampling_rate=16000, padding=True, return_tensors="pt").to(device)
    optimizer = torch.optim.AdamW([p for p in trained.parameters() if p.requires_grad], lr=1e-5)
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if bf16 else nullcontext()

    def step(hooks=nullcontext()):
        with hooks, autocast:
            loss = trained(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    # Warm-up (allocator, optimizer state, kernels), with the tensors saved for backward counted.
    hooks, saved = saved_activation_bytes({p.untyped_storage().data_ptr() for p in trained.parameters()})
    step(hooks)
    accounted = {
        "activations": sum(saved.values()),
        "parameters": sum(p.numel() * p.element_size() for p in trained.parameters()),
        "gradients": sum(p.numel() * p.element_size() for p in trained.parameters() if p.requires_grad),
        "optimizer": sum(
            t.numel() * t.element_size()
            for state in optimizer.state.values()
            for t in state.values()
            if torch.is_tensor(t)
        ),
    }
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
    return Measurement(
        label, counts.trainable, counts.total, step_seconds, batch_size / step_seconds, peak / 2**20, accounted
    )


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _child(queue, arguments):
    queue.put(measure(*arguments))


def run(arguments: tuple, device: str, fork: bool = True) -> Measurement:
    """Measure in a forked child on CPU (its own peak memory), in this process on CUDA or without ``fork`` (a process
    whose OpenMP threads already ran, such as a test session, can hang in a forked child)."""
    if device.startswith("cuda") or not fork:
        return measure(*arguments)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, arguments))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Short clips, small batches, one timed step.")
    parser.add_argument(
        "--smoke", action="store_true", help="wav2vec2 regimes at transformers' test size, in this process (tests)."
    )
    parser.add_argument("--ssl-only", action="store_true", help="Only the wav2vec2-base regimes (and SSL families).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (on a GPU, or a CPU with AMX).")
    parser.add_argument("--batch-size", type=int, help="Clips per batch (default 8 for baselines, 2 for SSL).")
    parser.add_argument("--seconds", type=float, help="Clip length in seconds (default 3.0; RAVDESS: ~3.7 s).")
    parser.add_argument("--steps", type=int, help="Timed steps after one warm-up step (default 3).")
    parser.add_argument("--account-batch", type=int, default=32, help="Batch the memory accounting is scaled to.")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's); 1 on a busy machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        args.quick, args.ssl_only = True, True
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    steps = args.steps or (1 if args.quick else 3)
    baseline_batch = args.batch_size or (4 if args.quick else 8)
    ssl_batch = args.batch_size or (1 if args.quick else 2)
    ssl_names = ["wav2vec2-base"] if args.quick else list(SSL_CONFIGS)
    options = (args.device, args.bf16, args.smoke)

    print(
        f"ser-hf model benchmark: device {args.device}{', bf16 autocast' if args.bf16 else ''}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f}; {seconds:g} s clips, {steps} timed "
        f"step(s) after 1 warm-up; peak memory: "
        f"{'max allocated' if args.device.startswith('cuda') else 'peak RSS growth of the measurement'}"
    )
    fork = not args.smoke
    rows = (
        []
        if args.ssl_only
        else [run((name, "full", baseline_batch, seconds, steps, *options), args.device, fork) for name in BASELINES]
    )
    ssl_rows = {}
    regimes = ("full", "fast", "fast (cached)", "lora", "lora + checkpointing")
    for name in ssl_names:
        for regime in regimes if name == "wav2vec2-base" else ("full",):
            ssl_rows[name, regime] = run((name, regime, ssl_batch, seconds, steps, *options), args.device, fork)
    rows += list(ssl_rows.values())

    print(f"\nTraining step (forward + backward + AdamW), baselines batch {baseline_batch}, SSL batch {ssl_batch}")
    print(f"{'model':<34}{'params':>13}{'trainable':>13}{'step s':>9}{'clips/s':>9}{'peak MiB':>10}")
    for row in rows:
        print(
            f"{row.name:<34}{row.total:>13,}{row.trainable:>13,}{row.step_seconds:>9.3f}"
            f"{row.clips_per_second:>9.1f}{row.peak_mib:>10.0f}"
        )

    geometry = "wav2vec2 (test size)" if args.smoke else "wav2vec2-base"
    full = ssl_rows["wav2vec2-base", "full"]
    print(f"\n{geometry} regimes (full = everything but the frozen feature encoder trains)")
    print(
        f"{'regime':<21}{'trainable':>13}{'of total':>13}{'trainable %':>13}{'step s':>9}{'x full':>8}"
        f"{'peak MiB':>10}{'x full':>8}"
    )
    for regime in regimes:
        row = ssl_rows["wav2vec2-base", regime]
        print(
            f"{regime:<21}{row.trainable:>13,}{row.total:>13,}{100 * row.trainable / row.total:>12.3f}%"
            f"{row.step_seconds:>9.3f}{row.step_seconds / full.step_seconds:>8.2f}{row.peak_mib:>10.0f}"
            f"{row.peak_mib / full.peak_mib:>8.2f}"
        )

    scale = args.account_batch / ssl_batch
    print(
        f"\nMemory accounting of {geometry} (MiB): tensors saved for backward at batch {ssl_batch}, and scaled to "
        f"batch {args.account_batch} ({seconds:g} s clips); parameters, gradients, AdamW state"
    )
    print(
        f"{'regime':<21}{'saved':>9}{'params':>9}{'grads':>9}{'AdamW':>9}{f'total b{ssl_batch}':>11}"
        f"{f'total b{args.account_batch}':>11}{'x full':>8}"
    )
    totals = {}
    for regime in ("full", "lora", "lora + checkpointing", "fast (cached)"):
        parts = {key: value / 2**20 for key, value in ssl_rows["wav2vec2-base", regime].accounted.items()}
        fixed = parts["parameters"] + parts["gradients"] + parts["optimizer"]
        totals[regime] = (fixed + parts["activations"], fixed + parts["activations"] * scale)
        print(
            f"{regime:<21}{parts['activations']:>9.0f}{parts['parameters']:>9.0f}{parts['gradients']:>9.0f}"
            f"{parts['optimizer']:>9.0f}{totals[regime][0]:>11.0f}{totals[regime][1]:>11.0f}"
            f"{totals[regime][1] / totals['full'][1]:>8.2f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    **run_fields(args.device),
                    "args": vars(args),
                    "rows": [dataclasses.asdict(row) for row in rows],
                    "accounted_totals_mib": totals,
                },
                indent=2,
                default=str,
            )
        )
    for regime in ("lora", "lora + checkpointing"):
        row = ssl_rows["wav2vec2-base", regime]
        print(
            f"{regime} peak memory: {100 * row.peak_mib / full.peak_mib:.0f} % of full fine-tuning measured at "
            f"batch {ssl_batch}; {100 * totals[regime][0] / totals['full'][0]:.0f} % accounted at batch "
            f"{ssl_batch}, {100 * totals[regime][1] / totals['full'][1]:.0f} % at batch {args.account_batch}."
        )


if __name__ == "__main__":
    main()
