"""Training throughput of ser-hf's loop against the straightforward `Trainer` recipe, on the same model, clips, batch
size and epochs, in one run.

    python bench/train_step.py --quick                  # shipped RAVDESS sample, reduced SSL geometry: ~1 min
    python bench/train_step.py                          # ../shared/data/ravdess_16k, wav2vec2-base geometry, CRNN
    python bench/train_step.py --device cuda --bf16 --ssl-batch-size 32   # on a GPU

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
alternating (A B B A ...) so that other work on a shared machine weighs on both alike. "padded" is the share of the
samples fed to the model that are padding. The whole-run figure adds every epoch and the one-off costs. The final
validation metrics (unweighted accuracy, UA) of every run are printed for the baselines; a randomly initialised SSL
encoder trained a few steps on CPU has no meaningful metric, so none is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional
from unittest import mock

import datasets
import torch
from transformers import PrinterCallback, Trainer, TrainingArguments, Wav2Vec2Config, set_seed

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness import (
    EpochTimer,
    add_threads_argument,
    data_dir,
    machine_line,
    median,
    ravdess_splits,
    set_threads,
    subset,
    validation_metrics,
)
from ser_hf.data.decode import WAVEFORM_COLUMN
from ser_hf.inputs.feature_encoder_cache import NUM_SAMPLES_COLUMN
from ser_hf.models import build_baseline, build_ssl_classifier, build_ssl_feature_extractor
from ser_hf.recipe.arguments import AugmentationArguments, DataArguments, ModelArguments, SERTrainingArguments
from ser_hf.training.stages import build_trainer, recipe_input_mode

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

    def build_ssl(labels):
        return build_ssl_classifier(ssl_config, labels), build_ssl_feature_extractor(ssl_config)

    def baseline(kind):
        config = TINY_BASELINE_CONFIGS[kind] if args.smoke else BASELINE_CONFIGS[kind]
        return lambda labels: build_baseline(kind, labels, **config)

    specs = {
        "ssl": ModelSpec(
            ssl_name,
            build_ssl,
            args.ssl_batch_size or 4,
            args.ssl_clips or (16 if quick else 24),
            1 if args.smoke else 2,
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
        lengths = [
            int(row[NUM_SAMPLES_COLUMN]) if NUM_SAMPLES_COLUMN in row else len(row[WAVEFORM_COLUMN]) for row in rows
        ]
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
    """ser-hf's loop, built exactly as `ser-hf train` builds it: the recipe's input mode's `fold_inputs` (which runs an
    SSL model's frozen feature encoder once per clip, a one-off cost printed apart), then `build_trainer`."""
    from datasets import DatasetDict

    model_type = "wav2vec2" if spec.name.startswith("wav2vec2") else spec.name
    training_args = SERTrainingArguments(
        precision="bf16" if args.bf16 else "fp32",
        load_best_model_at_end=False,
        **{**common_arguments(args, spec, output_dir, seed), "bf16": False},
    )
    model_args = ModelArguments(model_type=model_type, cache_feature_encoder=None if args.feature_cache else False)
    data_args = DataArguments(corpus=["ravdess"], data_dir=["-"])
    started = time.perf_counter()
    # The cache goes into the run's own temporary folder: every run pays the one-off cost, none reads an earlier one.
    input_mode = recipe_input_mode(model_args, data_args, AugmentationArguments())
    with mock.patch.object(datasets.config, "HF_DATASETS_CACHE", output_dir):
        inputs = input_mode.fold_inputs(
            model, feature_extractor, DatasetDict({"train": train_prepared}), training_args
        )
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


ARMS = ("straightforward", "ser-hf")


def run(args, spec: ModelSpec, splits_audio, splits_prepared) -> dict[str, ArmResult]:
    train_audio = subset(splits_audio["train"], spec.clips)
    train_prepared = subset(splits_prepared["train"], spec.clips)
    assert train_audio["path"] == train_prepared["path"]
    # The straightforward loop pads to the longest clip of the whole training split, as it would in a real run, even
    # when only a subset of the split is timed.
    longest_seconds = max(splits_audio["train"]["duration"])
    label_names = train_prepared.features["label"].names
    results = {arm: ArmResult() for arm in ARMS}
    for repeat in range(args.repeats):
        order = ARMS if repeat % 2 == 0 else ARMS[::-1]
        for arm in order:
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
                timer = EpochTimer()
                trainer.add_callback(timer)
                trainer.remove_callback(PrinterCallback)
                trainer.train()
            result = results[arm]
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
                + (f", validation UA {100 * result.ua[-1]:.1f} %" if result.ua else ""),
                flush=True,
            )
    return results


def report(spec: ModelSpec, clips: int, results: dict[str, ArmResult]) -> dict:
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
            f"ser-hf one-off (fold_inputs: feature-encoder cache): {one_off:.1f} s per run; "
            f"whole {spec.epochs}-epoch runs, one-off included: {whole['straightforward']:.1f} s against "
            f"{whole['ser-hf']:.1f} s, {summary['whole_run_speedup']:.2f}x"
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the shipped sample, reduced SSL geometry, ~1 minute")
    parser.add_argument("--smoke", action="store_true", help="one step per loop (tests: keeps the script running)")
    parser.add_argument("--data-dir", type=Path, help="a RAVDESS folder instead of the default")
    parser.add_argument(
        "--models", nargs="+", choices=["ssl", "crnn", "cnn2d"], help="default: ssl crnn (full adds cnn2d)"
    )
    parser.add_argument("--ssl-geometry", choices=list(SSL_GEOMETRIES), help="default: base (full), reduced (quick)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast in both loops")
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
        "--no-feature-cache",
        dest="feature_cache",
        action="store_false",
        help="ser-hf's loop without its frozen feature-encoder cache (cache_feature_encoder: false)",
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
    logging.getLogger("ser_hf").setLevel(logging.ERROR)
    datasets.disable_progress_bars()

    folder = data_dir(args.quick, args.data_dir)
    print(f"# bench/train_step.py on {machine_line(args.device)}")
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
    for spec in model_specs(args):
        results = run(args, spec, splits_audio, splits_prepared)
        clips = len(subset(splits_prepared["train"], spec.clips))
        if args.smoke:
            clips = min(clips, spec.batch_size)
        summaries.append(report(spec, clips, results))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine_line(args.device),
                    "args": vars(args) | {"data_dir": str(folder), "json": str(args.json)},
                    "results": summaries,
                },
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
