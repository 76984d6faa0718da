"""What the benchmarks share: the speed comparisons' flags (``--quick``, ``--smoke``, ``--device``, ``--json``,
``--threads``), A B A B alternation, the result file, the accuracy drivers' averages over corpora, the RAVDESS data
they read and its speaker split, epoch timing, GPU sampling, and the runs of transformers' example script.

Quick modes read the clips the repository ships (``data/ravdess_sample``: actors 01-08, 30 clips each); full modes
read ``../shared/data/ravdess_16k`` (actors 01-20, 60 clips each).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import TrainerCallback

from ser_hf import load_corpus, prepare_audio, speaker_split
from ser_hf.experiments.results import run_fields

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "ravdess_sample"
SHARED_RAVDESS = REPO.parent / "shared" / "data" / "ravdess_16k"
#: The real corpora in ../shared/data, by corpus name.
SHARED_CORPORA = {
    "ravdess": SHARED_RAVDESS,
    "tess": SHARED_RAVDESS.parent / "tess",
    "nemo": SHARED_RAVDESS.parent / "nemo",
}
#: Corpora of ../shared/data the benchmarks put in play only where named (a recipe's corpus list, ``--corpora``):
#: their labels are not part of the three-corpus protocols' shared ones.
EXTRA_CORPORA = {"banglaser": SHARED_RAVDESS.parent / "banglaser"}

#: Speaker-independent splits: (train actors, validation actors) of the sample and of the 20-actor corpus.
QUICK_SPEAKERS = ([f"{a:02d}" for a in range(1, 7)], ["07", "08"])
FULL_SPEAKERS = ([f"{a:02d}" for a in range(1, 17)], ["17", "18", "19", "20"])


#: wav2vec2 geometries: base, its strides and kernels at a third of its width and depth (quick mode on 2 CPU
#: cores), and transformers' test geometry (smoke runs).
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
#: nvidia-smi's sampling, beside the runs (--gpu-utilisation).
NVIDIA_SMI = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "500"]
#: Utilisation that counts as a busy GPU (issue 16's target).
BUSY_PERCENT = 85
#: Largest relative difference of two compared ways' final training losses that counts as equal (a faster way that
#: learns something else is no win).
LOSS_TOLERANCE = 0.05


def means_over_corpora(figures: Iterable[tuple[str, Any, float]]) -> tuple[dict[str, float], dict[Any, float]]:
    """The accuracy drivers' averages of ``(corpus, repeat, figure)`` triples, a repeat being a training seed or a draw
    (several figures of one corpus and repeat, such as TESS's two directions, are averaged first): each corpus' mean
    over its repeats (corpora in the order they come), and the mean over the corpora of each repeat that has them all
    (by repeat, sorted)."""
    cells: dict[tuple[str, Any], list[float]] = {}
    for corpus, repeat, figure in figures:
        cells.setdefault((corpus, repeat), []).append(figure)
    means = {key: float(np.mean(values)) for key, values in cells.items()}
    corpora = list(dict.fromkeys(corpus for corpus, _ in means))
    by_corpus = {corpus: float(np.mean([v for (c, _), v in means.items() if c == corpus])) for corpus in corpora}
    by_repeat = {
        repeat: float(np.mean([means[corpus, repeat] for corpus in corpora]))
        for repeat in sorted({repeat for _, repeat in means})
        if all((corpus, repeat) in means for corpus in corpora)
    }
    return by_corpus, by_repeat


def add_threads_argument(parser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads (default: torch's, one per core). On a machine other work keeps "
        "busy, use 1: two OpenMP threads then wait on each other at every op, which made steps "
        "4-5x slower and blind to how much they compute in our runs",
    )


def set_threads(threads: Optional[int]) -> None:
    if threads:
        torch.set_num_threads(threads)


def speed_parser(doc: str, quick: str, smoke: str, device: bool = True) -> argparse.ArgumentParser:
    """The flags the speed comparisons share: ``--quick`` and ``--smoke`` (the test suite's run) with what each means
    to the script, ``--device`` (default: the GPU where there is one), ``--json`` and ``--threads``."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--smoke", action="store_true", help=f"the test suite's run: {smoke}")
    if device:
        parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_threads_argument(parser)
    return parser


def speed_arguments(parser: argparse.ArgumentParser, argv=None, **smoke: Any) -> argparse.Namespace:
    """The parsed flags, torch's threads set; ``--smoke`` implies ``--quick`` and sets `smoke`'s values on the flags
    the command line left at their defaults."""
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.smoke:
        args.quick = True
        for key, value in smoke.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    return args


def write_json(path: Optional[Path], document: Mapping[str, Any], device: str = "cpu", command=None) -> None:
    """`document` after the run's fields (:func:`~ser_hf.experiments.results.run_fields`: the command, date, commit
    and machine, which docs/results/make_benchmarks.py reads) as JSON at `path`, if one is given; the commit is
    ``BENCH_COMMIT``'s where that is set (:func:`result_fields`)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**result_fields(device, command), **document}, indent=2, default=str) + "\n")


def result_fields(device: str = "cpu", command=None) -> dict[str, str]:
    """:func:`~ser_hf.experiments.results.run_fields`, the commit from ``BENCH_COMMIT`` where the caller sets it: the
    device tool's copy of the working tree reports a commit of its own (on 2026-11-30 an older one of main), not the
    code that runs."""
    fields = run_fields(command, device)
    if os.environ.get("BENCH_COMMIT"):
        fields["commit"] = os.environ["BENCH_COMMIT"]
    return fields


def alternating(repeats: int, arms: Sequence[str], mirrored: bool = False):
    """``(run, arm)`` over `repeats` rounds of every arm, A B A B (``mirrored``: A B B A), so that other work on a
    shared machine weighs on every arm alike, and run k of one arm has run k of the other beside it."""
    for run in range(repeats):
        yield from ((run, arm) for arm in (arms[::-1] if mirrored and run % 2 else arms))


def check_device(device: str, gpu_utilisation: bool = False, bf16: bool = False) -> None:
    """Stop before any work when the flags ask for what this machine cannot do, saying why."""
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            f"--device {device}: torch sees no CUDA GPU here (torch.cuda.is_available() is false; torch "
            f"{torch.__version__}). Run on a machine with a GPU, or leave --device out to measure on CPU."
        )
    if gpu_utilisation and torch.device(device).type != "cuda":
        raise SystemExit("--gpu-utilisation samples nvidia-smi: it needs --device cuda.")
    if bf16 and torch.device(device).type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SystemExit(f"--bf16: {torch.cuda.get_device_name()} does not support bf16.")


def data_dir(quick: bool, override: Optional[Path] = None) -> Path:
    """The RAVDESS folder a benchmark reads: ``--data-dir``, the shipped sample (quick), or the shared corpus."""
    if override is not None:
        return override
    if quick:
        return SAMPLE
    if not SHARED_RAVDESS.is_dir():
        raise SystemExit(f"{SHARED_RAVDESS} is missing: run with --quick (the shipped sample) or --data-dir DIR.")
    return SHARED_RAVDESS


def split_speakers(speakers: set[str]) -> tuple[list[str], list[str]]:
    """(train, validation) actors among `speakers`: the sample's 01-06 / 07-08, or 01-16 / 17-20 of the full corpus."""
    train, validation = QUICK_SPEAKERS if not speakers - set(QUICK_SPEAKERS[0] + QUICK_SPEAKERS[1]) else FULL_SPEAKERS
    return [s for s in train if s in speakers], [s for s in validation if s in speakers]


def ravdess_splits(folder: Path, *, prepared: bool, num_proc: Optional[int] = None) -> DatasetDict:
    """Train and validation splits by actor (the sample's 01-06 / 07-08, or 01-16 / 17-20 of the full corpus).

    ``prepared=True`` adds the ``waveform`` column (decoded once into ser-hf's Arrow cache); ``False`` keeps only the
    ``audio`` column, which ``datasets`` decodes again on every access, as notebook recipes read it.
    """
    corpus = load_corpus("ravdess", folder)
    if prepared:
        corpus = prepare_audio(corpus, num_proc=num_proc)
    train, validation = split_speakers(set(corpus.unique("speaker_id")))
    return speaker_split(corpus, train_speakers=train, validation_speakers=validation, test_speakers=[])


def subset(dataset: Dataset, clips: Optional[int], seed: int = 0) -> Dataset:
    """``clips`` rows drawn at random (the same rows for every arm of a benchmark), or all of them."""
    if clips is None or clips >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(clips))


class EpochTimer(TrainerCallback):
    """Wall-clock seconds of every epoch (data loading, forward, backward and optimizer steps)."""

    def __init__(self):
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)


def link_or_copy(source: Path, target: Path) -> None:
    """`target` as a hard link to `source` where the file system allows, a copy elsewhere."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def run_measured(
    arm: str, arguments: list[str], report: Path, threads: Optional[int], step_times: bool = False, **env: str
) -> dict:
    """One arm of ``bench/peer/measure.py`` (``serhf`` or ``peer``) in its own process, offline, its log beside
    `report`; what it measured. With `step_times`, through ``bench/peer/measure_steps.py``: each step's timings
    (bench/step_timing.py) are read back into the result as ``step_times``. A failed run stops the benchmark with the
    end of its log."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # carried wheels stay reachable
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **env}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), SER_HF_BENCH_THREADS=str(threads))
    steps = report.with_suffix(".steps.json")
    if step_times:
        env["SER_HF_BENCH_STEP_TIMES"] = str(steps)
    runner = "measure_steps.py" if step_times else "measure.py"
    log = report.with_suffix(".log")
    with open(log, "w") as out:
        command = [sys.executable, str(REPO / "bench" / "peer" / runner), str(report), arm, *arguments]
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0 or not report.exists():
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        raise SystemExit(f"{arm} run failed (exit {done.returncode}); end of {log}:\n{tail}")
    result = json.loads(report.read_text())
    if step_times and steps.exists():
        result["step_times"] = json.loads(steps.read_text())
    return result


def peer_flags(model, audiofolder: Path, output: Path, **settings: Any) -> list[str]:
    """transformers' example script's flags for a training run on `audiofolder` (``--dataset_name``, offline) with no
    evaluation or checkpoint, ``--remove_unused_columns False`` (which it needs), and each of `settings` as
    ``--key value``."""
    flags = ["--model_name_or_path", str(model), "--dataset_name", str(audiofolder), "--output_dir", str(output)]
    settings = dict(remove_unused_columns=False, eval_strategy="no", save_strategy="no", report_to="none", **settings)
    for key, value in {"do_train": True, "disable_tqdm": True, **settings}.items():
        flags += [f"--{key}", str(value)]
    return flags


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


def utilisation_summary(runs: list[list[float]]) -> dict:
    samples = [value for run in runs for value in run]
    if not samples:
        return {"samples": 0, "mean_percent": float("nan"), "busy_fraction": float("nan")}
    return {
        "samples": len(samples),
        "mean_percent": sum(samples) / len(samples),
        "busy_fraction": sum(value >= BUSY_PERCENT for value in samples) / len(samples),
    }


def gpu_figures(peak_bytes: Optional[float], utilisation: Optional[Mapping[str, float]]) -> str:
    """The GPU part of a printed line: peak memory and nvidia-smi's utilisation (:func:`utilisation_summary`), where
    measured."""
    line = "" if peak_bytes is None else f", peak GPU memory {peak_bytes / 2**30:.2f} GiB"
    if utilisation:
        busy = utilisation["busy_fraction"]
        line += f", GPU {utilisation['mean_percent']:.0f} % ({busy:.0%} of samples at {BUSY_PERCENT} % or more)"
    return line


def write_fixed_length(source: Path, target: Path, seconds: float) -> None:
    """The clip `source` cut or zero-padded to `seconds`, written to `target` (its format from its suffix)."""
    import soundfile

    audio, rate = soundfile.read(source, dtype="float32", always_2d=True)
    samples = round(seconds * rate)
    target.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(target, np.pad(audio[:samples], ((0, max(samples - len(audio), 0)), (0, 0))), rate)


def fixed_length_copy(folder: Path, seconds: float, destination: Path) -> Path:
    """Every RAVDESS clip of ``folder`` cut or zero-padded to ``seconds``, written under its own file name, so that
    the benchmarks' arms read clips of one length the way they read the real ones."""
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".wav", ".flac")):
        write_fixed_length(path, destination / path.relative_to(folder), seconds)
    return destination
