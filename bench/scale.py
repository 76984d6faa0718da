"""Scale: time and peak memory of every stage of a run against the corpus size, on a corpus the benchmark writes.

    python -m bench.scale --quick                             # 200 and 1,000 clips, a few minutes
    python -m bench.scale --sizes 1000 10000                  # the sizes docs/results/LOG.md reports
    python -m bench.scale --sizes 100000 --precisions float16 --work-dir /big/disk   # 100,000 clips (~55 h of audio)

The corpus: short FLAC clips (1-3 s, 16 kHz, 16-bit) in the folder layout ``EMOTION/spkNNNN_IIIIIII.flac`` that
``load_corpus("folder", ..., speaker_regex=...)`` reads, speakers and labels drawn at random (one speaker per 100
clips), each clip a few harmonics at a pitch set by its label and speaker plus noise, so that a model can learn
something. It is written once per size by two processes into ``--work-dir`` and reused by later runs.

Each stage runs in its own process, so that its peak RSS is its own (``ru_maxrss`` of that child, from ``os.wait4``),
with the peak of its anonymous memory beside it (``RssAnon``, sampled every 20 ms: the memory-mapped Arrow caches a
stage reads count in RSS as page cache the kernel can drop; anonymous memory is what the process holds). A stage's
time is that of its own work, not of re-opening what the stages before it left (the corpus saved to disk, the caches):

- load: ``load_corpus`` (every file's header read);
- decode: ``prepare_audio`` into an empty cache (the waveform cache's size per hour of audio is measured here);
- split: ``speaker_split`` (10 % of the speakers for validation, 10 % for test);
- audit: ``audit_leakage`` of that split, every file hashed; then the audit of a second fold in the same process
  (``audit again``: every hash read back);
- feature cache: the recipe's input mode (``prepare_corpus``): a tiny wav2vec 2.0's frozen feature encoder run once
  per clip into its cache;
- FAST cache: ``encode_dataset`` of the same tiny model, every layer's mean states (``use_weighted_layer_sum``);
- train: ``python -m ser_hf.train RECIPE`` (its ``main``) on the tiny model, ``--steps`` steps, caches warm: the time
  to its first training step, the steps themselves, and the evaluation of validation and test it ends with;
- evaluate: the saved model's logits on the test split (``predict_logits``, raw audio) and their metrics.

Growth: the slope of log(time) against log(clips) between the sizes run (1 is linear, more is worse). With two
``--precisions``, the pipeline runs once per precision (``cache_precision``) and the caches' sizes, the test UA and the
share of identical test predictions are compared. ``--head-clips`` trains the tiny model's FAST head on float32 and
on float16 states of the same clips and compares them. ``--base-sizes`` adds the cache sizes per hour of a
wav2vec2-base geometry (random weights, 512 x 50 Hz frames, 13 x 768 states) on a few clips, with the rounding
error of float16 and bfloat16 storage of its values.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile

from bench.harness import REPO, add_threads_argument, machine_line, run_fields, set_threads

SAMPLING_RATE = 16000
EMOTION_PITCH = {"neutral": 110.0, "happy": 220.0, "sad": 95.0, "angry": 180.0}
CLIPS_PER_SPEAKER = 100
SPEAKER_REGEX = r"(?P<speaker>spk\d+)_"
CORPUS_VERSION = 1
#: Processes writing the corpus and decoding it (the machine's two cores).
DECODING_PROCESSES = 2
STAGES = ("load", "decode", "split", "audit", "feature_cache", "fast_cache", "train", "evaluate")
TINY_SSL = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    conv_dim=[16, 16, 16, 16],
    conv_stride=[5, 4, 4, 4],
    conv_kernel=[10, 8, 8, 8],
    conv_bias=False,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    classifier_proj_size=8,
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    layerdrop=0.0,
)
BASE_GEOMETRY = dict(
    conv_dim=[512] * 7,
    conv_stride=[5, 2, 2, 2, 2, 2, 2],
    conv_kernel=[10, 3, 3, 3, 3, 2, 2],
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    feat_extract_norm="group",
    do_stable_layer_norm=False,
    layerdrop=0.0,
)


# --- The corpus ---------------------------------------------------------------------------------------------------


def clip_plan(index: int, seed: int, speakers: int) -> tuple[str, int, float]:
    """(emotion, speaker, seconds) of clip ``index``: the same for every size, so a smaller corpus is a prefix."""
    rng = np.random.default_rng([seed, index])
    emotion = list(EMOTION_PITCH)[int(rng.integers(len(EMOTION_PITCH)))]
    return emotion, int(rng.integers(speakers)), float(rng.uniform(1.0, 3.0))


def write_clip(task: tuple[Path, int, int, int]) -> float:
    folder, index, seed, speakers = task
    emotion, speaker, seconds = clip_plan(index, seed, speakers)
    rng = np.random.default_rng([seed, index, 1])
    t = np.arange(int(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    pitch = EMOTION_PITCH[emotion] * (1 + 0.1 * ((speaker % 7) - 3) / 3) * (1 + 0.02 * rng.standard_normal())
    voice = sum(np.sin(2 * np.pi * k * pitch * t + rng.uniform(0, 6.3)) / k for k in (1, 2, 3))
    envelope = np.sin(np.pi * t / seconds) ** 0.5
    samples = 0.2 * envelope * voice + 3e-4 * rng.standard_normal(len(t))
    path = folder / emotion / f"spk{speaker:04d}_{index:07d}.flac"
    soundfile.write(path, samples.astype(np.float32), SAMPLING_RATE, subtype="PCM_16")
    return seconds


def generate_corpus(work_dir: Path, clips: int, seed: int, processes: int) -> tuple[Path, float]:
    """The corpus of ``clips`` clips in ``work_dir`` (written once, by ``processes`` processes); its folder and the
    seconds its writing took (0 when it was already there)."""
    folder = work_dir / f"corpus-{clips}"
    marker = folder / "corpus.json"
    plan = {"clips": clips, "seed": seed, "version": CORPUS_VERSION}
    if marker.is_file() and json.loads(marker.read_text()).get("plan") == plan:
        return folder, 0.0
    if folder.exists():
        shutil.rmtree(folder)  # a corpus this benchmark started writing and did not finish
    for emotion in EMOTION_PITCH:
        (folder / emotion).mkdir(parents=True)
    start = time.perf_counter()
    speakers = max(10, clips // CLIPS_PER_SPEAKER)
    tasks = ((folder, index, seed, speakers) for index in range(clips))
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        seconds = sum(pool.imap_unordered(write_clip, tasks, chunksize=256))
    elapsed = time.perf_counter() - start
    marker.write_text(json.dumps({"plan": plan, "audio_hours": seconds / 3600, "write_seconds": elapsed}) + "\n")
    return folder, elapsed


# --- One stage, in its own process --------------------------------------------------------------------------------


class AnonymousMemoryPeak:
    """The peak of this process's anonymous resident memory (``RssAnon``), sampled every 20 ms in a thread."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_anon())
            self._stop.wait(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _rss_anon())


def _rss_anon() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def recipe_path(state: Path) -> Path:
    return state / "recipe.yaml"


def write_recipe(state: Path, corpus: Path, precision: str, steps: int) -> Path:
    import yaml

    recipe = {
        "model_type": "wav2vec2",
        "model_config": TINY_SSL,
        "corpus": "folder",
        "data_dir": str(corpus),
        "corpus_options": {"speaker_regex": SPEAKER_REGEX},
        "split_protocol": "speaker",
        "test_size": 0.1,
        "validation_size": 0.1,
        "cache_precision": precision,
        "preprocessing_num_workers": DECODING_PROCESSES,
        "output_dir": str(state / "run"),
        "overwrite_output_dir": True,
        "max_steps": steps,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 32,
        "learning_rate": 1.0e-3,
        "eval_strategy": "no",
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "logging_steps": max(1, steps // 2),
        "use_cpu": True,
        "seed": 0,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "report_to": "none",
    }
    path = recipe_path(state)
    path.write_text(yaml.safe_dump(recipe))
    return path


def run_stage(stage: str, state: Path) -> dict:
    """Run ``stage`` on the state folder the parent prepared; returns its figures (``seconds``: its own work)."""
    import datasets
    from datasets import load_from_disk

    from ser_hf import audit_leakage, load_corpus, prepare_audio, speaker_split
    from ser_hf.data.dataset_info import column_values, get_ser_info
    from ser_hf.recipe.parser import parse_recipe

    datasets.disable_progress_bars()
    model_args, data_args, augmentation_args, training_args = parse_recipe([str(recipe_path(state))])
    corpus_dir = state / "corpus"

    def prepared():
        return prepare_audio(
            load_from_disk(str(corpus_dir)),
            num_proc=data_args.preprocessing_num_workers,
            precision=data_args.cache_precision,
        )

    def split(dataset):
        return speaker_split(dataset, test_size=data_args.test_size, validation_size=data_args.validation_size)

    if stage == "load":
        start = time.perf_counter()
        corpus = load_corpus("folder", data_args.data_dir[0], speaker_regex=SPEAKER_REGEX)
        seconds = time.perf_counter() - start
        corpus.save_to_disk(str(corpus_dir))
        return {"seconds": seconds, "clips": len(corpus), "audio_hours": sum(column_values(corpus, "duration")) / 3600}
    if stage == "decode":
        corpus = load_from_disk(str(corpus_dir))
        start = time.perf_counter()
        dataset = prepare_audio(
            corpus, num_proc=data_args.preprocessing_num_workers, precision=data_args.cache_precision
        )
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "cache_bytes": cache_bytes(get_ser_info(dataset)["prepared_cache"])}
    if stage == "split":
        dataset = prepared()
        start = time.perf_counter()
        splits = split(dataset)
        return {"seconds": time.perf_counter() - start, "clips": {name: len(s) for name, s in splits.items()}}
    if stage == "audit":
        splits = split(prepared())
        start = time.perf_counter()
        audit_leakage(splits)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        audit_leakage(splits)  # a second fold's audit in the same run: the files' hashes are read back
        return {"seconds": seconds, "audit_again_seconds": time.perf_counter() - start}
    if stage in ("feature_cache", "fast_cache"):
        from ser_hf.training.data_stage import load_dataset_from_args
        from ser_hf.training.model_stage import build_model, recipe_input_mode

        if stage == "feature_cache":
            # The corpus as the recipe's run loads it (its fingerprint is part of the cache key): train reads it back.
            dataset = load_dataset_from_args(data_args)
            mode = recipe_input_mode(model_args, data_args, augmentation_args)
            start = time.perf_counter()
            encoded = mode.prepare_corpus(dataset, training_args)
            seconds = time.perf_counter() - start
            cache = get_ser_info(encoded).get("feature_encoder") and newest_cache("feature-encoder-")
            return {"seconds": seconds, "cache_bytes": cache_bytes(cache) if cache else None}
        from ser_hf.inputs.encoder_states import encode_dataset

        dataset = prepared()
        model_args.freeze_base_model, model_args.use_weighted_layer_sum = True, True
        model, feature_extractor = build_model(model_args, augmentation_args, dataset.features["label"])
        start = time.perf_counter()
        encoded = encode_dataset(model, feature_extractor, dataset, batch_size=32, precision=data_args.cache_precision)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "cache_bytes": cache_bytes(get_ser_info(encoded)["encoder_cache"])}
    if stage == "train":
        return train_stage(state)
    if stage == "evaluate":
        return evaluate_stage(state, split(prepared()))
    raise ValueError(f"unknown stage {stage!r}")


def train_stage(state: Path) -> dict:
    """``ser_hf.train.main`` on the recipe, timed from its start to its first step, over its steps and over the
    predictions it ends with (``predict_split``); the caches are warm."""
    from transformers import TrainerCallback

    from ser_hf import train
    from ser_hf.training import train_stage

    marks: dict[str, float] = {}

    class StepTimes(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            marks.setdefault("train_begin", time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            marks.setdefault("first_step", time.perf_counter())

        def on_train_end(self, args, state, control, **kwargs):
            marks["train_end"] = time.perf_counter()

    build_trainer, predict_split = train_stage.build_trainer, train_stage.predict_split
    predicting = {"seconds": 0.0}

    def build_trainer_with_timer(*args, **kwargs):
        trainer = build_trainer(*args, **kwargs)
        trainer.add_callback(StepTimes())
        return trainer

    def timed_predict_split(*args, **kwargs):
        start = time.perf_counter()
        try:
            return predict_split(*args, **kwargs)
        finally:
            predicting["seconds"] += time.perf_counter() - start

    train_stage.build_trainer, train_stage.predict_split = build_trainer_with_timer, timed_predict_split
    start = time.perf_counter()
    (report,) = train.main([str(recipe_path(state))])
    total = time.perf_counter() - start
    steps = report.training.global_step
    return {
        "seconds": marks["train_end"] - marks["train_begin"],
        "first_step_seconds": marks["first_step"] - start,
        "first_step_after_train_begin": marks["first_step"] - marks["train_begin"],
        "steps": steps,
        "steps_per_second": steps / (marks["train_end"] - marks["train_begin"]),
        "predict_seconds": predicting["seconds"],
        "total_seconds": total,
        "test_ua": report.evaluation["test"].unweighted_accuracy,
    }


def evaluate_stage(state: Path, splits) -> dict:
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    import ser_hf.models  # noqa: F401  (registers ser-hf's model types)
    from ser_hf.data.dataset_info import column_values
    from ser_hf.evaluation.evaluate_model import predict_logits
    from ser_hf.evaluation.metrics import classification_metrics

    run = state / "run"
    model = AutoModelForAudioClassification.from_pretrained(run).eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(run)
    test = splits["test"]
    start = time.perf_counter()
    logits = predict_logits(model, feature_extractor, test, batch_size=32)
    metrics = classification_metrics(column_values(test, "label"), logits, test.features["label"].names)
    seconds = time.perf_counter() - start
    np.save(state / "test_predictions.npy", logits.argmax(-1))
    return {"seconds": seconds, "clips": len(test), "test_ua": metrics["unweighted_accuracy"]}


def newest_cache(prefix: str) -> str:
    from datasets import config

    return newest_cache_in(Path(config.HF_DATASETS_CACHE) / "ser_hf", prefix)


def cache_bytes(cache_file: str) -> int:
    """Bytes of a cache file, or of its shards (``NAME_00000_of_00002.arrow``) when several processes wrote it."""
    path = Path(cache_file)
    if path.is_file():
        return path.stat().st_size
    return sum(shard.stat().st_size for shard in path.parent.glob(f"{path.stem}_*_of_*.arrow"))


def child_main(stage: str, state: Path, result: Path, threads: int) -> None:
    set_threads(threads)
    memory = AnonymousMemoryPeak()
    figures = run_stage(stage, state)
    figures["peak_anon_bytes"] = memory.stop()
    result.write_text(json.dumps(figures) + "\n")


def run_in_process(stage: str, state: Path, cache: Path) -> dict:
    """One stage in this process (``--in-process``, the smoke test): its peak RSS is the process's so far."""
    from datasets import config

    config.HF_DATASETS_CACHE = cache
    memory = AnonymousMemoryPeak()
    build_trainer, predict_split = _training_hooks()
    try:
        figures = run_stage(stage, state)
    finally:
        _restore_training_hooks(build_trainer, predict_split)
    figures["peak_anon_bytes"] = memory.stop()
    figures["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return figures


def _training_hooks():
    from ser_hf.training import train_stage

    return train_stage.build_trainer, train_stage.predict_split


def _restore_training_hooks(build_trainer, predict_split) -> None:
    from ser_hf.training import train_stage

    train_stage.build_trainer, train_stage.predict_split = build_trainer, predict_split


def run_child(stage: str, state: Path, cache: Path, threads: int) -> dict:
    """Run one stage in a child process; its figures with its peak RSS (``ru_maxrss`` of that child alone)."""
    result = state / f"{stage}.json"
    result.unlink(missing_ok=True)
    env = dict(os.environ, HF_DATASETS_CACHE=str(cache), OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "bench.scale", "--stage", stage, "--state", str(state), "--threads", str(threads)]
    with open(state / f"{stage}.log", "w") as log:
        child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        tail = (state / f"{stage}.log").read_text()[-3000:]
        raise SystemExit(f"stage {stage} failed ({child.returncode}); the end of {state / f'{stage}.log'}:\n{tail}")
    figures = json.loads(result.read_text())
    figures["peak_rss_bytes"] = usage.ru_maxrss * 1024  # Linux reports kilobytes
    return figures


# --- The parent: sizes, precisions, table -------------------------------------------------------------------------


def pipeline(work_dir: Path, corpus: Path, clips: int, precision: str, args) -> dict:
    state = work_dir / "state" / f"{clips}-{precision}"
    cache = work_dir / "cache" / f"{clips}-{precision}"
    for folder in (state, cache):
        if folder.exists():
            shutil.rmtree(folder)  # this benchmark's own folders: every stage starts cold
        folder.mkdir(parents=True)
    write_recipe(state, corpus, precision, args.steps)
    figures = {}
    for stage in STAGES:
        if args.in_process:
            figures[stage] = run_in_process(stage, state, cache)
        else:
            figures[stage] = run_child(stage, state, cache, args.threads)
        print(
            f"  {clips:>7} clips {precision}: {stage:<13} {figures[stage]['seconds']:8.1f} s, "
            f"peak RSS {figures[stage]['peak_rss_bytes'] / 2**20:6.0f} MiB",
            flush=True,
        )
    hours = figures["load"]["audio_hours"]
    result = {
        "clips": clips,
        "precision": precision,
        "audio_hours": hours,
        "stages": figures,
        # What a first run pays before its first step: each stage cold, then the trainer's start and first step.
        "time_to_first_step_cold": sum(
            figures[s]["seconds"] for s in ("load", "decode", "split", "audit", "feature_cache")
        )
        + figures["train"]["first_step_after_train_begin"],
        "cache_mb_per_hour": {
            name: figures[stage]["cache_bytes"] / 1e6 / hours
            for name, stage in (("waveforms", "decode"), ("feature encoder", "feature_cache"), ("FAST", "fast_cache"))
            if figures[stage].get("cache_bytes")
        },
        "test_predictions": str(state / "test_predictions.npy"),
        "in_process": bool(args.in_process),
    }
    if not args.keep_caches:
        shutil.rmtree(cache)
    return result


def growth(results: list[dict], stage: str, key: str = "seconds") -> float | None:
    """Slope of log(time) against log(clips) (least squares): 1 is linear, more is worse."""
    points = [(r["clips"], r["stages"][stage][key]) for r in results if r["stages"][stage][key] > 0]
    if len({clips for clips, _ in points}) < 2:
        return None
    x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.polyfit(x, y, 1)[0])


def memory_growth(results: list[dict], stage: str, key: str) -> float | None:
    points = [(r["clips"], r["stages"][stage][key]) for r in results]
    if len(points) < 2:
        return None
    x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.polyfit(x, y, 1)[0])


def print_table(results: list[dict]) -> None:
    for precision in sorted({r["precision"] for r in results}):
        runs = sorted((r for r in results if r["precision"] == precision), key=lambda r: r["clips"])
        sizes = " | ".join(f"{r['clips']:,} clips ({r['audio_hours']:.1f} h)" for r in runs)
        where = "the process so far (--in-process)" if results[0]["in_process"] else "each stage's own process"
        print(f"\n### cache_precision {precision}: seconds / peak RSS MiB / peak anonymous MiB, of {where}\n")
        print(f"| stage | {sizes} | growth (time) | growth (anon. memory) |")
        print("|---|" + "---:|" * (len(runs) + 2))
        for stage in STAGES:
            cells = []
            for r in runs:
                s = r["stages"][stage]
                cells.append(
                    f"{s['seconds']:.1f} s / {s['peak_rss_bytes'] / 2**20:.0f} / {s['peak_anon_bytes'] / 2**20:.0f}"
                )
            slope, memory = growth(runs, stage), memory_growth(runs, stage, "peak_anon_bytes")
            print(
                f"| {stage} | " + " | ".join(cells) + f" | {'-' if slope is None else f'{slope:.2f}'} | "
                f"{'-' if memory is None else f'{memory:.2f}'} |"
            )
        extra = [
            ("audit again (2nd fold)", lambda r: f"{r['stages']['audit']['audit_again_seconds']:.2f} s"),
            ("time to first step, cold", lambda r: f"{r['time_to_first_step_cold']:.1f} s"),
            ("time to first step, caches warm", lambda r: f"{r['stages']['train']['first_step_seconds']:.1f} s"),
            ("training steps/s", lambda r: f"{r['stages']['train']['steps_per_second']:.2f}"),
            ("train: validation+test predictions", lambda r: f"{r['stages']['train']['predict_seconds']:.1f} s"),
        ]
        for name in ("waveforms", "feature encoder", "FAST"):
            extra.append(
                (f"{name} cache, MB per hour of audio", lambda r, n=name: f"{r['cache_mb_per_hour'].get(n, 0):.1f}")
            )
        extra.append(("test UA (evaluate)", lambda r: f"{100 * r['stages']['evaluate']['test_ua']:.1f} %"))
        for name, cell in extra:
            print(f"| {name} | " + " | ".join(cell(r) for r in runs) + " | | |")


def compare_precisions(results: list[dict]) -> list[dict]:
    rows = []
    for clips in sorted({r["clips"] for r in results}):
        by_precision = {r["precision"]: r for r in results if r["clips"] == clips}
        if {"float32", "float16"} <= set(by_precision):
            full, half = by_precision["float32"], by_precision["float16"]
            same = np.mean(np.load(full["test_predictions"]) == np.load(half["test_predictions"]))
            row = {
                "clips": clips,
                "cache_mb_per_hour": {p: by_precision[p]["cache_mb_per_hour"] for p in ("float32", "float16")},
                "test_ua": {p: by_precision[p]["stages"]["evaluate"]["test_ua"] for p in ("float32", "float16")},
                "same_test_predictions": float(same),
            }
            rows.append(row)
            print(
                f"\n{clips:,} clips, float16 against float32: test UA {100 * row['test_ua']['float16']:.2f} % against "
                f"{100 * row['test_ua']['float32']:.2f} %, {100 * same:.2f} % of test predictions identical; MB per "
                "hour "
                + ", ".join(
                    f"{name} {full['cache_mb_per_hour'][name]:.1f} -> {half['cache_mb_per_hour'].get(name, 0):.1f}"
                    for name in full["cache_mb_per_hour"]
                )
            )
    return rows


def base_geometry_sizes(corpus: Path, clips: int, work_dir: Path) -> dict:
    """Cache bytes per hour of audio of a wav2vec2-base geometry (random weights) on ``clips`` clips, float32 and
    float16, and the rounding error of float16 and bfloat16 storage of the values it caches."""
    import torch
    from transformers import Wav2Vec2Config

    from ser_hf import load_corpus, prepare_audio
    from ser_hf.inputs.encoder_states import encode_dataset
    from ser_hf.inputs.feature_encoder_cache import FEATURES_COLUMN, encode_feature_encoder_outputs
    from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor

    cache = work_dir / "cache" / "base-geometry"
    if cache.exists():
        shutil.rmtree(cache)
    dataset = load_corpus("folder", corpus, speaker_regex=SPEAKER_REGEX).select(range(clips))
    hours = sum(dataset["duration"]) / 3600
    dataset = prepare_audio(dataset, cache_dir=cache, num_proc=1)
    config = Wav2Vec2Config(**BASE_GEOMETRY, use_weighted_layer_sum=True)
    torch.manual_seed(0)
    model = build_ssl_classifier(config, dataset.features["label"], freeze_base_model=True).eval()
    feature_extractor = build_ssl_feature_extractor(config)
    sizes, errors = {}, {}
    for precision in ("float32", "float16"):
        frames = encode_feature_encoder_outputs(
            model, feature_extractor, dataset, cache_dir=cache, precision=precision, batch_size=4
        )
        states = encode_dataset(model, feature_extractor, dataset, cache_dir=cache, precision=precision)
        sizes[precision] = {
            "feature encoder": cache_bytes(newest_cache_in(cache, "feature-encoder-")) / 1e6 / hours,
            "FAST": cache_bytes(newest_cache_in(cache, "encoder-")) / 1e6 / hours,
        }
        if precision == "float32":
            values = {
                "feature encoder": np.concatenate(
                    [np.asarray(row, np.float32).ravel() for row in frames.with_format("numpy")[FEATURES_COLUMN]]
                ),
                "FAST": np.asarray(states.with_format("numpy")["encoder_states"], np.float32).ravel(),
            }
    for name, value in values.items():
        tensor = torch.from_numpy(value)
        errors[name] = {"max_abs_value": float(tensor.abs().max())}
        for dtype in (torch.float16, torch.bfloat16):
            rounded = tensor.to(dtype).float()
            # Relative to the value, or to float16's smallest normal number (2**-14) below it, where float16 is
            # evenly spaced (subnormal) and a relative error says nothing.
            relative = (rounded - tensor).abs() / tensor.abs().clamp_min(2.0**-14)
            errors[name][str(dtype).removeprefix("torch.")] = {
                "max_relative": float(relative.max()),
                "rms_relative": float(relative.pow(2).mean().sqrt()),
            }
    shutil.rmtree(cache)
    return {"clips": clips, "audio_hours": hours, "mb_per_hour": sizes, "rounding": errors}


def head_comparison(corpus: Path, clips: int, work_dir: Path, epochs: int, seed: int) -> dict:
    """The tiny model's FAST head trained on float32 and on float16 cached states of the same clips, the same seed and
    batches (plain Adam, ``epochs`` epochs, batch 32): test UA of both, the share of identical test predictions and
    the largest logit difference."""
    import torch
    from transformers import Wav2Vec2Config

    from ser_hf import load_corpus, prepare_audio, speaker_split
    from ser_hf.evaluation.metrics import classification_metrics
    from ser_hf.inputs.encoder_states import encode_dataset
    from ser_hf.inputs.fast_mode import ENCODER_STATES_COLUMN, CachedEncoderHead
    from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor

    cache = work_dir / "cache" / "head-comparison"
    if cache.exists():
        shutil.rmtree(cache)
    dataset = load_corpus("folder", corpus, speaker_regex=SPEAKER_REGEX)
    dataset = prepare_audio(dataset.select(range(min(clips, len(dataset)))), cache_dir=cache)
    splits = speaker_split(dataset, test_size=0.2, validation_size=0.0)
    config = Wav2Vec2Config(**TINY_SSL, use_weighted_layer_sum=True)
    torch.manual_seed(seed)
    model = build_ssl_classifier(config, dataset.features["label"], freeze_base_model=True)
    feature_extractor = build_ssl_feature_extractor(config)
    initial = {name: value.clone() for name, value in CachedEncoderHead(model).state_dict().items()}
    names = dataset.features["label"].names
    results = {}
    for precision in ("float32", "float16"):
        states = {
            name: encode_dataset(model, feature_extractor, split, cache_dir=cache, precision=precision, batch_size=32)
            for name, split in splits.items()
        }
        inputs = {
            name: torch.tensor(np.asarray(split.with_format("numpy")[ENCODER_STATES_COLUMN], np.float32))
            for name, split in states.items()
        }
        labels = {name: torch.tensor(split["label"]) for name, split in states.items()}
        head = CachedEncoderHead(model)
        head.load_state_dict(initial)
        optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for batch in torch.randperm(len(labels["train"]), generator=generator).split(32):
                loss = head(inputs["train"][batch], labels=labels["train"][batch]).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            logits = head(inputs["test"]).logits
        metrics = classification_metrics(labels["test"].tolist(), logits.numpy(), names)
        results[precision] = {"logits": logits, "ua": metrics["unweighted_accuracy"]}
    shutil.rmtree(cache)
    full, half = results["float32"]["logits"], results["float16"]["logits"]
    return {
        "clips": len(dataset),
        "test_clips": len(full),
        "epochs": epochs,
        "test_ua": {precision: result["ua"] for precision, result in results.items()},
        "same_test_predictions": float((full.argmax(-1) == half.argmax(-1)).float().mean()),
        "max_logit_difference": float((full - half).abs().max()),
        "logit_range": float(full.max() - full.min()),
    }


def newest_cache_in(folder: Path, prefix: str) -> str:
    files = sorted(folder.glob(f"{prefix}*.arrow"), key=lambda path: path.stat().st_mtime)
    return str(files[-1]) if files else ""


def main() -> None:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200 and 1,000 clips")
    parser.add_argument("--smoke", action="store_true", help="20 and 40 clips, 2 steps, in this process (tests)")
    parser.add_argument(
        "--in-process", action="store_true", help="run every stage in this process (peak RSS then not per stage)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="corpus sizes in clips (default 1,000 10,000 100,000)")
    parser.add_argument("--precisions", nargs="+", default=["float32", "float16"], choices=["float32", "float16"])
    parser.add_argument("--steps", type=int, default=20, help="training steps of the train stage")
    parser.add_argument("--work-dir", type=Path, default=REPO.parent / "scale_bench", help="corpora and caches")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-caches", action="store_true", help="keep each run's caches (disk!)")
    parser.add_argument("--base-sizes", type=int, default=0, help="clips for the wav2vec2-base cache sizes (0: skip)")
    parser.add_argument(
        "--head-clips", type=int, default=0, help="clips of the float16/float32 FAST head comparison (0: skip)"
    )
    parser.add_argument(
        "--extras-only", action="store_true", help="only --head-clips and --base-sizes, on the largest size's corpus"
    )
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    add_threads_argument(parser)
    args = parser.parse_args()
    if args.stage:
        child_main(args.stage, args.state, args.state / f"{args.stage}.json", args.threads or 1)
        return
    args.threads = args.threads or 1
    sizes = args.sizes or ([20, 40] if args.smoke else [200, 1000] if args.quick else [1000, 10000, 100000])
    if args.smoke:
        args.steps, args.in_process = 2, True
    print(f"# bench/scale.py: {machine_line()}")
    print(
        f"# sizes {sizes}, precisions {args.precisions}, {args.steps} training steps, {args.threads} torch "
        f"thread(s), {DECODING_PROCESSES} decoding processes"
    )
    args.work_dir.mkdir(parents=True, exist_ok=True)
    results, generation = [], {}
    for clips in sizes:
        corpus, seconds = generate_corpus(args.work_dir, clips, args.seed, processes=DECODING_PROCESSES)
        generation[clips] = seconds
        note = f"written in {seconds:.1f} s" if seconds else "already written"
        print(f"\n## {clips:,} clips in {corpus} ({note})", flush=True)
        for precision in [] if args.extras_only else args.precisions:
            results.append(pipeline(args.work_dir, corpus, clips, precision, args))
    if results:
        print_table(results)
    comparison = compare_precisions(results)
    base = None
    if args.base_sizes:
        base = base_geometry_sizes(corpus, args.base_sizes, args.work_dir)
        print(
            f"\nwav2vec2-base geometry, {base['clips']} clips: MB per hour of audio {json.dumps(base['mb_per_hour'])}"
        )
        print(f"rounding of the cached values: {json.dumps(base['rounding'])}")
    heads = None
    if args.head_clips:
        heads = head_comparison(corpus, args.head_clips, args.work_dir, epochs=5, seed=args.seed)
        print(f"\nFAST head trained on float32 and float16 states: {json.dumps(heads)}")
    if args.json:
        report = {
            **run_fields(),
            "generation_seconds": generation,
            "results": results,
            "precision_comparison": comparison,
            "base_geometry": base,
            "head_comparison": heads,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
