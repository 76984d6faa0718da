"""Fine-tuning a Whisper encoder, ser-hf's way against transformers' example script, UA and clips/s side by side.

    python -m bench.peer_finetune --epochs 1 --threads 1 \\
        --model-path openai/whisper-tiny.en=../shared/models/whisper-tiny.en-encoder \\
        --json docs/results/ravdess_kfold/peer_finetune-whisper_tiny_en.json
    python -m bench.peer_finetune --quick --threads 1   # the shipped sample and tiny.en (pretrained/), a few minutes

One speaker fold of RAVDESS actors 01-20 (``--fold``, of the speaker 5-fold with fold seed 42 that every RAVDESS row
of docs/results/LOG.md uses), trained for the same ``--epochs`` with the same batch size and encoder learning rate
both ways:

- **ser-hf**: a fine-tuning recipe (default ``recipes/ravdess_whisper_tiny_en_top2.yaml``: the top 2 layers on the
  cached input of the first of them, each clip through its own length) through ``ser-hf kfold``'s fold, its
  ``num_train_epochs`` set to ``--epochs``, nothing else changed;
- **the example script**: transformers' ``run_audio_classification.py`` (vendored unchanged in ``bench/peer/``,
  run by ``bench/peer/measure.py``) fine-tuning ``WhisperForAudioClassification`` from the same checkpoint on the same
  training clips (an ``audiofolder``, offline), every clip padded to Whisper's 30-s window, the whole encoder trained
  (the script has no flag to freeze some layers), ``--freeze_feature_encoder False`` (Whisper has no such part), its
  other settings its defaults; its saved model is then scored on the fold's test clips through the same 30-s window.

Printed: each arm's test UA (pooled clips, speaker-bootstrap 95 % interval), WA, training clips/s (Trainer's own
``train_samples_per_second``) and training minutes (its ``train_runtime``: the one-off encoding of ser-hf's cache
and either tool's loading left out); the ratio of clips/s. A fold's test speakers are 4 actors: the interval is
wide, and one fold at few epochs says how the two ways compare at equal epochs, not what either reaches.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.harness import (
    REPO,
    SAMPLE,
    SHARED_RAVDESS,
    add_threads_argument,
    link_or_copy,
    machine_line,
    run_fields,
    run_measured,
    set_threads,
)
from ser_hf.cli.loco import add_model_path_argument
from ser_hf.experiments.kfold import kfold_values
from ser_hf.recipe import Recipe
from ser_hf.recipe.overrides import model_paths as parse_model_paths
from ser_hf.recipe.overrides import with_model_path
from ser_hf.recipe.yaml_io import read_recipe_file
from ser_hf.training.run_recipe import run_parsed_recipe

#: The real Whisper tiny.en encoder the repository ships (pretrained/README.md): the quick mode's model.
EMBEDDED = REPO / "pretrained" / "whisper-tiny.en-encoder"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=REPO / "recipes" / "ravdess_whisper_tiny_en_top2.yaml")
    parser.add_argument("--epochs", type=float, default=1.0, help="training epochs of both (default 1)")
    parser.add_argument("--fold", type=int, default=0, help="the speaker fold (0-4, fold seed 42)")
    parser.add_argument("--batch-size", type=int, help="training batch of both (default: the recipe's)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where both train (default cpu)")
    parser.add_argument(
        "--quick", action="store_true", help="the shipped sample (actors 01-08, 4 folds) and the shipped tiny.en"
    )
    parser.add_argument("--smoke", action="store_true", help="the test suite's run: --quick, batch 4, 0.05 epochs")
    parser.add_argument("--data-dir", type=Path, help="RAVDESS folder (default ../shared/data/ravdess_16k)")
    parser.add_argument("--output-dir", type=Path, help="where both train (default: a temporary folder, kept)")
    parser.add_argument("--json", type=Path, help="also write both arms' figures here")
    add_model_path_argument(parser)
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.quick, args.batch_size, args.epochs = True, args.batch_size or 4, 0.05
    args.data_dir = args.data_dir or (SAMPLE if args.quick else SHARED_RAVDESS)
    return args


def fold_values(args, model_paths: dict[str, str], output: Path) -> dict:
    """ser-hf's recipe on the fold (``ser-hf kfold``'s speaker k-fold, fold seed 42, this fold alone), `--epochs`
    epochs and `--batch-size`."""
    values = with_model_path(read_recipe_file(args.recipe), model_paths)
    values.update(data_dir=str(args.data_dir), num_train_epochs=args.epochs, use_cpu=args.device == "cpu")
    values.update(report_to="none", disable_tqdm=True)
    if args.batch_size:
        values["per_device_train_batch_size"] = args.batch_size
    return {**kfold_values(values, 4 if args.quick else 5, 42, output), "folds": [args.fold]}


def write_audiofolder(report: dict, data_dir: Path, folder: Path) -> dict[str, list[tuple[str, str, str]]]:
    """The fold's clips as an ``audiofolder`` (``train/LABEL/``, and the test clips as ``validation/LABEL/``, which
    the script loads but never scores), hard links where the file system allows; ``(path, label, speaker)`` per
    split. The clips and labels are the ones ser-hf's report names."""
    from datasets import Audio

    from ser_hf import load_corpus

    corpus = load_corpus("ravdess", str(data_dir)).cast_column("audio", Audio(decode=False))
    names = corpus.features["label"].names
    speakers = report["split"]["speakers"]
    clips: dict[str, list[tuple[str, str, str]]] = {"train": [], "validation": []}
    for row in corpus.select_columns(["path", "label", "speaker_id"]):
        split = (
            "train"
            if row["speaker_id"] in speakers["train"]
            else "validation"
            if row["speaker_id"] in speakers["test"]
            else None
        )
        if split is None:
            continue
        target = folder / split / names[row["label"]] / Path(row["path"]).name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            link_or_copy(row["path"], target)
        clips[split].append((row["path"], names[row["label"]], row["speaker_id"]))
    return clips


def peer_arm(args, model: str, audiofolder: Path, output: Path, batch: int, learning_rate: float) -> dict:
    """The example script's run (``bench/peer/measure.py``, its own process); what it measured (read back where a
    previous run in the same `output` finished)."""
    flags = [
        "--model_name_or_path", model,
        "--dataset_name", str(audiofolder),
        "--output_dir", str(output),
        "--remove_unused_columns", "False",
        "--freeze_feature_encoder", "False",
        "--do_train",
        "--seed", "42",
        "--num_train_epochs", str(args.epochs),
        "--per_device_train_batch_size", str(batch),
        "--learning_rate", str(learning_rate),
        "--eval_strategy", "no",
        "--save_strategy", "no",
        "--logging_steps", "5",
        "--report_to", "none",
        "--disable_tqdm", "True",
    ]  # fmt: skip
    if args.device == "cpu":
        flags.append("--use_cpu")
    output.parent.mkdir(parents=True, exist_ok=True)
    report = output.parent / "peer_measure.json"
    if report.exists() and (output / "config.json").exists():
        print(f"the example script's run in {output} finished: read back", flush=True)
        return json.loads(report.read_text())
    return run_measured("peer", flags, report, args.threads)


def score_peer(model_dir: Path, feature_extractor_dir: str, clips: list[tuple[str, str, str]], device: str) -> dict:
    """The example script's saved model on the test clips, through its own preprocessing (the 30-s window)."""
    import numpy as np
    import soundfile
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from ser_hf.evaluation.metrics import classification_metrics

    model = AutoModelForAudioClassification.from_pretrained(model_dir).eval().to(device)
    extractor = AutoFeatureExtractor.from_pretrained(feature_extractor_dir)
    names = [model.config.id2label[index] for index in range(model.config.num_labels)]
    logits = []
    for start in range(0, len(clips), 8):
        waves = [
            soundfile.read(path, dtype="float32", always_2d=True)[0].mean(axis=1)
            for path, _, _ in clips[start : start + 8]
        ]
        inputs = extractor(waves, sampling_rate=extractor.sampling_rate, return_tensors="pt").to(device)
        with torch.no_grad():
            logits.append(model(**inputs).logits.float().cpu().numpy())
    labels = [names.index(label) for _, label, _ in clips]
    return classification_metrics(labels, np.concatenate(logits), names, speakers=[s for _, _, s in clips])


def main(argv=None) -> dict:
    args = parse_args(argv)
    model_paths = parse_model_paths(args.model_paths, "--model-path")
    if args.quick:
        model_paths.setdefault(read_recipe_file(args.recipe)["model_name_or_path"], str(EMBEDDED))
    work = args.output_dir or Path(tempfile.mkdtemp(prefix="ser_hf_peer_finetune_"))
    set_threads(args.threads)
    print(machine_line(), flush=True)
    values = fold_values(args, model_paths, work / "serhf")
    (serhf,) = [report.to_dict() for report in run_parsed_recipe(Recipe.from_values(values))]
    model, batch = values["model_name_or_path"], values["per_device_train_batch_size"]
    learning_rate = values["learning_rate"]  # the fine-tuned layers'; the recipe's head has its own
    clips = write_audiofolder(serhf, args.data_dir, work / "audiofolder")
    print(
        f"fold {args.fold} (fold seed 42): {len(clips['train'])} training clips, {len(clips['validation'])} test "
        f"clips of {', '.join(serhf['split']['speakers']['test'])}; {args.epochs:g} epochs, batch {batch}, encoder "
        f"learning rate {learning_rate:g}, {model}",
        flush=True,
    )
    peer = peer_arm(args, model, work / "audiofolder", work / "peer" / "model", batch, learning_rate)
    peer_test = score_peer(work / "peer" / "model", model, clips["validation"], args.device)
    rows = {
        "ser-hf": {
            "test": serhf["evaluation"]["test"],
            "clips_per_second": serhf["training"]["train_samples_per_second"],
            "minutes": serhf["training"]["train_runtime"] / 60,
        },
        "example script": {
            "test": peer_test,
            "clips_per_second": peer["train_samples_per_second"],
            "minutes": peer["train_runtime"] / 60,
        },
    }
    from ser_hf.evaluation.bootstrap import format_interval, pooled_intervals

    for name, row in rows.items():
        interval = format_interval(pooled_intervals([row["test"]]), "unweighted_accuracy")
        print(
            f"  {name:>14}: UA {100 * row['test']['unweighted_accuracy']:.1f} {interval}, WA "
            f"{100 * row['test']['accuracy']:.1f}; training {row['clips_per_second']:.2f} clips/s, "
            f"{row['minutes']:.1f} min",
            flush=True,
        )
    ratio = rows["ser-hf"]["clips_per_second"] / rows["example script"]["clips_per_second"]
    print(f"ser-hf trains {ratio:.1f}x the example script's clips/s at {args.epochs:g} epochs", flush=True)
    summary = {
        **run_fields(),
        "fold": args.fold,
        "test_speakers": serhf["split"]["speakers"]["test"],
        "epochs": args.epochs,
        "ratio": ratio,
        "arms": {
            name: {
                "unweighted_accuracy": row["test"]["unweighted_accuracy"],
                "accuracy": row["test"]["accuracy"],
                "confidence_intervals": pooled_intervals([row["test"]]),
                "clips_per_second": row["clips_per_second"],
                "minutes": row["minutes"],
            }
            for name, row in rows.items()
        },
    }
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"runs kept in {work}")
    return summary


if __name__ == "__main__":
    main()
