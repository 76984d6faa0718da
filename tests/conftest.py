"""Shared fixtures: the clips the repository ships, audio written under real corpus file names, and ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parent.parent
RAVDESS_SAMPLE = REPO / "data" / "ravdess_sample"
RAVDESS_48K_SAMPLE = REPO / "data" / "ravdess_48k_sample"
SHARED_DATA = Path(os.environ.get("SER_HF_SHARED_DATA", REPO.parent / "shared" / "data"))


def write_audio(
    path: Path,
    seconds: float = 0.25,
    sampling_rate: int = 16000,
    channels: int = 1,
    subtype: str | None = None,
    seed: int = 0,
) -> Path:
    """Write a short tone-plus-noise clip (any format soundfile writes: wav, flac, ogg, mp3)."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * sampling_rate)
    t = np.arange(frames) / sampling_rate
    tone = 0.3 * np.sin(2 * np.pi * (150 + 20 * seed % 400) * t)
    samples = tone[:, None] + 0.01 * rng.standard_normal((frames, channels))
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples.astype(np.float32), sampling_rate, subtype=subtype)
    return path


@pytest.fixture
def audio_writer():
    return write_audio


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real RAVDESS audio, CREMA-D metadata); tests using it are skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present (it exists on CI and the developers' machines)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep datasets' and ser-hf's caches out of the user's home."""
    cache = tmp_path_factory.getbasetemp() / "hf_datasets_cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)


@pytest.fixture(scope="session")
def tiny_ravdess(tmp_path_factory) -> Path:
    """Eight real clips of each of four RAVDESS actors (links into the shipped sample)."""
    root = tmp_path_factory.mktemp("tiny_ravdess")
    for actor in ("01", "02", "03", "04"):
        folder = root / f"Actor_{actor}"
        folder.mkdir()
        for clip in sorted((RAVDESS_SAMPLE / f"Actor_{actor}").glob("*.flac"))[::4][:8]:
            (folder / clip.name).symlink_to(clip)
    return root
