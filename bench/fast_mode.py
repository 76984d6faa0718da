"""FAST mode (frozen encoder, its outputs computed once and cached) against recomputing the frozen encoder every epoch,
on the same model, clips, batch size and epochs, in one run.

    python -m bench.fast_mode --quick            # shipped RAVDESS sample, reduced wav2vec2 geometry: ~1 min
    python -m bench.fast_mode                    # ../shared/data/ravdess_16k (960 training clips, 240 validation)
    python -m bench.fast_mode --ssl-geometry base --device cuda --bf16   # wav2vec2-base geometry, on a GPU

Both train the head of the same randomly initialised wav2vec 2.0 classifier (weighted sum of every layer, as
recipes/cremad_fast.yaml), encoder frozen, through ser-hf's own loop (`ser_hf.training.train_stage.build_trainer`):

- "recompute": the frozen encoder runs on every clip of every epoch (length-grouped batches, dynamic padding);
- "FAST": `ser_hf.inputs.encoder_states.encode_dataset` encodes every clip once (the one-off cost, printed apart), then
  the head trains on the cached per-layer means (`CachedEncoderHead`).

Figures are seconds per epoch (median of the epochs after the first) and the ratio; and the validation unweighted
(UA) and weighted (WA) accuracy of both heads after the same epochs, computed the same way (the head on the cached
validation states, which gives the full model's logits exactly: mean pooling commutes with the projector). The two
heads differ only in what the frozen encoder does in training mode when recomputed (dropout, layer drop, SpecAugment
time masks), so their metrics agree within seed noise, not to the digit. On CPU the full mode uses a reduced geometry
by default: recomputing wav2vec2-base for 960 clips takes far longer than the 10 minutes a full mode may; a larger
encoder only makes the ratio larger.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import torch
from datasets import DatasetDict, concatenate_datasets
from transformers import PrinterCallback, set_seed

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
)
from bench.train_step import SSL_GEOMETRIES
from ser_hf.evaluation.metrics import classification_metrics
from ser_hf.inputs.base import model_inputs
from ser_hf.inputs.encoder_states import encode_dataset
from ser_hf.inputs.fast_mode import ENCODER_STATES_COLUMN, CachedEncoderHead
from ser_hf.recipe.augmentation_arguments import AugmentationArguments
from ser_hf.recipe.data_arguments import DataArguments
from ser_hf.recipe.model_arguments import ModelArguments
from ser_hf.recipe.training_arguments import SERTrainingArguments
from ser_hf.training.model_stage import build_model, recipe_input_mode
from ser_hf.training.train_stage import build_trainer

ARMS = ("recompute", "FAST")


def model_arguments(args, cached: bool) -> ModelArguments:
    geometry = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in SSL_GEOMETRIES[args.ssl_geometry].items()
    }
    # No layer drop: transformers 5 returns no hidden state for a dropped layer, which breaks the weighted layer sum
    # of a recomputing run in train mode.
    geometry["layerdrop"] = 0.0
    return ModelArguments(
        model_type="wav2vec2",
        model_config=geometry,
        freeze_base_model=True,
        use_weighted_layer_sum=True,
        cache_encoder_outputs=cached,
    )


def training_arguments(args, output_dir: str) -> SERTrainingArguments:
    return SERTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=1e-3,
        seed=args.seed,
        report_to="none",
        disable_tqdm=True,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        logging_strategy="epoch",
        use_cpu=args.device == "cpu",
        precision="bf16" if args.bf16 else "fp32",
        max_steps=1 if args.smoke else -1,
        dataloader_num_workers=args.num_workers,
    )


@torch.no_grad()
def head_metrics(model, validation_states) -> dict:
    """UA and WA of a model's head on the cached validation states."""
    head = CachedEncoderHead(model).eval()
    states = torch.tensor(np.asarray(validation_states[ENCODER_STATES_COLUMN]), dtype=torch.float32)
    logits = head(states.to(model.device)).logits.float().cpu().numpy()
    metrics = classification_metrics(validation_states["label"], logits, validation_states.features["label"].names)
    return {"ua": metrics["unweighted_accuracy"], "wa": metrics["accuracy"]}


def train(args, cached: bool, splits: DatasetDict, label_names) -> tuple[list[float], object]:
    model_args = model_arguments(args, cached)
    set_seed(args.seed)
    model, feature_extractor = build_model(model_args, AugmentationArguments(), splits["train"].features["label"])
    # Without this, transformers' feature encoder marks its input as requiring grad (only freeze_feature_encoder()
    # clears that, and freeze_base_model() does not call it), so every recomputing step would also back-propagate
    # through the whole frozen encoder for nothing: the recomputing loop is measured at its best.
    model.freeze_feature_encoder()
    model.to(args.device)
    input_mode = recipe_input_mode(
        model_args, DataArguments(corpus=["ravdess"], data_dir=["-"]), AugmentationArguments()
    )
    inputs = DatasetDict({"train": model_inputs(splits["train"], input_mode.columns)})
    with tempfile.TemporaryDirectory(prefix="bench_fast_mode_") as output_dir:
        trainer = build_trainer(
            model, feature_extractor, inputs, input_mode, training_arguments(args, output_dir), label_names
        )
        timer = EpochTimer()
        trainer.add_callback(timer)
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return timer.seconds, model


def encode(args, splits: DatasetDict, cache_dir: str) -> tuple[DatasetDict, float]:
    """Every clip's cached encoder states, as `ser-hf train` computes them for FAST mode (all splits at once)."""
    set_seed(args.seed)
    model, feature_extractor = build_model(
        model_arguments(args, True), AugmentationArguments(), splits["train"].features["label"]
    )
    model.to(args.device)
    names = list(splits)
    everything = concatenate_datasets([splits[name] for name in names])
    started = time.perf_counter()
    encoded = encode_dataset(model, feature_extractor, everything, batch_size=args.batch_size, cache_dir=cache_dir)
    seconds = time.perf_counter() - started
    result, offset = {}, 0
    for name in names:
        result[name] = encoded.select(range(offset, offset + len(splits[name])))
        offset += len(splits[name])
    return DatasetDict(result), seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the shipped sample, a subset of its clips, ~1 minute")
    parser.add_argument("--smoke", action="store_true", help="one step per arm, tiny geometry (tests)")
    parser.add_argument("--data-dir", type=Path, help="a RAVDESS folder instead of the default")
    parser.add_argument("--ssl-geometry", choices=list(SSL_GEOMETRIES), help="default: reduced (base on a GPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast while training (both arms)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--clips", type=int, help="training clips (default: all; quick 48)")
    parser.add_argument("--validation-clips", type=int, help="validation clips (default: all; quick 32)")
    parser.add_argument("--epochs", type=int, help="epochs of each arm (default 3)")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers of both arms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_threads_argument(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    if args.smoke:
        args.quick, args.ssl_geometry = True, args.ssl_geometry or "tiny"
        args.clips, args.validation_clips, args.batch_size = args.clips or 4, args.validation_clips or 4, 2
    args.ssl_geometry = args.ssl_geometry or ("base" if args.device.startswith("cuda") else "reduced")
    args.epochs = args.epochs or (1 if args.smoke else 3)
    if args.quick:
        args.clips, args.validation_clips = args.clips or 48, args.validation_clips or 32
    logging.getLogger("ser_hf").setLevel(logging.ERROR)
    datasets.disable_progress_bars()

    folder = data_dir(args.quick, args.data_dir)
    print(f"# bench/fast_mode.py on {machine_line(args.device)}")
    prepared = ravdess_splits(folder, prepared=True)
    splits = DatasetDict(
        {
            "train": subset(prepared["train"], args.clips),
            "validation": subset(prepared["validation"], args.validation_clips),
        }
    )
    label_names = splits["train"].features["label"].names
    print(
        f"data: {folder}, {len(splits['train'])} training and {len(splits['validation'])} validation clips; "
        f"wav2vec2 ({args.ssl_geometry} geometry), batch {args.batch_size}, {args.epochs} epoch(s); device "
        f"{args.device}{', bf16' if args.bf16 else ''}"
    )

    with tempfile.TemporaryDirectory(prefix="bench_fast_cache_") as cache_dir:
        encoded, encode_seconds = encode(args, splits, cache_dir)
        clips = sum(len(split) for split in encoded.values())
        train_share = encode_seconds * len(encoded["train"]) / clips
        print(
            f"FAST one-off: encoding {clips} clips once took {encode_seconds:.1f} s (the {len(encoded['train'])} "
            f"training clips' share: ~{train_share:.1f} s)",
            flush=True,
        )
        epochs, metrics = {}, {}
        for arm in ARMS:
            cached = arm == "FAST"
            seconds, model = train(args, cached, encoded if cached else splits, label_names)
            epochs[arm] = seconds
            metrics[arm] = head_metrics(model, encoded["validation"])
            print(
                f"  {arm:<10} epochs {', '.join(f'{s:.2f}' for s in seconds)} s; validation UA "
                f"{100 * metrics[arm]['ua']:.1f} %, WA {100 * metrics[arm]['wa']:.1f} %",
                flush=True,
            )

    per_epoch = {arm: median(s[1:] if len(s) > 1 else s) for arm, s in epochs.items()}
    totals = {"recompute": sum(epochs["recompute"]), "FAST": train_share + sum(epochs["FAST"])}
    ratio = per_epoch["recompute"] / per_epoch["FAST"]
    print(f"\n{'':<11}{'s/epoch':>10}{'x':>10}{f'{args.epochs} epochs s':>14}{'UA %':>8}{'WA %':>8}")
    for arm in ARMS:
        print(
            f"{arm:<11}{per_epoch[arm]:>10.3f}{per_epoch['recompute'] / per_epoch[arm]:>9.1f}x{totals[arm]:>14.1f}"
            f"{100 * metrics[arm]['ua']:>8.1f}{100 * metrics[arm]['wa']:>8.1f}"
        )
    print(
        f"FAST is {ratio:.0f}x faster per epoch after the first; its first epoch includes encoding the training "
        f"clips once (~{train_share:.1f} s); over {args.epochs} epochs {totals['recompute'] / totals['FAST']:.1f}x."
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    **run_fields(args.device),
                    "args": vars(args) | {"data_dir": str(folder)},
                    "encode_seconds": encode_seconds,
                    "epoch_seconds": epochs,
                    "per_epoch": per_epoch,
                    "ratio": ratio,
                    "totals": totals,
                    "metrics": metrics,
                },
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
