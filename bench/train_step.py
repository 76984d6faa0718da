"""Training throughput of ser-hf's loop against the straightforward `Trainer` recipe, on the same wav2vec2 model,
clips, batch size and epochs, in one run.

    python -m bench.train_step --quick                  # shipped RAVDESS sample, reduced SSL geometry: ~1 min
    python -m bench.train_step                          # ../shared/data/ravdess_16k, wav2vec2-base geometry
    python -m bench.train_step --device cuda --bf16 --ssl-batch-size 32 --ssl-clips 960 \
        --ssl-mode lora --seconds 3 --gpu-utilisation          # on a GPU (BENCHMARKS.md, "GPU")

The straightforward loop is what audio-classification notebooks do: the corpus' `audio` column, decoded by
`datasets` on every access; a `with_transform` that calls the feature extractor on each batch with every clip padded
to the longest clip of the training split (``padding="max_length"``, also when only some of its clips are timed);
`Trainer` with its default collator and random batches. ser-hf's loop is what `ser-hf train` builds: the recipe's
input mode (`ser_hf.inputs`: clips decoded once into the Arrow cache, the frozen feature encoder, or in FAST mode the
whole encoder, run once per clip into a cache: one-off costs printed apart and counted in the whole-run figure),
`build_trainer`, batches of clips of similar length padded to their own longest clip with an attention mask.

Both train the same model from the same initial weights (same seed), whole clips, no augmentation, the same optimizer
(transformers' default), precision and DataLoader workers. A figure is clips per second over whole epochs (data
loading included), the median over the epochs after the first of ``--repeats`` runs per loop, the loops alternating
(A B A B); the ratio is also the median of the runs' own ratios (run k of one loop against run k of the other).
"padded" is the share of the samples fed to the model that are padding. A randomly initialised encoder has no
meaningful validation metric: instead both loops must end at the same training loss (the last epoch's mean, within
5 %): a faster loop that learns something else is no win.

``--ssl-mode``: full fine-tuning, LoRA (adapters on the attention projections in both loops) or FAST (ser-hf trains
the head on the frozen encoder's cached outputs; the straightforward loop runs the frozen encoder at every step).
``--seconds 3`` trains on every clip cut or padded to 3 s. On a GPU: each run's peak memory
(``torch.cuda.max_memory_allocated``) and, with ``--gpu-utilisation``, ``nvidia-smi`` every 500 ms over each run's
steady state (after ``--warmup-steps`` optimizer steps): the mean utilisation and the share of samples at 85 % or more.
"""

from __future__ import annotations

import gc
import logging
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Callable, Optional
from unittest import mock

import datasets
import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments, Wav2Vec2Config, set_seed

from bench.harness import (
    LOSS_TOLERANCE,
    SSL_GEOMETRIES,
    EpochTimer,
    UtilisationSampler,
    alternating,
    check_device,
    data_dir,
    fixed_length_copy,
    gpu_figures,
    ravdess_splits,
    speed_arguments,
    speed_parser,
    subset,
    utilisation_summary,
    write_json,
)
from ser_hf.data.decode import WAVEFORM_COLUMN
from ser_hf.experiments.results import machine_description
from ser_hf.inputs.feature_encoder_cache import NUM_SAMPLES_COLUMN
from ser_hf.inputs.modes import input_mode as recipe_input_mode
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor, ssl_lora_config
from ser_hf.recipe.augmentation_arguments import AugmentationArguments
from ser_hf.recipe.data_arguments import DataArguments
from ser_hf.recipe.model_arguments import ModelArguments
from ser_hf.recipe.training_arguments import SERTrainingArguments
from ser_hf.training.train_stage import build_trainer

#: ser-hf's recipe keys (ModelArguments) of each ``--ssl-mode``; the straightforward loop's model is built alike.
SSL_MODES = {
    "full": {},
    "lora": {"use_lora": True},
    "fast": {"freeze_base_model": True, "cache_encoder_outputs": True},
}
ARMS = ("straightforward", "ser-hf")


def build_model(args, labels):
    """The wav2vec2 model under test, as ``--ssl-geometry`` and ``--ssl-mode`` say (LoRA: ser-hf's defaults)."""
    # layerdrop off: a dropped layer costs no compute, which would make two runs' step times differ by chance.
    config = Wav2Vec2Config(**SSL_GEOMETRIES[args.ssl_geometry], layerdrop=0.0)
    lora = ssl_lora_config() if args.ssl_mode == "lora" else None
    model = build_ssl_classifier(config, labels, lora_config=lora, freeze_base_model=args.ssl_mode == "fast")
    return model, build_ssl_feature_extractor(config)


def model_name(args) -> str:
    name = "wav2vec2-base" if args.ssl_geometry == "base" else f"wav2vec2 ({args.ssl_geometry})"
    return name + {"full": "", "lora": ", LoRA", "fast": ", FAST"}[args.ssl_mode]


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


def common_arguments(args, output_dir: str, seed: int) -> dict:
    """The `TrainingArguments` values both loops share."""
    return dict(
        output_dir=output_dir,
        per_device_train_batch_size=args.ssl_batch_size,
        num_train_epochs=args.ssl_epochs,
        learning_rate=5e-5,
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


def straightforward_trainer(args, model, feature_extractor, train_audio, seed, output_dir, longest_seconds):
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

    training_args = TrainingArguments(remove_unused_columns=False, **common_arguments(args, output_dir, seed))
    trainer = Trainer(model=model, args=training_args, train_dataset=train_audio.with_transform(transform))
    return trainer, meter, 0.0


def ser_hf_trainer(args, model, feature_extractor, train_prepared, seed, output_dir, longest_seconds):
    """ser-hf's loop as `ser-hf train` builds it: the recipe's input mode's `prepare_corpus` and `fold_inputs` (a
    one-off cost, in the run's own empty cache folder), then `build_trainer`."""
    training_args = SERTrainingArguments(
        precision="bf16" if args.bf16 else "fp32",
        load_best_model_at_end=False,
        **{**common_arguments(args, output_dir, seed), "bf16": False},
    )
    model_args = ModelArguments(model_type="wav2vec2", **SSL_MODES[args.ssl_mode])
    data_args = DataArguments(corpus=["ravdess"], data_dir=["-"])
    started = time.perf_counter()
    device = torch.device(args.device).type
    mode = recipe_input_mode(
        model_args, data_args, AugmentationArguments(), lambda *_: (model, feature_extractor), device=device
    )
    with mock.patch.object(datasets.config, "HF_DATASETS_CACHE", output_dir):
        corpus = mode.prepare_corpus(train_prepared, training_args)
        inputs = mode.fold_inputs(model, feature_extractor, datasets.DatasetDict({"train": corpus}), training_args)
    one_off = time.perf_counter() - started
    label_names = train_prepared.features["label"].names
    trainer = build_trainer(model, feature_extractor, inputs, mode, training_args, label_names)
    trainer.data_collator = MeasuredCollator(trainer.data_collator)
    return trainer, trainer.data_collator.meter, one_off


class StepClock(TrainerCallback):
    """When the run's ``warmup_steps``-th optimizer step ended and when training ended (steady state between)."""

    def __init__(self, warmup_steps: int):
        self.warmup_steps, self.steady_from, self.ended = warmup_steps, None, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup_steps:
            self.steady_from = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.ended = time.perf_counter()


def run(args, splits_audio, splits_prepared, sampler: Optional[UtilisationSampler]) -> dict[str, dict]:
    """Every run of both loops, alternating: per loop, each run's epoch seconds, one-off seconds, padded share,
    final loss (the last epoch's mean: both loops log once an epoch), peak GPU MiB and utilisation samples."""
    train = {"straightforward": subset(splits_audio["train"], args.ssl_clips)}
    train["ser-hf"] = subset(splits_prepared["train"], args.ssl_clips)
    assert train["straightforward"]["path"] == train["ser-hf"]["path"]
    # The straightforward loop pads to the longest clip of the whole training split, as in a real run.
    longest_seconds = max(splits_audio["train"]["duration"])
    labels = train["ser-hf"].features["label"].names
    keys = ("epoch_seconds", "one_off_seconds", "padded", "final_loss", "peak_gpu_mib", "utilisation")
    results = {arm: {key: [] for key in keys} for arm in ARMS}
    on_gpu = torch.device(args.device).type == "cuda"
    for repeat, arm in alternating(args.repeats, ARMS):
        set_seed(args.seed + repeat)
        model, feature_extractor = build_model(args, labels)
        build = straightforward_trainer if arm == "straightforward" else ser_hf_trainer
        with tempfile.TemporaryDirectory(prefix="bench_train_step_") as output_dir:
            trainer, meter, one_off = build(
                args, model, feature_extractor, train[arm], args.seed + repeat, output_dir, longest_seconds
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
            result["peak_gpu_mib"].append(torch.cuda.max_memory_allocated() / 2**20)
        if sampler is not None:
            result["utilisation"].append(sampler.between(clock.steady_from, clock.ended))
        result["epoch_seconds"].append(list(timer.seconds))
        result["one_off_seconds"].append(one_off)
        result["padded"].append(meter.padded_fraction)
        losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
        result["final_loss"].append(losses[-1] if losses else float("nan"))
        print(
            f"  {arm:<15} run {repeat + 1}: one-off {one_off:.1f} s, epochs "
            + ", ".join(f"{seconds:.1f}" for seconds in timer.seconds)
            + f" s, padded {100 * meter.padded_fraction:.0f} %, final loss {result['final_loss'][-1]:.4f}"
            + gpu_figures(result["peak_gpu_mib"][-1] * 2**20 if on_gpu else None, None),
            flush=True,
        )
        del trainer, model
        gc.collect()
        if on_gpu:
            torch.cuda.empty_cache()
    return results


def timed(epochs: list[float]) -> list[float]:
    """The epochs a run's figure counts: the first also pays one-off costs (optimizer state, first kernels, DataLoader
    start), so with more than one epoch per run only the later ones."""
    return epochs[1:] or epochs


def report(args, clips: int, results: dict[str, dict]) -> dict:
    """The figures of both loops, printed and returned (the result file's ``results[0]``)."""
    straight, ours = results["straightforward"], results["ser-hf"]
    rates = {
        arm: clips / median([s for epochs in r["epoch_seconds"] for s in timed(epochs)]) for arm, r in results.items()
    }
    summary = {"model": model_name(args), "clips": clips, "batch_size": args.ssl_batch_size}
    print(
        f"\n{summary['model']}: {clips} training clips, batch {args.ssl_batch_size}, {args.ssl_epochs} epoch(s) x "
        f"{args.repeats} run(s) per loop"
    )
    for arm, result in results.items():
        summary[arm] = {
            "clips_per_second": rates[arm],
            "padded_fraction": median(result["padded"]),
            "epoch_seconds": result["epoch_seconds"],
            "final_loss": result["final_loss"],
        }
        if result["peak_gpu_mib"]:
            summary[arm]["peak_gpu_mib"] = max(result["peak_gpu_mib"])
        if result["utilisation"]:
            summary[arm]["gpu_utilisation"] = utilisation_summary(result["utilisation"])
        line = f"  {arm:<15} {rates[arm]:8.2f} clips/s, padded {100 * median(result['padded']):.0f} %"
        peak = summary[arm].get("peak_gpu_mib")
        print(line + gpu_figures(peak * 2**20 if peak else None, summary[arm].get("gpu_utilisation")))
    summary["speedup"] = rates["ser-hf"] / rates["straightforward"]
    summary["run_speedups"] = [
        sum(timed(a)) / sum(timed(b)) for a, b in zip(straight["epoch_seconds"], ours["epoch_seconds"])
    ]
    summary["median_run_speedup"] = median(summary["run_speedups"])
    pairs = list(zip(straight["final_loss"], ours["final_loss"]))
    differences = [abs(b - a) / abs(a) if a else float("inf") for a, b in pairs]
    summary["final_loss_relative_difference"] = max(differences)
    summary["equal_final_loss"] = max(differences) <= LOSS_TOLERANCE
    # Whole runs, one-off costs included: what a run of this many epochs gains, where the figures above are what
    # every further epoch gains.
    whole = {
        arm: median([sum(e) + o for e, o in zip(r["epoch_seconds"], r["one_off_seconds"])])
        for arm, r in results.items()
    }
    summary["whole_run_speedup"] = whole["straightforward"] / whole["ser-hf"]
    print(
        f"ser-hf against straightforward: {summary['speedup']:.2f}x, run by run "
        + ", ".join(f"{r:.2f}x" for r in summary["run_speedups"])
        + f" (median {summary['median_run_speedup']:.2f}x); whole runs with ser-hf's one-off "
        f"{median(ours['one_off_seconds']):.1f} s: {summary['whole_run_speedup']:.2f}x; final losses "
        + ", ".join(f"{a:.4f} / {b:.4f}" for a, b in pairs)
        + f": {'equal' if summary['equal_final_loss'] else 'NOT equal'} within {LOSS_TOLERANCE:.0%}"
    )
    return summary


def main(argv=None) -> None:
    parser = speed_parser(
        __doc__,
        quick="the shipped sample, reduced SSL geometry, ~1 minute",
        smoke="one step per loop, tiny geometry, 4 clips, one run",
    )
    parser.add_argument("--data-dir", type=Path, help="a RAVDESS folder instead of the default")
    parser.add_argument("--ssl-geometry", choices=list(SSL_GEOMETRIES), help="default: base (full), reduced (quick)")
    parser.add_argument("--ssl-mode", choices=list(SSL_MODES), default="full", help="full fine-tuning, LoRA or FAST")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast in both loops")
    parser.add_argument("--seconds", type=float, help="every clip cut or padded to this many seconds")
    parser.add_argument("--ssl-epochs", type=int, default=2, help="epochs per run (default 2; the first untimed)")
    parser.add_argument("--ssl-batch-size", type=int, default=4, help="default 4; 32 on a GPU is the issue's figure")
    parser.add_argument("--ssl-clips", type=int, help="training clips (default 24; quick 16)")
    parser.add_argument("--repeats", type=int, help="runs per loop, alternating (default 3; quick 2)")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers of both loops")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu-utilisation", action="store_true", help="sample nvidia-smi (needs --device cuda)")
    parser.add_argument("--warmup-steps", type=int, default=5, help="steps of each run before its steady state")
    args = speed_arguments(parser, argv, ssl_geometry="tiny", ssl_clips=4, ssl_batch_size=2, ssl_epochs=1, repeats=1)
    args.ssl_geometry = args.ssl_geometry or ("reduced" if args.quick else "base")
    args.ssl_clips = args.ssl_clips or (16 if args.quick else 24)
    args.repeats = args.repeats or (2 if args.quick else 3)
    check_device(args.device, args.gpu_utilisation, args.bf16)
    logging.getLogger("ser_hf").setLevel(logging.ERROR)
    datasets.disable_progress_bars()

    folder = data_dir(args.quick, args.data_dir)
    print(f"# bench/train_step.py on {machine_description(args.device)}")
    scratch = tempfile.TemporaryDirectory(prefix="bench_train_step_clips_")
    if args.seconds:
        folder = fixed_length_copy(folder, args.seconds, Path(scratch.name) / "ravdess")
    print(
        f"data: {folder}{f', every clip cut or padded to {args.seconds:g} s' if args.seconds else ''}; device "
        f"{args.device}{', bf16 autocast' if args.bf16 else ''}; {args.num_workers} DataLoader worker(s)"
    )
    splits_audio = ravdess_splits(folder, prepared=False)
    started = time.perf_counter()
    splits_prepared = ravdess_splits(folder, prepared=True)
    print(f"ser-hf one-off: load_corpus + prepare_audio {time.perf_counter() - started:.1f} s")
    sampler = UtilisationSampler() if args.gpu_utilisation else None
    try:
        results = run(args, splits_audio, splits_prepared, sampler)
    finally:
        if sampler is not None:
            sampler.close()
        scratch.cleanup()
    clips = len(subset(splits_prepared["train"], args.ssl_clips))
    summary = report(args, min(clips, args.ssl_batch_size) if args.smoke else clips, results)
    write_json(args.json, {"args": vars(args) | {"data_dir": str(folder)}, "results": [summary]}, args.device)


if __name__ == "__main__":
    main()
