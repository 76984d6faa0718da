"""Training throughput of ser-hf's loop against the straightforward `Trainer` recipe, on the same model, clips, batch
size and epochs, in one run.

    python -m bench.train_step --quick                  # shipped RAVDESS sample, reduced SSL geometry: ~1 min
    python -m bench.train_step                          # ../shared/data/ravdess_16k, wav2vec2-base geometry
    python -m bench.train_step --device cuda --bf16 --ssl-batch-size 32 --ssl-clips 960 \
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
samples fed to the model that are padding. The whole-run figure adds every epoch and the one-off costs. A
randomly initialised encoder trained a few steps has no meaningful validation metric, so none is printed; instead both
loops must end at the same training loss (the mean of the last epoch, within ``--loss-tolerance``): a faster loop that
learns something else is no win.

On a GPU (``--device cuda``): ``--ssl-mode`` full fine-tuning, LoRA (``use_lora``, adapters on the attention
projections in both loops) or FAST (``cache_encoder_outputs``: ser-hf trains the head on the frozen encoder's cached
outputs; the straightforward loop runs the frozen encoder at every step); ``--seconds 3`` trains on every clip cut or
padded to 3 s (written once as WAV files) instead of the real clips; the peak GPU memory of each run
(``torch.cuda.max_memory_allocated`` in this process, reset before each run); ``--gpu-utilisation`` samples
``nvidia-smi`` every 500 ms beside the runs and reports the steady state (after ``--warmup-steps`` optimizer steps of
each run): the mean utilisation and the share of samples at 85 % or more. ``cache_feature_encoder`` follows ser-hf's
rule for the device (cached on CPU, recomputed on a GPU).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional
from unittest import mock

import datasets
import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments, Wav2Vec2Config, set_seed

from bench.harness import (
    BUSY_PERCENT,
    SSL_GEOMETRIES,
    EpochTimer,
    UtilisationSampler,
    add_threads_argument,
    check_device,
    data_dir,
    fixed_length_copy,
    machine_line,
    median,
    ravdess_splits,
    run_fields,
    set_threads,
    subset,
    utilisation_summary,
)
from ser_hf.data.decode import WAVEFORM_COLUMN
from ser_hf.inputs.feature_encoder_cache import NUM_SAMPLES_COLUMN
from ser_hf.inputs.modes import input_mode as recipe_input_mode
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor, ssl_lora_config
from ser_hf.recipe.augmentation_arguments import AugmentationArguments
from ser_hf.recipe.data_arguments import DataArguments
from ser_hf.recipe.model_arguments import ModelArguments
from ser_hf.recipe.training_arguments import SERTrainingArguments
from ser_hf.training.train_stage import build_trainer

#: How the SSL model trains, in both loops: the model's build options and ser-hf's recipe keys (ModelArguments).
SSL_MODES = {
    "full": ({}, {}),
    "lora": ({"lora_config": "default"}, {"use_lora": True}),
    "fast": ({"freeze_base_model": True}, {"freeze_base_model": True, "cache_encoder_outputs": True}),
}


@dataclass
class ModelSpec:
    """One model under test: how to build it, and the batch size, training clips and epochs of each run."""

    name: str
    build: Callable
    batch_size: int
    clips: Optional[int]
    epochs: int
    learning_rate: float


def ssl_spec(args) -> ModelSpec:
    """The wav2vec2 model under test, built as ``--ssl-geometry`` and ``--ssl-mode`` say."""
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

    return ModelSpec(
        ssl_name,
        build_ssl,
        args.ssl_batch_size or 4,
        args.ssl_clips or (16 if quick else 24),
        1 if args.smoke else args.ssl_epochs,
        5e-5,
    )


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

    training_args = SERTrainingArguments(
        precision="bf16" if args.bf16 else "fp32",
        load_best_model_at_end=False,
        **{**common_arguments(args, spec, output_dir, seed), "bf16": False},
    )
    model_args = ModelArguments(model_type="wav2vec2", **SSL_MODES[args.ssl_mode][1])
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


def final_loss(log_history: list[dict]) -> float:
    """The last logged training loss (the last epoch's mean: both loops log once an epoch)."""
    return next((log["loss"] for log in reversed(log_history) if "loss" in log), float("nan"))


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
            epochs = ", ".join(f"{seconds:.1f}" for seconds in timer.seconds)
            print(
                f"  {spec.name} {arm:<15} run {repeat + 1}: "
                + (f"one-off {one_off:.1f} s, " if one_off >= 0.05 else "")
                + f"epochs {epochs} s, padded {100 * meter.padded_fraction:.0f} %"
                + f", final loss {result.final_losses[-1]:.4f}"
                + (f", peak GPU memory {result.peak_gpu_mib[-1]:.0f} MiB" if result.peak_gpu_mib else ""),
                flush=True,
            )
            del trainer, model
            gc.collect()
            if on_gpu:
                torch.cuda.empty_cache()
    return results


def report(spec: ModelSpec, clips: int, results: dict[str, ArmResult], loss_tolerance: float = 0.05) -> dict:
    rates = {arm: clips / median(result.epoch_seconds) for arm, result in results.items()}
    print(
        f"\n{spec.name}: {clips} training clips, batch {spec.batch_size}, {spec.epochs} epoch(s) x "
        f"{len(results['ser-hf'].padded)} run(s) per loop"
    )
    print(f"{'loop':<17}{'clips/s':>9}{'x straightforward':>19}{'padded':>8}")
    summary = {"model": spec.name, "clips": clips, "batch_size": spec.batch_size}
    for arm in ARMS:
        result = results[arm]
        print(
            f"{arm:<17}{rates[arm]:>9.2f}{rates[arm] / rates['straightforward']:>18.2f}x"
            f"{100 * median(result.padded):>7.0f}%"
        )
        summary[arm] = {
            "clips_per_second": rates[arm],
            "padded_fraction": median(result.padded),
            "epoch_seconds": result.epoch_seconds,
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
    parser.add_argument("--ssl-batch-size", type=int, help="SSL batch (default 4; 32 on a GPU is the issue's figure)")
    parser.add_argument("--ssl-clips", type=int, help="SSL training clips (default 24; quick 16)")
    parser.add_argument("--repeats", type=int, help="runs per loop, alternating (default 3; quick 2)")
    parser.add_argument(
        "--num-workers",
        type=int,
        default=0,
        help="DataLoader workers of both loops (padding is then counted in the workers: not shown)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_threads_argument(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    if args.smoke:
        args.quick, args.ssl_geometry = True, args.ssl_geometry or "tiny"
        args.ssl_clips, args.ssl_batch_size = args.ssl_clips or 4, args.ssl_batch_size or 2
    args.ssl_geometry = args.ssl_geometry or ("reduced" if args.quick else "base")
    args.repeats = args.repeats or (1 if args.smoke else 2 if args.quick else 3)
    check_device(args.device, args.gpu_utilisation, args.bf16)
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
        spec = ssl_spec(args)
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
