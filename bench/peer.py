"""SSL training throughput of ser-hf against transformers' own example script, run side by side with the same flags.

    python -m bench.peer --quick --threads 1        # shipped RAVDESS sample, tiny wav2vec2, a few steps: ~1 min
    python -m bench.peer                            # ../shared/data/ravdess_16k, wav2vec2-base geometry
    python -m bench.peer --device cuda --bf16 --batch-size 32 --steps 100 --workers 4 --seconds 3 \
        --gpu-utilisation                           # on a GPU (BENCHMARKS.md, "GPU"; bench/gpu_figures.sh)

The peer is transformers' ``examples/pytorch/audio-classification/run_audio_classification.py``, vendored unchanged
in ``bench/peer/`` (its header says which commit). Both tools fine-tune the same randomly initialised wav2vec2
encoder (``Wav2Vec2Model`` and ``Wav2Vec2FeatureExtractor`` saved to a temporary folder, ``--geometry tiny`` or
``base``, the wav2vec2-base sizes; the classification head is each tool's own) on the same clips: a temporary
RAVDESS-format folder (hard links, or WAV files cut or padded to ``--seconds``) that ``ser-hf train`` reads as the
``ravdess`` corpus, and the same files as an ``audiofolder`` (``train/LABEL/``, ``validation/LABEL/``) that the
script loads with ``--dataset_name FOLDER``, offline. Same flags for both: batch size, ``max_steps``, learning rate,
maximum clip length (``max_length_seconds`` / ``max_duration_seconds``: longer clips are cropped at random), seed,
bf16 or fp32, DataLoader workers; no evaluation or checkpoint during training. Everything else is each tool's default
(the peer: ``--remove_unused_columns False``, which it needs, clips decoded on every access, random batches; ser-hf:
clips decoded once, the frozen feature encoder cached on CPU, batches grouped by length).

Each run is its own process (``bench/peer/measure.py``), alternating A B A B over ``--repeats`` so that other work on
a shared machine weighs on both alike. clips/s is Trainer's own logged ``train_samples_per_second`` (steps x batch /
``train_runtime``, the whole step loop: the first step's warm-up included, the tools' one-off costs before training
not); "after step 1" is the wall clock from the end of the first step to the end of the last. The ratio is the median
of the runs' own ratios (run k of ser-hf against run k of the peer). The training loss is Trainer's ``train_loss``
(the mean over all steps): both must end within ``--loss-tolerance`` of each other. Peak RSS is each run's process;
on CUDA, peak GPU memory is ``torch.cuda.max_memory_allocated`` over the step loop, recorded by a callback that
``measure.py`` adds to both tools' ``Trainer`` from outside.

On a GPU, ``--gpu-utilisation`` samples ``nvidia-smi`` every 500 ms beside the runs (as bench/train_step.py does) and
reports each run's steady state (from the end of step ``--warmup-steps`` to the end of the last): the mean
utilisation and the share of samples at 85 % or more.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from bench.harness import (
    SSL_GEOMETRIES,
    UtilisationSampler,
    add_threads_argument,
    check_device,
    data_dir,
    link_or_copy,
    machine_line,
    median,
    run_fields,
    run_measured,
    split_speakers,
    utilisation_summary,
    write_fixed_length,
)

ARMS = ("serhf", "peer")
ARM_NAMES = {"serhf": "ser-hf", "peer": "example script"}
SAMPLING_RATE = 16000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shipped sample, tiny geometry, 6 steps of 4 clips")
    parser.add_argument(
        "--smoke", action="store_true", help="the test suite's run: --quick, 2 steps of 2, 8 clips, once"
    )
    parser.add_argument("--data-dir", type=Path, help="RAVDESS folder (default: the sample or ../shared/data)")
    parser.add_argument("--geometry", choices=["tiny", "base"], help="encoder sizes (default: tiny quick, else base)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision in both (default fp32)")
    parser.add_argument("--batch-size", type=int, help="per-device training batch (default: 4 quick, 8)")
    parser.add_argument("--steps", type=int, help="max_steps of each run (default: 6 quick, 20)")
    parser.add_argument("--learning-rate", type=float, default=3.0e-5)
    parser.add_argument("--max-seconds", type=float, default=20.0, help="crop longer training clips to this")
    parser.add_argument("--seconds", type=float, help="train on every clip cut or padded to this many seconds")
    parser.add_argument("--clips", type=int, help="training clips (a random subset, the same for both)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers in both")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each tool, alternating")
    parser.add_argument("--loss-tolerance", type=float, default=0.05, help="relative difference of the losses")
    parser.add_argument("--warmup-steps", type=int, default=5, help="steps of each run before its steady state")
    parser.add_argument(
        "--gpu-utilisation", action="store_true", help="sample nvidia-smi beside the runs (needs --device cuda)"
    )
    parser.add_argument("--json", type=Path, help="also write every run's figures and the summary here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, runs) and print it")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.quick = True
        args.steps, args.batch_size, args.repeats = args.steps or 2, args.batch_size or 2, 1
        args.clips = args.clips or 8
    args.geometry = args.geometry or ("tiny" if args.quick else "base")
    args.batch_size = args.batch_size or (4 if args.quick else 8)
    args.steps = args.steps or (6 if args.quick else 20)
    check_device(args.device, args.gpu_utilisation, args.bf16)
    if args.bf16 and args.device == "cpu":
        print("note: --bf16 on CPU runs bf16 autocast on the CPU", flush=True)
    return args


def save_encoder(folder: Path, geometry: str, seed: int) -> None:
    """A randomly initialised bare wav2vec2 encoder and its feature extractor, as a checkpoint folder."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(seed)
    # layerdrop off: a dropped layer costs no compute, which would make two runs' step times differ by chance.
    config = Wav2Vec2Config(**SSL_GEOMETRIES[geometry], layerdrop=0.0)
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=SAMPLING_RATE).save_pretrained(folder)


def write_clips(source: Path, work: Path, args) -> tuple[Path, Path, list[str], list[str], int]:
    """The clips both tools read: a RAVDESS-format folder for ser-hf and an audiofolder for the example script.

    Returns (ravdess folder, audiofolder, train speakers, validation speakers, training clips).
    """
    from datasets import Audio

    from ser_hf import load_corpus

    corpus = load_corpus("ravdess", source).cast_column("audio", Audio(decode=False))
    train, validation = split_speakers(set(corpus.unique("speaker_id")))
    names = corpus.features["label"].names
    ravdess, audiofolder = work / "ravdess", work / "audiofolder"
    rows = {"train": [], "validation": []}
    for row in corpus.select_columns(["path", "label", "speaker_id"]):
        split = "train" if row["speaker_id"] in train else "validation" if row["speaker_id"] in validation else None
        if split:
            rows[split].append(row)
    if args.clips is not None:
        rows = {split: _every_label_first(split_rows, args.clips) for split, split_rows in rows.items()}
    for split, split_rows in rows.items():
        for row in split_rows:
            path = Path(row["path"])
            name = path.name if args.seconds is None else path.stem + ".wav"
            targets = [ravdess / path.parent.name / name, audiofolder / split / names[row["label"]] / name]
            for target in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
            if args.seconds is None:
                for target in targets:
                    link_or_copy(path, target)
                continue
            write_fixed_length(path, targets[0], args.seconds)
            link_or_copy(targets[0], targets[1])
    # The speakers left after --clips: ser-hf's split names only speakers its corpus folder holds.
    train, validation = (
        [s for s in speakers if any(r["speaker_id"] == s for r in rows[split])]
        for split, speakers in (("train", train), ("validation", validation))
    )
    return ravdess, audiofolder, train, validation, len(rows["train"])


def _every_label_first(rows: list[dict], clips: int) -> list[dict]:
    """``clips`` rows drawn at random, label after label, so that a split of a few clips still holds every label."""
    import numpy as np

    rng = np.random.default_rng(0)
    by_label: dict[int, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    queues = [[group[i] for i in rng.permutation(len(group))] for _, group in sorted(by_label.items())]
    interleaved = [queue[i] for i in range(max(map(len, queues))) for queue in queues if i < len(queue)]
    return interleaved[:clips]


def serhf_arguments(args, recipe: Path, model: Path, ravdess: Path, train, validation, output: Path) -> list[str]:
    """``ser-hf train`` arguments: a recipe with the benchmark's settings (written once), the output folder apart."""
    settings = {
        "model_type": "wav2vec2",
        "model_name_or_path": str(model),
        "corpus": "ravdess",
        "data_dir": str(ravdess),
        "split_protocol": "speaker",
        "train_speakers": train,
        "validation_speakers": validation,
        "test_speakers": [],
        "max_duration_seconds": args.max_seconds,
        "seed": args.seed,
        "max_steps": args.steps,
        "per_device_train_batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "precision": "bf16" if args.bf16 else "fp32",
        "dataloader_num_workers": args.workers,
        "use_cpu": args.device == "cpu",
        "eval_strategy": "no",
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "calibrate_temperature": False,
        "logging_steps": max(1, args.steps // 5),
        "report_to": "none",
        "disable_tqdm": True,
    }
    if not recipe.exists():
        recipe.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items()))
    return [str(recipe), "--output_dir", str(output), "--overwrite_output_dir", "true"]


def peer_arguments(args, model: Path, audiofolder: Path, output: Path) -> list[str]:
    """The example script's flags for the same run."""
    flags = [
        "--model_name_or_path", str(model),
        "--dataset_name", str(audiofolder),
        "--output_dir", str(output),
        "--remove_unused_columns", "False",
        "--do_train",
        "--max_length_seconds", str(args.max_seconds),
        "--seed", str(args.seed),
        "--max_steps", str(args.steps),
        "--per_device_train_batch_size", str(args.batch_size),
        "--learning_rate", str(args.learning_rate),
        "--dataloader_num_workers", str(args.workers),
        "--eval_strategy", "no",
        "--save_strategy", "no",
        "--logging_steps", str(max(1, args.steps // 5)),
        "--report_to", "none",
        "--disable_tqdm", "True",
    ]  # fmt: skip
    if args.bf16:
        flags.append("--bf16")
    if args.device == "cpu":
        flags.append("--use_cpu")
    return flags


def run_arm(arm: str, arguments: list[str], work: Path, run, threads, warmup_steps=5, sampler=None) -> dict:
    """One run of ``arm`` in its own process (``measure.py``)."""
    env = {"HF_DATASETS_CACHE": str(work / "datasets_cache"), "SER_HF_BENCH_WARMUP_STEPS": str(warmup_steps)}
    result = run_measured(arm, arguments, work / f"{arm}_{run}.json", threads, **env)
    steps, batch = result["steps"], result["batch_size"]
    if result.get("steps_after_first_seconds"):
        result["clips_per_second_after_step_1"] = (steps - 1) * batch / result["steps_after_first_seconds"]
    # Trainer's train_samples_per_second, from its train_runtime unrounded (it logs both rounded).
    result["clips_per_second"] = steps * batch / result["train_runtime"]
    if sampler is not None:
        result["gpu_utilisation"] = utilisation_summary([sampler.between(*result.get("steady_clock", (None, None)))])
    return result


def summarise(runs: dict[str, list[dict]], tolerance: float) -> dict:
    pairs = list(zip(runs["serhf"], runs["peer"]))
    summary = {
        "ratio": median([a["clips_per_second"] / b["clips_per_second"] for a, b in pairs]),
        "ratio_after_step_1": median(
            [a["clips_per_second_after_step_1"] / b["clips_per_second_after_step_1"] for a, b in pairs]
        ),
    }
    for arm in ARMS:
        summary[arm] = {
            key: median([r[key] for r in runs[arm]])
            for key in ("clips_per_second", "clips_per_second_after_step_1", "train_loss", "peak_rss_bytes")
        }
        if all("peak_gpu_memory_bytes" in r for r in runs[arm]):
            summary[arm]["peak_gpu_memory_bytes"] = max(r["peak_gpu_memory_bytes"] for r in runs[arm])
        if all("gpu_utilisation" in r for r in runs[arm]):
            summary[arm]["gpu_utilisation"] = {
                key: median([r["gpu_utilisation"][key] for r in runs[arm]])
                for key in ("mean_percent", "busy_fraction")
            }
    a, b = summary["serhf"]["train_loss"], summary["peer"]["train_loss"]
    summary["loss_difference"] = abs(a - b) / max(abs(b), 1e-12)
    summary["equal_loss"] = summary["loss_difference"] <= tolerance
    return summary


def main(argv=None) -> dict:
    args = parse_args(argv)
    source = data_dir(args.quick, args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="ser_hf_peer_"))
    try:
        model = work / "encoder"
        save_encoder(model, args.geometry, args.seed)
        ravdess, audiofolder, train, validation, clips = write_clips(source, work, args)
        geometry = "wav2vec2-base" if args.geometry == "base" else f"wav2vec2 ({args.geometry})"
        clip_kind = f"every clip cut or padded to {args.seconds:g} s" if args.seconds else "real clips"
        print(machine_line(args.device), flush=True)
        print(
            f"{geometry}, random weights, full fine-tuning (feature encoder frozen), {args.device}, "
            f"{'bf16' if args.bf16 else 'fp32'}; {clips} training clips of {source} ({clip_kind}), batch "
            f"{args.batch_size}, {args.steps} steps, lr {args.learning_rate:g}, max {args.max_seconds:g} s, "
            f"{args.workers} DataLoader workers, seed {args.seed}, {args.repeats} runs of each, alternating",
            flush=True,
        )

        def arguments(arm: str, run) -> list[str]:
            output = work / f"run_{arm}_{run}"
            if arm == "serhf":
                return serhf_arguments(args, work / "recipe.yaml", model, ravdess, train, validation, output)
            return peer_arguments(args, model, audiofolder, output)

        sampler = None
        if args.gpu_utilisation:
            sampler = UtilisationSampler()
        runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
        try:
            for run in range(args.repeats):
                for arm in ARMS:
                    result = run_arm(arm, arguments(arm, run), work, run, args.threads, args.warmup_steps, sampler)
                    runs[arm].append(result)
                    print(run_line(arm, run, result), flush=True)
        finally:
            if sampler is not None:
                sampler.close()
        summary = summarise(runs, args.loss_tolerance)
        print(summary_line(summary, args.loss_tolerance), flush=True)
        if args.json:
            args.json.write_text(json.dumps({**run_fields(args.device), "runs": runs, "summary": summary}, indent=1))
        if args.keep:
            print(f"runs and logs kept in {work}")
        return {"runs": runs, "summary": summary}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run_line(arm: str, run: int, result: dict) -> str:
    line = (
        f"  {ARM_NAMES[arm]:>14} run {run + 1}: {result['clips_per_second']:6.2f} clips/s "
        f"({result['clips_per_second_after_step_1']:6.2f} after step 1), train_loss {result['train_loss']:.4f}, "
        f"peak RSS {result['peak_rss_bytes'] / 2**30:.2f} GiB"
    )
    if "peak_gpu_memory_bytes" in result:
        line += f", peak GPU memory {result['peak_gpu_memory_bytes'] / 2**30:.2f} GiB"
    if "gpu_utilisation" in result:
        busy = result["gpu_utilisation"]
        line += (
            f", GPU {busy['mean_percent']:.0f} % ({busy['busy_fraction']:.0%} of {busy['samples']} samples >= 85 %)"
        )
    return line + f", whole process {result['process_seconds']:.0f} s"


def summary_line(summary: dict, tolerance: float) -> str:
    a, b = summary["serhf"], summary["peer"]
    line = (
        f"ser-hf {a['clips_per_second']:.2f} clips/s against the example script's {b['clips_per_second']:.2f}: "
        f"{summary['ratio']:.2f}x (median of the runs' ratios; {summary['ratio_after_step_1']:.2f}x after step 1); "
        f"train_loss {a['train_loss']:.4f} against {b['train_loss']:.4f} "
        f"({'same' if summary['equal_loss'] else 'NOT the same'} within {tolerance:.0%})"
    )
    if "peak_gpu_memory_bytes" in a and "peak_gpu_memory_bytes" in b:
        line += (
            f"; peak GPU memory {a['peak_gpu_memory_bytes'] / 2**30:.2f} against "
            f"{b['peak_gpu_memory_bytes'] / 2**30:.2f} GiB"
        )
    return line


if __name__ == "__main__":
    main()
