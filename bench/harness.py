"""What the training and inference benchmarks share: the machine they ran on, the RAVDESS data they read, its
speaker-independent split, epoch timing, validation metrics and medians.

Quick modes read the clips the repository ships (``data/ravdess_sample``: actors 01-08, 30 clips each); full modes
read ``../shared/data/ravdess_16k`` (actors 01-20, 60 clips each).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
import transformers
from datasets import Dataset, DatasetDict
from transformers import TrainerCallback

from ser_hf import load_corpus, prepare_audio, speaker_split
from ser_hf.evaluation.metrics import classification_metrics
from ser_hf.inputs.base import model_inputs
from ser_hf.inputs.collators import AudioClassificationCollator
from ser_hf.inputs.raw_audio import RawAudioMode

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


def variant_name(recipe: Path, overrides: Mapping[str, Any]) -> str:
    """A recipe's name in result files and run folders: its file name, and a digest of its overrides where there are
    any, so that a variant never reads back (or is refused by) the plain recipe's runs."""
    if not overrides:
        return recipe.stem
    return f"{recipe.stem}-{hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]}"


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


def machine_line(device: str = "cpu") -> str:
    """Cores, CPU or GPU, library versions, date and the load average (other work on a shared machine)."""
    processor = _cpu_model()
    where = f"{os.cpu_count()} cores ({processor})"
    if device.startswith("cuda") and torch.cuda.is_available():
        where += f", GPU {torch.cuda.get_device_name()}"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{platform.node()}: {where}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}, {time.strftime('%Y-%m-%d %H:%M')}, load average {load}"
    )


def commit() -> str:
    """The commit the benchmark ran from (``git rev-parse HEAD`` in the repository), "unknown" outside a checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def run_fields(device: str = "cpu", command: Optional[str] = None) -> dict:
    """What every result file under docs/results records of its run, first: the command (``sys.argv`` unless given),
    the date, the commit and the machine (docs/results/make_benchmarks.py reads them into BENCHMARKS.md)."""
    return {
        "command": " ".join(sys.argv) if command is None else command,
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit(),
        "machine": machine_line(device),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def data_dir(quick: bool, override: Optional[Path] = None) -> Path:
    """The RAVDESS folder a benchmark reads: ``--data-dir``, the shipped sample (quick), or the shared corpus."""
    if override is not None:
        return override
    if quick:
        return SAMPLE
    if not SHARED_RAVDESS.is_dir():
        raise SystemExit(f"{SHARED_RAVDESS} is missing: run with --quick (the shipped sample) or --data-dir DIR.")
    return SHARED_RAVDESS


def ravdess_splits(folder: Path, *, prepared: bool, num_proc: Optional[int] = None) -> DatasetDict:
    """Train and validation splits by actor (the sample's 01-06 / 07-08, or 01-16 / 17-20 of the full corpus).

    ``prepared=True`` adds the ``waveform`` column (decoded once into ser-hf's Arrow cache); ``False`` keeps only the
    ``audio`` column, which ``datasets`` decodes again on every access, as notebook recipes read it.
    """
    corpus = load_corpus("ravdess", folder)
    if prepared:
        corpus = prepare_audio(corpus, num_proc=num_proc)
    speakers = set(corpus.unique("speaker_id"))
    train, validation = QUICK_SPEAKERS if not speakers - set(QUICK_SPEAKERS[0] + QUICK_SPEAKERS[1]) else FULL_SPEAKERS
    train = [s for s in train if s in speakers]
    validation = [s for s in validation if s in speakers]
    return speaker_split(corpus, train_speakers=train, validation_speakers=validation, test_speakers=[])


def subset(dataset: Dataset, clips: Optional[int], seed: int = 0) -> Dataset:
    """``clips`` rows drawn at random (the same rows for every arm of a benchmark), or all of them."""
    if clips is None or clips >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(clips))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


class EpochTimer(TrainerCallback):
    """Wall-clock seconds of every epoch (data loading, forward, backward and optimizer steps)."""

    def __init__(self):
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)


@torch.no_grad()
def validation_metrics(model, feature_extractor, validation, device: str) -> dict:
    """UA and WA on whole validation clips, computed the same way for both loops' models."""
    model.eval()
    collator = AudioClassificationCollator(feature_extractor)
    # Encoders fed no attention mask see padding: they are evaluated clip by clip, as pipeline() runs them.
    batch_size = 16 if feature_extractor.return_attention_mask else 1
    validation = model_inputs(validation, RawAudioMode.columns)
    rows = [validation[i] for i in range(len(validation))]
    logits = []
    for start in range(0, len(rows), batch_size):
        batch = collator(rows[start : start + batch_size])
        batch.pop("labels")
        logits.append(model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy())
    metrics = classification_metrics(
        [row["label"] for row in rows], np.concatenate(logits), validation.features["label"].names
    )
    return {"ua": metrics["unweighted_accuracy"], "wa": metrics["accuracy"]}
