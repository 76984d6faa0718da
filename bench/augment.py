"""Waveform augmentation speed per clip: ser-hf's augmentation through audiomentations against the hand-written
implementation it replaced (``ser_hf/inputs/augment.py`` at commit ``HANDWRITTEN_COMMIT``, read with ``git show``).

    python -m bench.augment            # the 240 clips of the shipped RAVDESS sample, each perturbation alone and all
    python -m bench.augment --clips 40 # fewer clips

Each arm augments the same decoded clips (16 kHz) with the same recipe values, each perturbation alone at
probability 1 and then all five together; the figure is milliseconds per clip (the median of ``--repeats`` runs over
the clips, after one warm-up run that pays first-call costs such as numba compilation) and the ratio
audiomentations / hand-written (below 1: faster). Speed and reverberation are ser-hf's own code in both arms. Recorded
noise is a 5-second white-noise file at 16 kHz written to a temporary folder. Not run by the tests: it needs the
repository's git history.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from bench.harness import REPO, SAMPLE, machine_line
from ser_hf.data.decode import decode_waveform
from ser_hf.inputs.augment import WaveformAugmentation

#: The last commit whose ser_hf/inputs/augment.py drew every perturbation itself.
HANDWRITTEN_COMMIT = "ec84cc0"
SAMPLING_RATE = 16000


def handwritten_module():
    """The hand-written augment.py of HANDWRITTEN_COMMIT, imported as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{HANDWRITTEN_COMMIT}:ser_hf/inputs/augment.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    source = source.replace("from ..", "from ser_hf.")
    spec = importlib.util.spec_from_loader("handwritten_augment", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    exec(compile(source, f"{HANDWRITTEN_COMMIT}:ser_hf/inputs/augment.py", "exec"), module.__dict__)
    return module


def time_per_clip(augmentation, clips: list[np.ndarray], repeats: int) -> float:
    """Median milliseconds per clip over `repeats` runs through every clip, after a warm-up run."""
    runs = []
    for run in range(repeats + 1):
        start = time.perf_counter()
        for index, clip in enumerate(clips):
            augmentation(clip, np.random.default_rng([run, index]))
        if run:
            runs.append((time.perf_counter() - start) * 1000 / len(clips))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=240, help="clips of the shipped sample to augment")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    paths = sorted(SAMPLE.rglob("*.flac"))[: args.clips]
    clips = [decode_waveform(str(path), SAMPLING_RATE) for path in paths]
    handwritten = handwritten_module()
    with tempfile.TemporaryDirectory() as folder:
        noise_path = str(Path(folder) / "noise.wav")
        noise = 0.1 * np.random.default_rng(0).standard_normal(5 * SAMPLING_RATE)
        soundfile.write(noise_path, noise.astype(np.float32), SAMPLING_RATE)
        arms = {
            "white noise": {"noise_prob": 1.0},
            "recorded noise": {"noise_prob": 1.0, "noise_files": [noise_path]},
            "gain": {"gain_prob": 1.0},
            "pitch": {"pitch_prob": 1.0},
            "speed (ours in both)": {"speed_prob": 1.0},
            "reverb (ours in both)": {"reverb_prob": 1.0},
            "all five": {f"{name}_prob": 1.0 for name in ("noise", "gain", "speed", "pitch", "reverb")},
        }
        print(machine_line())
        mean_seconds = np.mean([len(clip) for clip in clips]) / SAMPLING_RATE
        print(f"{len(clips)} clips of {SAMPLE.relative_to(REPO)}, {mean_seconds:.2f} s on average")
        print(f"| perturbation | hand-written ({HANDWRITTEN_COMMIT}) ms/clip | audiomentations ms/clip | ratio |")
        print("|---|---|---|---|")
        for name, values in arms.items():
            old = time_per_clip(handwritten.WaveformAugmentation(**values), clips, args.repeats)
            new = time_per_clip(WaveformAugmentation(**values), clips, args.repeats)
            print(f"| {name} | {old:.2f} | {new:.2f} | {new / old:.2f} |")


if __name__ == "__main__":
    main()
