"""ser-hf against transformers' own example script (``run_audio_classification.py``, vendored unchanged in
``bench/peer/``; its header names the commit), side by side on the same clips. Each run is its own process
(``bench/peer/measure.py`` adds the same measurement to every `Trainer` from outside); the script reads the clips as
an ``audiofolder``, offline.

**Training throughput** (default): both fine-tune the same randomly initialised wav2vec2 encoder (``--geometry``)
on a temporary RAVDESS-format folder (hard links, or WAV files cut or padded to ``--seconds``).

    python -m bench.peer --quick --threads 1        # shipped RAVDESS sample, tiny wav2vec2, a few steps: ~1 min
    python -m bench.peer                            # ../shared/data/ravdess_16k, wav2vec2-base geometry
    python -m bench.peer --device cuda --bf16 --batch-size 32 --steps 100 --workers 4 --seconds 3 \\
        --gpu-utilisation                           # on a GPU (BENCHMARKS.md, "GPU"; bench/gpu_figures.sh)

Shared: batch size, ``max_steps``, learning rate 3e-5, random 20-s crops, seed 42 (``--seeds``), precision, DataLoader
workers; no evaluation or checkpoint; all else each tool's default. ``--equal-inputs`` also makes both read the same
inputs and batches: the encoder's feature extractor returns an attention mask (the script asks for one anyway; ser-hf
takes the checkpoint's, and wav2vec2-base's has none, so its padded clips are normalised over their padding), and
ser-hf draws batches at random as the script does instead of grouping them by length; what is left between the arms
is each tool's random streams (head initialisation, batch order, dropout) and label order. Every run's steps are timed
from inside its `Trainer` (bench/step_timing.py: the wait between steps, the host and stream time of a step).

The tools alternate A B A B over ``--repeats`` (for each seed). clips/s is Trainer's ``train_samples_per_second`` (the
step loop); "after step 1" times from the end of the first step. The ratio is the median of the runs' ratios; both
must end at the same ``train_loss`` (within 5 %). Peak RSS per process; on CUDA the peak GPU memory over the step loop
and, with ``--gpu-utilisation``, ``nvidia-smi`` every 500 ms after step ``--warmup-steps`` (mean, and share of samples
at 85 % or more).

**Fine-tuning a Whisper encoder** (``--fold``): UA and clips/s on one speaker fold of RAVDESS actors 01-20 (fold seed
42, as docs/results/LOG.md's RAVDESS rows), the same ``--epochs``, batch size and encoder learning rate both ways.

    python -m bench.peer --fold 0 --epochs 1 --threads 1 \\
        --model-path openai/whisper-tiny.en=../shared/models/whisper-tiny.en-encoder \\
        --json docs/results/ravdess_kfold/peer_finetune-whisper_tiny_en.json
    python -m bench.peer --fold 0 --quick --threads 1   # the shipped sample and tiny.en (pretrained/), a few minutes

ser-hf trains ``--recipe`` (default ``recipes/ravdess_whisper_tiny_en_top2.yaml``) through ``ser-hf kfold``'s fold,
``num_train_epochs`` set to ``--epochs``. The script fine-tunes ``WhisperForAudioClassification`` from the same
checkpoint, every clip padded to the 30-s window, the whole encoder trained (it cannot freeze layers); its model is
scored on the fold's test clips through the same window. Printed: each arm's test UA (speaker-bootstrap 95 %
interval), WA, clips/s and minutes (Trainer's ``train_runtime``). One fold at few epochs compares the two ways at
equal epochs, not what either reaches.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from statistics import median
from typing import Optional

from bench.harness import (
    LOSS_TOLERANCE,
    REPO,
    SAMPLE,
    SHARED_RAVDESS,
    SSL_GEOMETRIES,
    UtilisationSampler,
    alternating,
    check_device,
    data_dir,
    gpu_figures,
    link_or_copy,
    peer_flags,
    run_measured,
    speed_arguments,
    speed_parser,
    split_speakers,
    utilisation_summary,
    write_fixed_length,
    write_json,
)
from bench.step_timing import describe as describe_steps
from ser_hf.cli.flags import model_paths as parse_model_paths
from ser_hf.cli.loco import add_model_path_argument
from ser_hf.experiments.kfold import kfold_values
from ser_hf.experiments.results import machine_description
from ser_hf.model_location import with_model_path
from ser_hf.recipe import Recipe
from ser_hf.recipe.yaml_io import read_recipe_file
from ser_hf.training.run_recipe import run_parsed_recipe

#: The real Whisper tiny.en encoder the repository ships (pretrained/README.md): ``--fold --quick``'s model.
EMBEDDED = REPO / "pretrained" / "whisper-tiny.en-encoder"
ARMS = ("serhf", "peer")
ARM_NAMES = {"serhf": "ser-hf", "peer": "example script"}
#: The settings both tools get besides the flags (no command has needed another value).
SEED, LEARNING_RATE, MAX_SECONDS = 42, 3.0e-5, 20.0


def parse_args(argv=None):
    parser = speed_parser(
        __doc__.split("\n\n")[0],
        quick="the shipped sample; throughput: tiny geometry, 6 steps of 4 clips; --fold: 4 folds, tiny.en",
        smoke="throughput: 2 steps of 2, 8 clips, once; --fold: batch 4, 0.05 epochs",
    )
    parser.add_argument("--data-dir", type=Path, help="RAVDESS folder (default: the sample or ../shared/data)")
    parser.add_argument("--batch-size", type=int, help="training batch (default: 4 quick, 8; --fold: the recipe's)")
    throughput = parser.add_argument_group("training throughput")
    throughput.add_argument("--geometry", choices=["tiny", "base"], help="encoder sizes (default: tiny quick, base)")
    throughput.add_argument("--bf16", action="store_true", help="bf16 mixed precision in both (default fp32)")
    throughput.add_argument("--steps", type=int, help="max_steps of each run (default: 6 quick, 20)")
    throughput.add_argument("--seconds", type=float, help="train on every clip cut or padded to this many seconds")
    throughput.add_argument("--clips", type=int, help="training clips (a random subset, the same for both)")
    throughput.add_argument("--workers", type=int, default=0, help="DataLoader workers in both")
    throughput.add_argument("--repeats", type=int, default=2, help="runs of each tool, alternating")
    throughput.add_argument("--warmup-steps", type=int, default=5, help="steps of each run before its steady state")
    throughput.add_argument("--gpu-utilisation", action="store_true", help="sample nvidia-smi (needs --device cuda)")
    throughput.add_argument(
        "--equal-inputs",
        action="store_true",
        help="both arms read the same inputs and batches: an attention mask from the feature extractor, batches "
        "drawn at random in ser-hf too (the loss comparison; default: each tool's own way)",
    )
    throughput.add_argument(
        "--seeds", type=int, nargs="+", default=[SEED], help="training seeds, each run by both arms (default 42)"
    )
    fold = parser.add_argument_group("fine-tuning a Whisper encoder on a speaker fold")
    fold.add_argument("--fold", type=int, help="the speaker fold (0-4, fold seed 42): this comparison")
    fold.add_argument("--recipe", type=Path, default=REPO / "recipes" / "ravdess_whisper_tiny_en_top2.yaml")
    fold.add_argument("--epochs", type=float, default=1.0, help="training epochs of both (default 1)")
    fold.add_argument("--output-dir", type=Path, help="where both train (default: a temporary folder, kept)")
    add_model_path_argument(fold)
    args = speed_arguments(parser, argv)
    if args.fold is not None:
        if args.smoke:
            args.batch_size, args.epochs = args.batch_size or 4, 0.05
        args.data_dir = args.data_dir or (SAMPLE if args.quick else SHARED_RAVDESS)
        return args
    if args.smoke:
        args.steps, args.batch_size, args.repeats = args.steps or 2, args.batch_size or 2, 1
        args.clips = args.clips or 8
    args.geometry = args.geometry or ("tiny" if args.quick else "base")
    args.batch_size = args.batch_size or (4 if args.quick else 8)
    args.steps = args.steps or (6 if args.quick else 20)
    check_device(args.device, args.gpu_utilisation, args.bf16)
    return args


def save_encoder(folder: Path, geometry: str, attention_mask: bool = False) -> None:
    """A randomly initialised bare wav2vec2 encoder and its feature extractor, as a checkpoint folder (the extractor
    returning an attention mask with `attention_mask`, as wav2vec2-large-lv60's does; wav2vec2-base's does not)."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(SEED)
    # layerdrop off: a dropped layer costs no compute, which would make two runs' step times differ by chance.
    Wav2Vec2Model(Wav2Vec2Config(**SSL_GEOMETRIES[geometry], layerdrop=0.0)).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=attention_mask).save_pretrained(folder)


def rows_by_split(source: Path, splits: Optional[dict[str, list[str]]] = None) -> tuple[dict, list[str]]:
    """The RAVDESS clips of `source` (``path``, ``label``, ``speaker_id``) of each split's speakers (by default
    :func:`~bench.harness.split_speakers`'s train and validation actors), and the label names."""
    from ser_hf import load_corpus

    corpus = load_corpus("ravdess", source).select_columns(["path", "label", "speaker_id"])  # nothing decoded
    splits = splits or dict(zip(("train", "validation"), split_speakers(set(corpus.unique("speaker_id")))))
    rows = {split: [row for row in corpus if row["speaker_id"] in speakers] for split, speakers in splits.items()}
    return rows, corpus.features["label"].names


def write_audiofolder(
    rows: dict[str, list[dict]], names: list[str], folder: Path, ravdess: Optional[Path] = None, seconds=None
) -> None:
    """Each split's clips (:func:`rows_by_split`) as an ``audiofolder`` for the example script (``SPLIT/LABEL/NAME``,
    hard links where the file system allows); with `ravdess`, first as a RAVDESS-format folder for ser-hf
    (``Actor_NN/NAME``: links, or WAV files cut or padded to `seconds`), which the audiofolder links to."""
    for split, split_rows in rows.items():
        for row in split_rows:
            path = Path(row["path"])
            name = path.name if seconds is None else path.stem + ".wav"
            if ravdess is not None:
                ours, path = path, ravdess / path.parent.name / name
                path.parent.mkdir(parents=True, exist_ok=True)
                if seconds is None:
                    link_or_copy(ours, path)
                else:
                    write_fixed_length(ours, path, seconds)
            target = folder / split / names[row["label"]] / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                link_or_copy(path, target)


def write_clips(source: Path, work: Path, args) -> tuple[Path, Path, list[str], list[str], int]:
    """The clips both tools read: a RAVDESS-format folder for ser-hf and an audiofolder for the example script.
    Returns (ravdess folder, audiofolder, train speakers, validation speakers, training clips)."""
    rows, names = rows_by_split(source)
    if args.clips is not None:
        rows = {split: _every_label_first(split_rows, args.clips) for split, split_rows in rows.items()}
    write_audiofolder(rows, names, work / "audiofolder", work / "ravdess", args.seconds)
    # The speakers left after --clips: ser-hf's split names only speakers its corpus folder holds.
    train, validation = (sorted({row["speaker_id"] for row in rows[split]}) for split in ("train", "validation"))
    return work / "ravdess", work / "audiofolder", train, validation, len(rows["train"])


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


def serhf_arguments(
    args, recipe: Path, model: Path, ravdess: Path, train, validation, output: Path, seed: int = SEED, **overrides
) -> list[str]:
    """``ser-hf train`` arguments: a recipe with the benchmark's settings and `overrides` (written once; an override
    of `None` leaves the key to ser-hf's default), the output folder and the seed apart."""
    settings = {
        "model_type": "wav2vec2",
        "model_name_or_path": str(model),
        "corpus": "ravdess",
        "data_dir": str(ravdess),
        "split_protocol": "speaker",
        "train_speakers": train,
        "validation_speakers": validation,
        "test_speakers": [],
        "max_duration_seconds": MAX_SECONDS,
        "seed": SEED,
        "max_steps": args.steps,
        "per_device_train_batch_size": args.batch_size,
        "learning_rate": LEARNING_RATE,
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
    if getattr(args, "equal_inputs", False):
        # The example script's batches (random, not grouped by length) and head (mean pooling, ser-hf's default for a
        # transformers checkpoint, named so that a change of that default shows here).
        settings.update(train_sampling_strategy="random", pooling_mode="mean")
    settings.update(overrides)
    settings = {key: value for key, value in settings.items() if value is not None}
    if not recipe.exists():
        recipe.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items()))
    return [str(recipe), "--output_dir", str(output), "--overwrite_output_dir", "true", "--seed", str(seed)]


def run_arm(arm: str, arguments: list[str], work: Path, run, args, sampler, **env: str) -> dict:
    """One run of ``arm`` in its own process (``measure_steps.py``: its steps timed too), with its clips/s."""
    env = {
        "HF_DATASETS_CACHE": str(work / "datasets_cache"),
        "SER_HF_BENCH_WARMUP_STEPS": str(args.warmup_steps),
        **env,
    }
    result = run_measured(arm, arguments, work / f"{arm}_{run}.json", args.threads, step_times=True, **env)
    steps, batch = result["steps"], result["batch_size"]
    if result.get("steps_after_first_seconds"):
        result["clips_per_second_after_step_1"] = (steps - 1) * batch / result["steps_after_first_seconds"]
    # Trainer's train_samples_per_second, from its train_runtime unrounded (it logs both rounded).
    result["clips_per_second"] = steps * batch / result["train_runtime"]
    if sampler is not None:
        result["gpu_utilisation"] = utilisation_summary([sampler.between(*result.get("steady_clock", (None, None)))])
    return result


def summarise(runs: dict[str, list[dict]]) -> dict:
    """The median ratio of the paired runs' clips/s, each arm's medians, and whether both end at the same
    ``train_loss``: each arm's median over its runs (with several seeds, also each seed's and their spread)."""
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
        seeds = sorted({r["seed"] for r in runs[arm] if "seed" in r})
        if len(seeds) > 1:
            by_seed = {seed: median([r["train_loss"] for r in runs[arm] if r.get("seed") == seed]) for seed in seeds}
            summary[arm]["train_loss_by_seed"] = by_seed
            summary[arm]["train_loss_seed_spread"] = (max(by_seed.values()) - min(by_seed.values())) / (
                sum(by_seed.values()) / len(by_seed)
            )
        if all("gpu_utilisation" in r for r in runs[arm]):
            summary[arm]["gpu_utilisation"] = {
                key: median([r["gpu_utilisation"][key] for r in runs[arm]])
                for key in ("mean_percent", "busy_fraction")
            }
    a, b = summary["serhf"]["train_loss"], summary["peer"]["train_loss"]
    summary["loss_difference"] = abs(a - b) / max(abs(b), 1e-12)
    summary["equal_loss"] = summary["loss_difference"] <= LOSS_TOLERANCE
    return summary


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.fold is not None:
        return fold_main(args)
    source = data_dir(args.quick, args.data_dir)
    with tempfile.TemporaryDirectory(prefix="ser_hf_peer_") as folder:
        work = Path(folder)
        model = work / "encoder"
        save_encoder(model, args.geometry, attention_mask=args.equal_inputs)
        ravdess, audiofolder, train, validation, clips = write_clips(source, work, args)
        geometry = "wav2vec2-base" if args.geometry == "base" else f"wav2vec2 ({args.geometry})"
        clip_kind = f"every clip cut or padded to {args.seconds:g} s" if args.seconds else "real clips"
        inputs = "equal inputs (attention mask, random batches in both)" if args.equal_inputs else "each tool's inputs"
        print(machine_description(args.device), flush=True)
        print(
            f"{geometry}, random weights, full fine-tuning (feature encoder frozen), {args.device}, "
            f"{'bf16' if args.bf16 else 'fp32'}; {clips} training clips of {source} ({clip_kind}), batch "
            f"{args.batch_size}, {args.steps} steps, {args.workers} DataLoader workers, {args.repeats} runs of each "
            f"per seed, seeds {' '.join(map(str, args.seeds))}; {inputs}",
            flush=True,
        )
        peer_settings = dict(
            max_length_seconds=MAX_SECONDS,
            max_steps=args.steps,
            per_device_train_batch_size=args.batch_size,
            learning_rate=LEARNING_RATE,
            dataloader_num_workers=args.workers,
            logging_steps=max(1, args.steps // 5),
            bf16=args.bf16,
            use_cpu=args.device == "cpu",
        )
        sampler = UtilisationSampler() if args.gpu_utilisation else None
        runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
        try:
            for seed, (run, arm) in ((seed, pair) for seed in args.seeds for pair in alternating(args.repeats, ARMS)):
                output = work / f"run_{arm}_{seed}_{run}"
                if arm == "serhf":
                    arguments = serhf_arguments(
                        args, work / "recipe.yaml", model, ravdess, train, validation, output, seed=seed
                    )
                else:
                    arguments = peer_flags(model, audiofolder, output, seed=seed, **peer_settings)
                runs[arm].append({"seed": seed, **run_arm(arm, arguments, work, f"{seed}_{run}", args, sampler)})
                print(run_line(arm, run, runs[arm][-1]), flush=True)
        finally:
            if sampler is not None:
                sampler.close()
    summary = summarise(runs)
    print(summary_line(summary), flush=True)
    write_json(args.json, {"runs": runs, "summary": summary}, args.device)
    return {"runs": runs, "summary": summary}


def run_line(arm: str, run: int, result: dict) -> str:
    seed = f" (seed {result['seed']})" if "seed" in result else ""
    line = (
        f"  {ARM_NAMES[arm]:>14} run {run + 1}{seed}: {result['clips_per_second']:6.2f} clips/s "
        f"({result['clips_per_second_after_step_1']:6.2f} after step 1), train_loss {result['train_loss']:.4f}, "
        f"peak RSS {result['peak_rss_bytes'] / 2**30:.2f} GiB"
    )
    line += gpu_figures(result.get("peak_gpu_memory_bytes"), result.get("gpu_utilisation"))
    line += f", whole process {result['process_seconds']:.0f} s"
    if "step_times" in result:
        line += "\n      " + describe_steps(result["step_times"].get("summary", {}))
    return line


def summary_line(summary: dict) -> str:
    a, b = summary["serhf"], summary["peer"]
    spreads = "".join(
        f"; {ARM_NAMES[arm]}'s seeds {summary[arm]['train_loss_seed_spread']:.1%} apart"
        for arm in ARMS
        if "train_loss_seed_spread" in summary[arm]
    )
    return (
        f"ser-hf {a['clips_per_second']:.2f} clips/s against the example script's {b['clips_per_second']:.2f}: "
        f"{summary['ratio']:.2f}x (median of the runs' ratios; {summary['ratio_after_step_1']:.2f}x after step 1); "
        f"train_loss {a['train_loss']:.4f} against {b['train_loss']:.4f} "
        f"({'same' if summary['equal_loss'] else 'NOT the same'} within {LOSS_TOLERANCE:.0%}, "
        f"{summary['loss_difference']:.1%} apart{spreads})"
    )


def fold_values(args, model_paths: dict[str, str], output: Path) -> dict:
    """ser-hf's recipe on the fold (``ser-hf kfold``'s speaker k-fold, fold seed 42, this fold alone), `--epochs`
    epochs and `--batch-size`."""
    values = with_model_path(read_recipe_file(args.recipe), model_paths)
    values.update(data_dir=str(args.data_dir), num_train_epochs=args.epochs, use_cpu=args.device == "cpu")
    values.update(report_to="none", disable_tqdm=True)
    if args.batch_size:
        values["per_device_train_batch_size"] = args.batch_size
    return {**kfold_values(values, 4 if args.quick else 5, 42, output), "folds": [args.fold]}


def peer_arm(args, model: str, audiofolder: Path, output: Path, batch: int, learning_rate: float) -> dict:
    """The example script's run (``bench/peer/measure.py``, its own process; the whole encoder trained: the script has
    no flag to freeze some layers); what it measured (read back where a previous run in the same `output` finished)."""
    flags = peer_flags(
        model,
        audiofolder,
        output,
        freeze_feature_encoder=False,
        seed=42,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=batch,
        learning_rate=learning_rate,
        logging_steps=5,
        use_cpu=args.device == "cpu",
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    report = output.parent / "peer_measure.json"
    if report.exists() and (output / "config.json").exists():
        print(f"the example script's run in {output} finished: read back", flush=True)
        return json.loads(report.read_text())
    return run_measured("peer", flags, report, args.threads)


def score_peer(model_dir: Path, feature_extractor_dir: str, clips: list[tuple[str, str, str]], device: str) -> dict:
    """The example script's saved model on the test clips through ``pipeline("audio-classification")`` and its own
    preprocessing (the 30-s window)."""
    import numpy as np
    from transformers import pipeline

    from ser_hf.data.decode import decode_waveform
    from ser_hf.evaluation.metrics import classification_metrics

    classifier = pipeline(
        "audio-classification", model=str(model_dir), feature_extractor=feature_extractor_dir, device=device
    )
    names = [classifier.model.config.id2label[index] for index in range(classifier.model.config.num_labels)]
    waves = [decode_waveform(path, classifier.feature_extractor.sampling_rate) for path, _, _ in clips]
    outputs = classifier(waves, batch_size=8, top_k=None)
    scores = np.log([[{s["label"]: s["score"] for s in output}[name] for name in names] for output in outputs])
    labels = [names.index(label) for _, label, _ in clips]
    return classification_metrics(labels, scores, names, speakers=[speaker for _, _, speaker in clips])


def fold_main(args) -> dict:
    """``--fold``: ser-hf's recipe on the fold against the example script, both scored on its test clips."""
    model_paths = parse_model_paths(args.model_paths, "--model-path")
    if args.quick:
        model_paths.setdefault(read_recipe_file(args.recipe)["model_name_or_path"], str(EMBEDDED))
    work = args.output_dir or Path(tempfile.mkdtemp(prefix="ser_hf_peer_fold_"))
    print(machine_description(), flush=True)
    values = fold_values(args, model_paths, work / "serhf")
    (serhf,) = [report.to_dict() for report in run_parsed_recipe(Recipe.from_values(values))]
    model, batch = values["model_name_or_path"], values["per_device_train_batch_size"]
    learning_rate = values["learning_rate"]  # the fine-tuned layers'; the recipe's head has its own
    # The fold's clips (the test clips as validation/, which the script loads but never scores), as ser-hf split them.
    speakers = serhf["split"]["speakers"]
    rows, names = rows_by_split(args.data_dir, {"train": speakers["train"], "validation": speakers["test"]})
    write_audiofolder(rows, names, work / "audiofolder")
    clips = {split: [(row["path"], names[row["label"]], row["speaker_id"]) for row in r] for split, r in rows.items()}
    print(
        f"fold {args.fold} (fold seed 42): {len(clips['train'])} training clips, {len(clips['validation'])} test "
        f"clips of {', '.join(serhf['split']['speakers']['test'])}; {args.epochs:g} epochs, batch {batch}, encoder "
        f"learning rate {learning_rate:g}, {model}",
        flush=True,
    )
    peer = peer_arm(args, model, work / "audiofolder", work / "peer" / "model", batch, learning_rate)
    peer_test = score_peer(work / "peer" / "model", model, clips["validation"], args.device)
    from ser_hf.evaluation.bootstrap import format_interval, pooled_intervals

    arms = {}
    for name, test, training in (
        ("ser-hf", serhf["evaluation"]["test"], serhf["training"]),
        ("example script", peer_test, peer),
    ):
        arms[name] = {
            "unweighted_accuracy": test["unweighted_accuracy"],
            "accuracy": test["accuracy"],
            "confidence_intervals": pooled_intervals([test]),
            "clips_per_second": training["train_samples_per_second"],
            "minutes": training["train_runtime"] / 60,
        }
        print(
            f"  {name:>14}: UA {100 * test['unweighted_accuracy']:.1f} "
            f"{format_interval(arms[name]['confidence_intervals'], 'unweighted_accuracy')}, WA "
            f"{100 * test['accuracy']:.1f}; training {arms[name]['clips_per_second']:.2f} clips/s, "
            f"{arms[name]['minutes']:.1f} min",
            flush=True,
        )
    ratio = arms["ser-hf"]["clips_per_second"] / arms["example script"]["clips_per_second"]
    print(f"ser-hf trains {ratio:.1f}x the example script's clips/s at {args.epochs:g} epochs", flush=True)
    test_speakers = serhf["split"]["speakers"]["test"]
    summary = {"fold": args.fold, "test_speakers": test_speakers, "epochs": args.epochs, "ratio": ratio, "arms": arms}
    write_json(args.json, summary, args.device)
    print(f"runs kept in {work}")
    return summary


if __name__ == "__main__":
    main()
