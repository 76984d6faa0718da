"""Reliability of the command line's own checks: a flag's value out of range (``nan``, ``inf``, ``1e400``, a hop
that would cut a recording into hundreds of thousands of windows, a port past 65535) and a model folder that does
not exist are one line naming the flag or the folder, answered before torch, transformers, datasets (or Gradio)
are imported: each case runs ``ser-hf`` in a fresh interpreter that reports, at exit, which of them it imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, write_audio

pytestmark = pytest.mark.reliability

#: Libraries that take seconds to import: an error of input must not wait for them.
HEAVY_MODULES = ("torch", "transformers", "datasets", "gradio")
#: ``ser-hf`` with an exit hook that prints which of HEAVY_MODULES were imported by the time it ended.
PROBE = f"""
import atexit, sys
atexit.register(lambda: print("imported:", *[m for m in {HEAVY_MODULES!r} if m in sys.modules], file=sys.stderr))
from ser_hf.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_ser_hf(*argv: str, cwd=REPO) -> tuple[int, list[str], list[str]]:
    """``ser-hf ARGV`` in a fresh interpreter: its exit status, its stderr lines without the probe's, and the heavy
    modules it had imported when it exited."""
    finished = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"},
    )
    lines = finished.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("imported:"), finished.stderr
    return finished.returncode, lines[:-1], lines[-1].split()[1:]


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["predict", "model", "clip.wav", "--window-seconds", "nan"],
            "ser-hf predict: error: argument --window-seconds: must be a positive, finite number of seconds, got "
            "'nan'",
        ),
        (
            ["predict", "model", "clip.wav", "--window-seconds", "inf"],
            "ser-hf predict: error: argument --window-seconds: must be a positive, finite number of seconds, got "
            "'inf'",
        ),
        (
            ["predict", "model", "clip.wav", "--window-seconds", "1e400"],
            "ser-hf predict: error: argument --window-seconds: must be a positive, finite number of seconds, got "
            "'1e400'",
        ),
        (
            ["predict", "model", "clip.wav", "--window-seconds", "2", "--hop-seconds", "1e-4"],
            "ser-hf predict: error: argument --hop-seconds: must be at least 0.01 s, got '1e-4': windows closer than "
            "one 10-ms feature frame hold the same audio, and a long recording would be cut into hundreds of "
            "thousands of them",
        ),
        (
            ["app", "model", "--port", "70000"],
            "ser-hf app: error: argument --port: must be a port number from 1 to 65535, got '70000'",
        ),
        (
            ["app", "model", "--timeline-seconds", "nan"],
            "ser-hf app: error: argument --timeline-seconds: must be 0 or more seconds (inf: never), got 'nan'",
        ),
    ],
    ids=["window nan", "window inf", "window 1e400", "hop 1e-4", "port 70000", "timeline nan"],
)
def test_a_flag_out_of_range_is_one_usage_line_naming_it_before_any_heavy_import(argv, line):
    """Were: 'cannot convert float NaN to integer' after loading the model, an OverflowError traceback, ~200,000
    windows, and --timeline-seconds nan accepted."""
    status, lines, imported = run_ser_hf(*argv)
    assert status == 2
    assert lines[-1] == line and not any("Traceback" in text for text in lines)
    assert imported == []


def test_a_missing_or_misspelt_model_folder_is_named_before_torch_is_imported(tmp_path):
    """predict imported torch, transformers and datasets (seconds of CPU) before saying "No such folder"."""
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    (tmp_path / "outputs" / "demo").mkdir(parents=True)
    for model, line in [
        (
            "outputs/dmeo",
            "No such folder: outputs/dmeo (outputs/ is a folder here, so it is read as a path, not as a "
            "Hub repository id). Did you mean outputs/demo?",
        ),
        ("./missing-model", "No such folder: ./missing-model (it is written as a path)."),
        (
            "sentence.wav",
            "sentence.wav is a file, not a model folder: pass the folder that holds the model's "
            "config.json and weights.",
        ),
    ]:
        status, lines, imported = run_ser_hf("predict", model, str(clip), "--no-progress", cwd=tmp_path)
        assert (status, lines, imported) == (2, [f"ser-hf: error: {line}"], [])
