"""Shared fixtures: the clips the repository ships, audio written under real corpus file names, ../shared/data, and
tiny runs trained on the shipped clips."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

REPO = Path(__file__).resolve().parent.parent
RAVDESS_SAMPLE = REPO / "data" / "ravdess_sample"
RAVDESS_48K_SAMPLE = REPO / "data" / "ravdess_48k_sample"
SHARED_DATA = Path(os.environ.get("SER_HF_SHARED_DATA", REPO.parent / "shared" / "data"))


def load_bench(name: str = "accuracy"):
    """The benchmark ``bench/<name>.py`` as the module ``bench.<name>`` (the repository root is on the path: the tests
    run from it)."""
    return importlib.import_module(f"bench.{name}")


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


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep datasets' and ser-hf's caches out of the user's home, from the session's start: module- and
    session-scoped fixtures (the models trained once per file) run before any function-scoped fixture, and wrote their
    encodings and decoded clips into ``~/.cache/huggingface/datasets/ser_hf`` when this was function-scoped."""
    import datasets.config

    cache = tmp_path_factory.getbasetemp() / "hf_datasets_cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_DATASETS_CACHE", str(cache))
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        yield cache


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


# --- Tiny trained runs, shared by the card, Hub, evaluation and prediction tests -----------------------------------

# CREMA-D names for real RAVDESS clips: (statement, repetition) -> sentence, intensity -> level.
CREMAD_EMOTIONS = {"01": "NEU", "03": "HAP", "04": "SAD", "05": "ANG", "06": "FEA", "07": "DIS"}
CREMAD_SENTENCES = {("01", "01"): "IEO", ("01", "02"): "TIE", ("02", "01"): "IOM", ("02", "02"): "IWW"}


@pytest.fixture(scope="module")
def cremad_clips(tmp_path_factory) -> Path:
    """A CREMA-D corpus built from real clips: RAVDESS actors 05-08 under CREMA-D's file names (actors 1001-1004,
    its six emotions, so neither calm nor surprised)."""
    root = tmp_path_factory.mktemp("cremad") / "AudioWAV"
    root.mkdir()
    for number, actor in enumerate(("05", "06", "07", "08"), start=1001):
        for clip in sorted((RAVDESS_SAMPLE / f"Actor_{actor}").glob("*.flac")):
            _, _, emotion, intensity, statement, repetition, _ = clip.stem.split("-")
            if emotion not in CREMAD_EMOTIONS or (statement, repetition) not in CREMAD_SENTENCES:
                continue
            level = "XX" if emotion == "01" else {"01": "LO", "02": "HI"}[intensity]
            name = f"{number}_{CREMAD_SENTENCES[statement, repetition]}_{CREMAD_EMOTIONS[emotion]}_{level}.flac"
            if not (root / name).exists() and len(list(root.glob(f"{number}_*_{CREMAD_EMOTIONS[emotion]}_*"))) < 2:
                (root / name).symlink_to(clip)
    return root


def write_cnn_recipe(path: Path, **values) -> Path:
    """A recipe training a tiny log-mel CNN on RAVDESS actors 01-02, validating on 03 and testing on 04 (4 steps);
    ``values`` override its keys."""
    recipe = {
        "model_type": "cnn2d",
        "model_config": {"conv_channels": [4, 8]},
        "corpus": ["ravdess"],
        "split_protocol": "speaker",
        "max_duration_seconds": 1.0,
        "train_speakers": ["01", "02"],
        "validation_speakers": ["03"],
        "test_speakers": ["04"],
        "output_dir": str(path.parent / "run"),
        "max_steps": 4,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "learning_rate": 1.0e-2,
        "logging_steps": 1,
        "eval_strategy": "steps",
        "eval_steps": 2,
        "save_steps": 2,
        "save_strategy": "steps",
        "use_cpu": True,
        "seed": 7,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "gain_prob": 0.5,
        "num_time_masks": 1,
    }
    recipe.update(values)
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory, tiny_ravdess) -> Path:
    """A tiny log-mel CNN trained on the RAVDESS clips (speakers 01-02 train, 03 validate, 04 test)."""
    from ser_hf.train import main as train_main

    folder = tmp_path_factory.mktemp("cnn_run")
    recipe = write_cnn_recipe(folder / "recipe_cnn.yaml", data_dir=[str(tiny_ravdess)])
    train_main([str(recipe), "--learning_rate", "2.0e-2"])
    return folder / "run"


@pytest.fixture(scope="module")
def cremad_run(tmp_path_factory, cremad_clips) -> Path:
    """A tiny log-mel CNN trained on the CREMA-D clips (actors 1001-1002 train, 1003 validate, 1004 test)."""
    from ser_hf.train import main as train_main

    folder = tmp_path_factory.mktemp("cremad_run")
    recipe = write_cnn_recipe(
        folder / "recipe.yaml",
        corpus=["cremad"],
        data_dir=[str(cremad_clips)],
        train_speakers=["1001", "1002"],
        validation_speakers=["1003"],
        test_speakers=["1004"],
        max_steps=2,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )
    train_main([str(recipe)])
    return folder / "run"


def local_scores(model_dir: Path, clips: list[str]) -> list[dict[str, float]]:
    """Every label's score of each clip by ``pipeline("audio-classification")`` on the local model."""
    from transformers import pipeline

    from ser_hf.data.decode import decode_waveform

    classifier = pipeline("audio-classification", model=str(model_dir))
    scores = []
    for clip in clips:
        output = classifier({"raw": decode_waveform(clip, 16000), "sampling_rate": 16000}, top_k=None)
        scores.append({s["label"]: s["score"] for s in output})
    return scores


# --- Shared by the reliability and command-line tests: model folders, corpora of links, error lines --------------


def linked_corpus(source: Path, destination: Path, keep=lambda clip: True) -> Path:
    """A RAVDESS folder of links to `source`'s clips (those `keep` accepts)."""
    for actor in sorted(source.iterdir()):
        (destination / actor.name).mkdir(parents=True)
        for clip in actor.iterdir():
            if keep(clip):
                (destination / actor.name / clip.name).symlink_to(clip.resolve())
    return destination


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (by its relative path) and its bytes."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="session")
def tiny_crnn_folder(tmp_path_factory) -> Path:
    """A tiny CRNN saved as a trained model would be (its receptive field is one sample)."""
    from tests.conftest_models import build_tiny

    folder = tmp_path_factory.mktemp("tiny_crnn")
    model, feature_extractor = build_tiny("crnn")
    model.save_pretrained(folder)
    feature_extractor.save_pretrained(folder)
    return folder


#: The token the Hub tests plant (in the environment, a local Hub): no output may show it.
HUB_TOKEN = "hf_issueTwentyTOKENdoNotPrint0123456"
#: RAVDESS' eight labels, as a model trained on all of them holds them.
RAVDESS_LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> Path:
    """An untrained tiny wav2vec2 classifier over RAVDESS' labels, saved with its feature extractor."""
    from transformers import AutoConfig, AutoModelForAudioClassification

    from ser_hf.models import build_ssl_feature_extractor
    from tests.conftest_models import TINY_SSL

    folder = tmp_path_factory.mktemp("tiny_classifier")
    config = AutoConfig.for_model(
        "wav2vec2",
        **TINY_SSL,
        id2label=dict(enumerate(RAVDESS_LABELS)),
        label2id={label: i for i, label in enumerate(RAVDESS_LABELS)},
    )
    AutoModelForAudioClassification.from_config(config).save_pretrained(folder)
    build_ssl_feature_extractor(config).save_pretrained(folder)
    return folder


def last_error_line(capsys) -> str:
    """The last line a command wrote to stderr."""
    return capsys.readouterr().err.strip().splitlines()[-1]


def model_copy(source: Path, folder: Path) -> Path:
    """A copy of the model folder `source` at `folder`, to damage or edit."""
    shutil.copytree(source, folder)
    return folder


def ser_hf_error_lines(capsys) -> list[str]:
    """The lines a command wrote to stderr, which hold no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()


@pytest.fixture(scope="session")
def tiny_opensmile_folder(tmp_path_factory) -> Path:
    """A tiny openSMILE (eGeMAPSv02) classifier saved as a trained model would be."""
    from ser_hf.models import OpenSmileFeatureExtractor, build_baseline
    from tests.conftest_models import LABELS

    folder = tmp_path_factory.mktemp("tiny_opensmile")
    extractor = OpenSmileFeatureExtractor(feature_set="eGeMAPSv02", feature_mean=[0.5] * 88, feature_std=[2.0] * 88)
    model, extractor = build_baseline("opensmile", LABELS, feature_extractor=extractor, hidden_sizes=(16,))
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder
