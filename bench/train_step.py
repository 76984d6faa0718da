"""Training throughput of ser-hf's loop against the straightforward `Trainer` recipe, on the same model, clips, batch
size and epochs, in one run.

    python -m bench.train_step --quick                  # shipped RAVDESS sample, reduced SSL geometry: ~1 min
    python -m bench.train_step                          # ../shared/data/ravdess_16k, wav2vec2-base geometry, CRNN
    python -m bench.train_step --device cuda --bf16 --models ssl --ssl-batch-size 32 --ssl-clips 960 \
        --ssl-mode lora --seconds 3 --gpu-utilisation          # on a GPU (BENCHMARKS.md, "GPU")

The straightforward loop is what audio-classification notebooks do: the corpus' `audio` column, decoded by
`datasets` on every access; a `with_transform` that calls the feature extractor on each batch with every clip padded
to the longest clip of the training split (``padding="max_length"``, also when only some of its clips are timed);
`Trainer` with its default collator and random batches. ser-hf's loop is the recipe's input mode's `fold_inputs`
(`ser_hf.inputs`) and `build_trainer`, as `ser-hf train` builds it: clips decoded once into the Arrow cache
(`prepare_audio`, a one-off cost printed apart); for the SSL model, its frozen convolutional feature encoder run once
per clip into a cache (`ser_hf.inputs.feature_encoder_cache`, a one-off cost printed apart and counted in the
whole-run figure; `--no-feature-cache` turns it off); batches of clips of similar length
(`train_sampling_strategy="group_by_length"`, `EpochSeededLengthGroupedSampler`), each padded to its own longest clip
with an attention mask.

Both train the same model from the same initial weights (same seed), whole clips, no augmentation, the same optimizer
(transformers' default, fused AdamW), precision and DataLoader workers. A figure is clips per second over whole
epochs (data loading included), the median over the epochs after the first of ``--repeats`` runs per loop, the loops
alternating (A B A B ...) so that other work on a shared machine weighs on both alike; the ratio is also given as the
median of the runs' own ratios (run k of one loop against run k of the other). "padded" is the share of the
samples fed to the model that are padding. The whole-run figure adds every epoch and the one-off costs. The final
validation metrics (unweighted accuracy, UA) of every run are printed for the baselines; a randomly initialised SSL
encoder trained a few steps on CPU has no meaningful metric, so none is printed. Both loops must end at the same
training loss (the mean of the last epoch, within ``--loss-tolerance``): a faster loop that learns something else is
no win.

On a GPU (``--device cuda``): ``--ssl-mode`` full fine-tuning, LoRA (``use_lora``, adapters on the attention
projections in both loops) or FAST (``cache_encoder_outputs``: ser-hf trains the head on the frozen encoder's cached
outputs; the straightforward loop runs the frozen encoder at every step); ``--seconds 3`` trains on every clip cut or
padded to 3 s (written once as WAV files) instead of the real clips; the peak GPU memory of each run
(``torch.cuda.max_memory_allocated`` in this process, reset before each run); ``--gpu-utilisation`` samples
``nvidia-smi`` every 500 ms beside the runs and reports the steady state (after ``--warmup-steps`` optimizer steps of
each run): the mean utilisation and the share of samples at 85 % or more. ``--feature-cache on|off`` sets
``cache_feature_encoder`` (auto, the default, follows ser-hf's rule for the device: cached on CPU, recomputed on a
GPU).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional
from unittest import mock

import datasets
import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments, Wav2Vec2Config, set_seed

from bench.harness import (
    EpochTimer,
    add_threads_argument,
    data_dir,
    machine_line,
    median,
    ravdess_splits,
    run_fields,
    set_threads,
    subset,
    validation_metrics,
)
from ser_hf.data.decode import WAVEFORM_COLUMN
from ser_hf.inputs.feature_encoder_cache import NUM_SAMPLES_COLUMN
from ser_hf.inputs.modes import input_mode as recipe_input_mode
from ser_hf.models import build_baseline, build_ssl_classifier, build_ssl_feature_extractor, ssl_lora_config
from ser_hf.recipe.augmentation_arguments import AugmentationArguments
from ser_hf.recipe.data_arguments import DataArguments
from ser_hf.recipe.model_arguments import ModelArguments
from ser_hf.recipe.training_arguments import SERTrainingArguments
from ser_hf.training.train_stage import build_trainer

#: wav2vec2-base strides and kernels at a third of its width and a third of its depth: quick mode on 2 CPU cores.
SSL_GEOMETRIES = {
    "base": {},
    "reduced": dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024, conv_dim=(128,) * 7
    ),
    # --smoke only: transformers' test geometry.
    "tiny": dict(
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
    ),
}
#: The baselines' geometries of recipes/ravdess_crnn.yaml and recipes/ravdess_cnn2d.yaml.
BASELINE_CONFIGS = {
    "crnn": dict(conv_channels=[16, 32, 64], lstm_hidden_size=64, lstm_num_layers=2, pooling_mode="attention"),
    "cnn2d": dict(conv_channels=[16, 32, 64, 128], pooling_mode="statistics"),
}
TINY_BASELINE_CONFIGS = {"crnn": dict(conv_channels=[4, 8], lstm_hidden_size=8), "cnn2d": dict(conv_channels=[4, 8])}
#: How the SSL model trains, in both loops: the model's build options and ser-hf's recipe keys (ModelArguments).
SSL_MODES = {
    "full": ({}, {}),
    "lora": ({"lora_config": "default"}, {"use_lora": True}),
    "fast": ({"freeze_base_model": True}, {"freeze_base_model": True, "cache_encoder_outputs": True}),
}
#: nvidia-smi's sampling, beside the runs (--gpu-utilisation).
NVIDIA_SMI = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "500"]
#: Utilisation that counts as a busy GPU (issue 16's target).
BUSY_PERCENT = 85


@dataclass
class ModelSpec:
    """One model under test: how to build it, and the batch size, training clips and epochs of each run."""

    name: str
    build: Callable
    batch_size: int
    clips: Optional[int]
    epochs: int
    learning_rate: float
    has_metrics: bool


def model_specs(args) -> list[ModelSpec]:
    quick = args.quick
    ssl_name = "wav2vec2-base" if args.ssl_geometry == "base" else f"wav2vec2 ({args.ssl_geometry})"
    # layerdrop off: a dropped layer costs no compute, which would make two runs' step times differ by chance.
    ssl_config = Wav2Vec2Config(**SSL_GEOMETRIES[args.ssl_geometry], layerdrop=0.0)

    build_options = dict(SSL_MODES[args.ssl_mode][0])
    if build_options.get("lora_config"):
        build_options["lora_config"] = ssl_lora_config()  # ser-hf's defaults, as use_lora builds it
    if args.ssl_mode != "full":
        ssl_name += f", {'LoRA' if args.ssl_mode == 'lora' else 'FAST'}"

    def build_ssl(labels):
        return build_ssl_classifier(ssl_config, labels, **build_options), build_ssl_feature_extractor(ssl_config)

    def baseline(kind):
        config = TINY_BASELINE_CONFIGS[kind] if args.smoke else BASELINE_CONFIGS[kind]
        return lambda labels: build_baseline(kind, labels, **config)

    specs = {
        "ssl": ModelSpec(
            ssl_name,
            build_ssl,
            args.ssl_batch_size or 4,
            args.ssl_clips or (16 if quick else 24),
            1 if args.smoke else args.ssl_epochs,
            5e-5,
            False,
        ),
        "crnn": ModelSpec(
            "crnn",
            baseline("crnn"),
            args.batch_size or (16 if quick else 32),
            args.clips or (96 if quick else None),
            args.epochs or (2 if quick else 3),
            2e-3,
            True,
        ),
        "cnn2d": ModelSpec(
            "cnn2d",
            baseline("cnn2d"),
            args.batch_size or (16 if quick else 32),
            args.clips or (96 if quick else None),
            args.epochs or (2 if quick else 3),
            1.5e-3,
            True,
        ),
    }
    return [specs[name] for name in args.models]


@dataclass
class PaddingMeter:
    """Samples fed to the model, and how many of them were real audio."""

    real: int = 0
    total: int = 0

    def add(self, lengths, padded_length: int) -> None:
        self.real += int(sum(min(n, padded_length) for n in lengths))
        self.total += len(lengths) * padded_length

    @property
    def padded_fraction(self) -> float:
        return 1.0 - self.real / self.total if self.total else 0.0


@dataclass
class MeasuredCollator:
    """Wraps ser-hf's training collator to count padding (`EpochCallback` keeps setting the wrapped one's epoch)."""

    collator: Callable
    meter: PaddingMeter = field(default_factory=PaddingMeter)

    def __call__(self, rows):
        if NUM_SAMPLES_COLUMN in rows[0] or WAVEFORM_COLUMN in rows[0]:
            lengths = [
                int(row[NUM_SAMPLES_COLUMN]) if NUM_SAMPLES_COLUMN in row else len(row[WAVEFORM_COLUMN])
                for row in rows
            ]
        else:  # FAST mode: one pooled vector per clip, nothing padded
            lengths = [1] * len(rows)
        self.meter.add(lengths, max(lengths))
        return self.collator(rows)


def common_arguments(args, spec: ModelSpec, output_dir: str, seed: int) -> dict:
    """The `TrainingArguments` values both loops share."""
    return dict(
        output_dir=output_dir,
        per_device_train_batch_size=spec.batch_size,
        num_train_epochs=spec.epochs,
        learning_rate=spec.learning_rate,
        seed=seed,
        data_seed=seed,
        report_to="none",
        disable_tqdm=True,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="epoch",
        use_cpu=args.device == "cpu",
        dataloader_num_workers=args.num_workers,
        bf16=args.bf16,
        max_steps=1 if args.smoke else -1,
    )


def straightforward_trainer(
    args, spec: ModelSpec, model, feature_extractor, train_audio, seed: int, output_dir: str, longest_seconds: float
):
    """The notebook recipe: decode on access, features per batch padded to the longest training clip, `Trainer`."""
    max_samples = math.ceil(longest_seconds * feature_extractor.sampling_rate)
    meter = PaddingMeter()

    def transform(batch):
        arrays = [audio["array"] for audio in batch["audio"]]
        meter.add([len(a) for a in arrays], max_samples)
        inputs = feature_extractor(
            arrays,
            sampling_rate=feature_extractor.sampling_rate,
            padding="max_length",
            max_length=max_samples,
            truncation=True,
            return_tensors="np",
        )
        return {**inputs, "labels": batch["label"]}

    training_args = TrainingArguments(remove_unused_columns=False, **common_arguments(args, spec, output_dir, seed))
    trainer = Trainer(model=model, args=training_args, train_dataset=train_audio.with_transform(transform))
    return trainer, meter, 0.0


def ser_hf_trainer(
    args, spec: ModelSpec, model, feature_extractor, train_prepared, seed: int, output_dir: str, longest_seconds: float
):
    """ser-hf's loop, built exactly as `ser-hf train` builds it: the recipe's input mode's `prepare_corpus` and
    `fold_inputs` (which run an SSL model's frozen feature encoder, or in FAST mode its whole encoder, once per clip: a
    one-off cost printed apart), then `build_trainer`."""
    from datasets import DatasetDict

    model_type = "wav2vec2" if spec.name.startswith("wav2vec2") else spec.name
    training_args = SERTrainingArguments(
        precision="bf16" if args.bf16 else "fp32",
        load_best_model_at_end=False,
        **{**common_arguments(args, spec, output_dir, seed), "bf16": False},
    )
    ssl_keys = SSL_MODES[args.ssl_mode][1] if model_type == "wav2vec2" else {}
    cache = {"auto": None, "on": True, "off": False}[args.feature_cache] if model_type == "wav2vec2" else None
    if ssl_keys.get("cache_encoder_outputs"):
        cache = None  # FAST mode caches the whole encoder's outputs
    model_args = ModelArguments(model_type=model_type, cache_feature_encoder=cache, **ssl_keys)
    data_args = DataArguments(corpus=["ravdess"], data_dir=["-"])
    started = time.perf_counter()
    # The cache goes into the run's own temporary folder: every run pays the one-off cost, none reads an earlier one.
    # The recipe's input mode, as `ser-hf train` picks it, building this run's model (same initial weights).
    input_mode = recipe_input_mode(
        model_args,
        data_args,
        AugmentationArguments(),
        build_model=lambda *_: (model, feature_extractor),
        device=torch.device(args.device).type,
    )
    with mock.patch.object(datasets.config, "HF_DATASETS_CACHE", output_dir):
        # As ser_hf.train: what the mode computes once for the corpus (FAST: the encoder's outputs), then the split's.
        corpus = input_mode.prepare_corpus(train_prepared, training_args)
        inputs = input_mode.fold_inputs(model, feature_extractor, DatasetDict({"train": corpus}), training_args)
    one_off = time.perf_counter() - started
    label_names = train_prepared.features["label"].names
    trainer = build_trainer(model, feature_extractor, inputs, input_mode, training_args, label_names)
    trainer.data_collator = MeasuredCollator(trainer.data_collator)
    return trainer, trainer.data_collator.meter, one_off


@dataclass
class ArmResult:
    epoch_seconds: list[float] = field(default_factory=list)
    all_epoch_seconds: list[list[float]] = field(default_factory=list)
    one_off_seconds: list[float] = field(default_factory=list)
    padded: list[float] = field(default_factory=list)
    ua: list[float] = field(default_factory=list)
    wa: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    final_losses: list[float] = field(default_factory=list)
    peak_gpu_mib: list[float] = field(default_factory=list)
    utilisation: list[list[float]] = field(default_factory=list)


ARMS = ("straightforward", "ser-hf")


class StepClock(TrainerCallback):
    """When the run's ``warmup_steps``-th optimizer step ended and when training ended (steady state between)."""

    def __init__(self, warmup_steps: int):
        self.warmup_steps = warmup_steps
        self.steady_from: Optional[float] = None
        self.ended: Optional[float] = None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup_steps:
            self.steady_from = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.ended = time.perf_counter()


class UtilisationSampler:
    """``nvidia-smi`` sampling GPU utilisation every 500 ms in a subprocess beside the runs; each sample is stamped
    with the time it arrived, so that a run's steady state can be cut out of the stream."""

    def __init__(self):
        if shutil.which(NVIDIA_SMI[0]) is None:
            raise SystemExit("--gpu-utilisation needs nvidia-smi on the PATH (it samples the GPU beside the runs).")
        self.samples: list[tuple[float, float]] = []
        self._process = subprocess.Popen(NVIDIA_SMI, stdout=subprocess.PIPE, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._process.stdout:
            try:
                self.samples.append((time.perf_counter(), float(line.split(",")[0])))
            except ValueError:
                continue  # "[N/A]" or a message: not a sample

    def between(self, start: Optional[float], end: Optional[float]) -> list[float]:
        if start is None or end is None:
            return []
        return [value for stamp, value in list(self.samples) if start <= stamp <= end]

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def final_loss(log_history: list[dict]) -> float:
    """The last logged training loss (the last epoch's mean: both loops log once an epoch)."""
    return next((log["loss"] for log in reversed(log_history) if "loss" in log), float("nan"))


def check_device(args) -> None:
    """Stop before any work when the flags ask for what this machine cannot do, saying why."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            f"--device {args.device}: torch sees no CUDA GPU here (torch.cuda.is_available() is false; torch "
            f"{torch.__version__}). Run on a machine with a GPU, or leave --device out to measure on CPU."
        )
    if args.gpu_utilisation and device.type != "cuda":
        raise SystemExit("--gpu-utilisation samples nvidia-smi: it needs --device cuda.")
    if args.bf16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SystemExit(f"--bf16: {torch.cuda.get_device_name()} does not support bf16.")
    if args.ssl_mode != "full" and "ssl" not in args.models:
        raise SystemExit(f"--ssl-mode {args.ssl_mode} applies to the SSL model: add ssl to --models.")


def fixed_length_copy(folder: Path, seconds: float, destination: Path) -> Path:
    """Every RAVDESS clip of ``folder`` cut or zero-padded to ``seconds``, written under its own file name, so that
    both loops read clips of one length the way they read the real ones."""
    import numpy as np
    import soundfile

    destination.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".wav", ".flac")):
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
        samples = round(seconds * rate)
        audio = audio[:samples]
        audio = np.pad(audio, ((0, samples - len(audio)), (0, 0)))
        target = destination / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(target, audio, rate)
    return destination


def run(args, spec: ModelSpec, splits_audio, splits_prepared) -> dict[str, ArmResult]:
    train_audio = subset(splits_audio["train"], spec.clips)
    train_prepared = subset(splits_prepared["train"], spec.clips)
    assert train_audio["path"] == train_prepared["path"]
    # The straightforward loop pads to the longest clip of the whole training split, as it would in a real run, even
    # when only a subset of the split is timed.
    longest_seconds = max(splits_audio["train"]["duration"])
    label_names = train_prepared.features["label"].names
    results = {arm: ArmResult() for arm in ARMS}
    on_gpu = torch.device(args.device).type == "cuda"
    for repeat in range(args.repeats):
        # A B A B: the same order every round, so that each run k of one loop has a run k of the other beside it.
        for arm in ARMS:
            seed = args.seed + repeat
            set_seed(seed)
            model, feature_extractor = spec.build(label_names)
            with tempfile.TemporaryDirectory(prefix="bench_train_step_") as output_dir:
                build = straightforward_trainer if arm == "straightforward" else ser_hf_trainer
                trainer, meter, one_off = build(
                    args,
                    spec,
                    model,
                    feature_extractor,
                    train_audio if arm == "straightforward" else train_prepared,
                    seed,
                    output_dir,
                    longest_seconds,
                )
                timer, clock = EpochTimer(), StepClock(args.warmup_steps)
                trainer.add_callback(timer)
                trainer.add_callback(clock)
                trainer.remove_callback(PrinterCallback)
                if on_gpu:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                trainer.train()
            result = results[arm]
            if on_gpu:
                result.peak_gpu_mib.append(torch.cuda.max_memory_allocated() / 2**20)
            if args.sampler is not None:
                result.utilisation.append(args.sampler.between(clock.steady_from, clock.ended))
            # The first epoch also pays one-off costs (optimizer state, first kernels, DataLoader start): with more
            # than one epoch per run, only the later ones are timed.
            result.epoch_seconds += timer.seconds[1:] if len(timer.seconds) > 1 else timer.seconds
            result.all_epoch_seconds.append(list(timer.seconds))
            result.one_off_seconds.append(one_off)
            result.padded.append(meter.padded_fraction)
            result.losses.append(
                next(
                    (log["train_loss"] for log in reversed(trainer.state.log_history) if "train_loss" in log),
                    float("nan"),
                )
            )
            result.final_losses.append(final_loss(trainer.state.log_history))
            if spec.has_metrics and not args.smoke:
                metrics = validation_metrics(
                    trainer.model, feature_extractor, splits_prepared["validation"], args.device
                )
                result.ua.append(metrics["ua"])
                result.wa.append(metrics["wa"])
            epochs = ", ".join(f"{seconds:.1f}" for seconds in timer.seconds)
            print(
                f"  {spec.name} {arm:<15} run {repeat + 1}: "
                + (f"one-off {one_off:.1f} s, " if one_off >= 0.05 else "")
                + f"epochs {epochs} s, padded {100 * meter.padded_fraction:.0f} %"
                + f", final loss {result.final_losses[-1]:.4f}"
                + (f", peak GPU memory {result.peak_gpu_mib[-1]:.0f} MiB" if result.peak_gpu_mib else "")
                + (f", validation UA {100 * result.ua[-1]:.1f} %" if result.ua else ""),
                flush=True,
            )
            del trainer, model
            gc.collect()
            if on_gpu:
                torch.cuda.empty_cache()
    return results


def utilisation_summary(runs: list[list[float]]) -> dict:
    samples = [value for run in runs for value in run]
    if not samples:
        return {"samples": 0, "mean_percent": float("nan"), "busy_fraction": float("nan")}
    return {
        "samples": len(samples),
        "mean_percent": sum(samples) / len(samples),
        "busy_fraction": sum(value >= BUSY_PERCENT for value in samples) / len(samples),
    }


def report(spec: ModelSpec, clips: int, results: dict[str, ArmResult], loss_tolerance: float = 0.05) -> dict:
    rates = {arm: clips / median(result.epoch_seconds) for arm, result in results.items()}
    print(
        f"\n{spec.name}: {clips} training clips, batch {spec.batch_size}, {spec.epochs} epoch(s) x "
        f"{len(results['ser-hf'].padded)} run(s) per loop"
    )
    print(f"{'loop':<17}{'clips/s':>9}{'x straightforward':>19}{'padded':>8}{'UA % (runs)':>22}")
    summary = {"model": spec.name, "clips": clips, "batch_size": spec.batch_size}
    for arm in ARMS:
        result = results[arm]
        ua = ", ".join(f"{100 * value:.1f}" for value in result.ua) or "n/a"
        print(
            f"{arm:<17}{rates[arm]:>9.2f}{rates[arm] / rates['straightforward']:>18.2f}x"
            f"{100 * median(result.padded):>7.0f}%{ua:>22}"
        )
        summary[arm] = {
            "clips_per_second": rates[arm],
            "padded_fraction": median(result.padded),
            "epoch_seconds": result.epoch_seconds,
            "ua": result.ua,
            "wa": result.wa,
            "train_loss": result.losses,
        }
    summary["speedup"] = rates["ser-hf"] / rates["straightforward"]
    # A B A B: run k of ser-hf against run k of the straightforward loop, each run's rate over its timed epochs.
    run_ratios = [
        sum(straight) / sum(ours)
        for straight, ours in zip(
            (epochs[1:] or epochs for epochs in results["straightforward"].all_epoch_seconds),
            (epochs[1:] or epochs for epochs in results["ser-hf"].all_epoch_seconds),
        )
    ]
    summary["run_speedups"] = run_ratios
    summary["median_run_speedup"] = median(run_ratios)
    print(
        f"ser-hf against straightforward, run by run: {', '.join(f'{r:.2f}x' for r in run_ratios)}; median "
        f"{summary['median_run_speedup']:.2f}x"
    )
    pairs = list(zip(results["straightforward"].final_losses, results["ser-hf"].final_losses))
    differences = [abs(ours - straight) / abs(straight) if straight else float("inf") for straight, ours in pairs]
    summary["final_loss_relative_difference"] = max(differences) if differences else float("nan")
    summary["equal_final_loss"] = bool(differences) and max(differences) <= loss_tolerance
    print(
        "final training loss (last epoch's mean), straightforward / ser-hf: "
        + ", ".join(f"{straight:.4f} / {ours:.4f}" for straight, ours in pairs)
        + f"; largest relative difference {summary['final_loss_relative_difference']:.1%}: "
        + ("equal" if summary["equal_final_loss"] else "NOT equal")
        + f" within {loss_tolerance:.0%}"
    )
    for arm in ARMS:
        result = results[arm]
        summary[arm]["final_loss"] = result.final_losses
        if result.peak_gpu_mib:
            summary[arm]["peak_gpu_mib"] = max(result.peak_gpu_mib)
            print(f"{arm}: peak GPU memory {max(result.peak_gpu_mib):.0f} MiB (torch.cuda.max_memory_allocated)")
        if result.utilisation:
            busy = utilisation_summary(result.utilisation)
            summary[arm]["gpu_utilisation"] = busy
            print(
                f"{arm}: GPU utilisation in steady state {busy['mean_percent']:.0f} % mean, "
                f"{busy['busy_fraction']:.0%} of {busy['samples']} samples at {BUSY_PERCENT} % or more"
            )
    # Whole runs, one-off costs included (the feature-encoder cache of an SSL model): what a run of this many epochs
    # gains, where the figure above is what every further epoch gains.
    whole = {
        arm: median(
            [sum(epochs) + one_off for epochs, one_off in zip(result.all_epoch_seconds, result.one_off_seconds)]
        )
        for arm, result in results.items()
    }
    summary["whole_run_speedup"] = whole["straightforward"] / whole["ser-hf"]
    if median(results["ser-hf"].one_off_seconds) >= 0.05:
        one_off = median(results["ser-hf"].one_off_seconds)
        print(
            f"ser-hf one-off (prepare_corpus + fold_inputs: the encoder caches): {one_off:.1f} s per run; "
            f"whole {spec.epochs}-epoch runs, one-off included: {whole['straightforward']:.1f} s against "
            f"{whole['ser-hf']:.1f} s, {summary['whole_run_speedup']:.2f}x"
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the shipped sample, reduced SSL geometry, ~1 minute")
    parser.add_argument("--smoke", action="store_true", help="one step per loop (tests: keeps the script running)")
    parser.add_argument("--data-dir", type=Path, help="a RAVDESS folder instead of the default")
    parser.add_argument(
        "--models", nargs="+", choices=["ssl", "crnn", "cnn2d"], help="default: ssl crnn (full adds cnn2d)"
    )
    parser.add_argument("--ssl-geometry", choices=list(SSL_GEOMETRIES), help="default: base (full), reduced (quick)")
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda (stops if none)"
    )
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast in both loops")
    parser.add_argument(
        "--ssl-mode",
        choices=list(SSL_MODES),
        default="full",
        help="SSL model: full fine-tuning, LoRA adapters or FAST (ser-hf: head on cached encoder outputs)",
    )
    parser.add_argument(
        "--seconds", type=float, help="every clip cut or padded to this many seconds (e.g. 3) instead of real clips"
    )
    parser.add_argument("--ssl-epochs", type=int, default=2, help="SSL epochs per run (default 2; the first untimed)")
    parser.add_argument(
        "--gpu-utilisation",
        action="store_true",
        help="sample nvidia-smi every 500 ms beside the runs; report the steady state (needs --device cuda)",
    )
    parser.add_argument(
        "--warmup-steps", type=int, default=5, help="optimizer steps of each run before its steady state (default 5)"
    )
    parser.add_argument(
        "--loss-tolerance",
        type=float,
        default=0.05,
        help="largest relative difference of the loops' final losses that counts as equal (default 0.05)",
    )
    parser.add_argument("--batch-size", type=int, help="baselines' batch (default 32; quick 16)")
    parser.add_argument("--ssl-batch-size", type=int, help="SSL batch (default 4; 32 on a GPU is the issue's figure)")
    parser.add_argument("--clips", type=int, help="baselines' training clips (default: all; quick 96)")
    parser.add_argument("--ssl-clips", type=int, help="SSL training clips (default 24; quick 16)")
    parser.add_argument("--epochs", type=int, help="baselines' epochs per run (default 3; quick 2)")
    parser.add_argument("--repeats", type=int, help="runs per loop, alternating (default 3; quick 2)")
    parser.add_argument(
        "--num-workers",
        type=int,
        default=0,
        help="DataLoader workers of both loops (padding is then counted in the workers: not shown)",
    )
    parser.add_argument(
        "--feature-cache",
        choices=["auto", "on", "off"],
        default="auto",
        help="cache_feature_encoder of ser-hf's SSL loop: auto (ser-hf's rule: cached on CPU, recomputed on a GPU), "
        "on (true) or off (false)",
    )
    parser.add_argument(
        "--no-feature-cache",
        dest="feature_cache",
        action="store_const",
        const="off",
        help="same as --feature-cache off",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_threads_argument(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    if args.smoke:
        args.quick, args.ssl_geometry = True, args.ssl_geometry or "tiny"
        args.clips, args.ssl_clips = args.clips or 8, args.ssl_clips or 4
        args.batch_size, args.ssl_batch_size = args.batch_size or 4, args.ssl_batch_size or 2
    args.models = args.models or (["ssl", "crnn"] if args.quick else ["ssl", "crnn", "cnn2d"])
    args.ssl_geometry = args.ssl_geometry or ("reduced" if args.quick else "base")
    args.repeats = args.repeats or (1 if args.smoke else 2 if args.quick else 3)
    check_device(args)
    logging.getLogger("ser_hf").setLevel(logging.ERROR)
    datasets.disable_progress_bars()

    folder = data_dir(args.quick, args.data_dir)
    print(f"# bench/train_step.py on {machine_line(args.device)}")
    scratch = tempfile.TemporaryDirectory(prefix="bench_train_step_clips_")
    if args.seconds:
        folder = fixed_length_copy(folder, args.seconds, Path(scratch.name) / "ravdess")
        print(f"clips cut or padded to {args.seconds:g} s")
    print(
        f"data: {folder}; device {args.device}{', bf16 autocast' if args.bf16 else ''}; "
        f"{args.num_workers} DataLoader worker(s)"
    )
    splits_audio = ravdess_splits(folder, prepared=False)
    started = time.perf_counter()
    splits_prepared = ravdess_splits(folder, prepared=True)
    print(
        f"ser-hf one-off: load_corpus + prepare_audio (decode once or read the cache) "
        f"{time.perf_counter() - started:.1f} s for {sum(len(s) for s in splits_prepared.values())} clips"
    )

    summaries = []
    args.sampler = UtilisationSampler() if args.gpu_utilisation else None
    try:
        for spec in model_specs(args):
            results = run(args, spec, splits_audio, splits_prepared)
            clips = len(subset(splits_prepared["train"], spec.clips))
            if args.smoke:
                clips = min(clips, spec.batch_size)
            summaries.append(report(spec, clips, results, args.loss_tolerance))
    finally:
        if args.sampler is not None:
            args.sampler.close()
        scratch.cleanup()
    args.sampler = None
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    **run_fields(args.device),
                    "args": vars(args) | {"data_dir": str(folder), "json": str(args.json)},
                    "results": summaries,
                },
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
