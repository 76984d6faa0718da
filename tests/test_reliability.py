"""Bad input, interrupted runs and untrusted artefacts: each case gets the exact error a user sees (naming the file,
key or value at fault) or its documented recovery, and finished work is never lost. The troubleshooting guide
(docs/guides/troubleshooting.md, "When things go wrong") lists the same cases."""

from __future__ import annotations

import ast
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import soundfile
import torch
from datasets import Dataset
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForAudioClassification

import ser_hf.evaluation.evaluate_model as evaluate_module
from ser_hf.atomic_files import atomic_directory, atomic_path, write_text_atomic
from ser_hf.cli import main as cli_main
from ser_hf.data.corpora import load_corpus
from ser_hf.data.corpora.base import CorpusError, InvalidClipError
from ser_hf.data.dataset_info import get_ser_info
from ser_hf.data.decode import decode_waveform, prepare_audio
from ser_hf.data.splits import SplitError
from ser_hf.evaluation.evaluate_model import load_trained_model, write_eval_report
from ser_hf.evaluation.report import write_report
from ser_hf.experiments.embed import load_embedding_model
from ser_hf.hub.push import HubPushError, push_reports_to_hub
from ser_hf.inputs.collators import AudioClassificationCollator
from ser_hf.models import (
    LogMelFeatureExtractor,
    MissingFeatureExtractorError,
    build_ssl_feature_extractor,
    load_feature_extractor,
)
from ser_hf.models.location import ModelNotFoundError
from ser_hf.recipe.errors import RecipeError
from ser_hf.recipe.parser import parse_recipe
from ser_hf.run_folder import METRICS_FILE, RunDir
from ser_hf.train import main, where_the_run_is
from ser_hf.training.trainer import NonFiniteLossError, SERTrainer
from tests.conftest import REPO, write_audio
from tests.conftest_models import TINY_SSL
from tests.recipe.test_parser import write_recipe

TONE_SECONDS = 1.0


def _tone(sampling_rate: int, seconds: float = TONE_SECONDS, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    return np.repeat(tone[:, None], channels, axis=1) if channels > 1 else tone


# --- Audio files: what decodes, and the error of what does not ---------------------------------------------------


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_every_wav_sample_format_decodes_to_the_same_float_waveform(tmp_path, subtype):
    path = tmp_path / f"{subtype}.wav"
    soundfile.write(path, _tone(16000), 16000, subtype=subtype)
    waveform = decode_waveform(str(path), 16000)
    assert waveform.dtype == np.float32 and waveform.shape == (16000,)
    tolerance = 1 / 64 if subtype == "PCM_U8" else 1e-4  # 8-bit audio has 256 levels
    np.testing.assert_allclose(waveform, _tone(16000), atol=tolerance)


@pytest.mark.parametrize("channels", [2, 6], ids=["stereo", "5.1"])
def test_multichannel_audio_is_averaged_to_mono(tmp_path, channels):
    path = tmp_path / "multi.wav"
    soundfile.write(path, _tone(16000, channels=channels), 16000, subtype="FLOAT")
    np.testing.assert_allclose(decode_waveform(str(path), 16000), _tone(16000), atol=1e-6)


@pytest.mark.parametrize("native_rate", [8000, 22050, 44100, 96000])
def test_any_native_rate_is_resampled_to_the_models_rate(tmp_path, native_rate):
    path = tmp_path / "rate.wav"
    soundfile.write(path, _tone(native_rate), native_rate, subtype="FLOAT")
    waveform = decode_waveform(str(path), 16000)
    assert waveform.shape == (16000,)
    # The 220 Hz tone survives resampling (away from the edges, where the filter rings).
    np.testing.assert_allclose(waveform[1000:-1000], _tone(16000)[1000:-1000], atol=2e-3)


def _truncated(path: Path) -> Path:
    soundfile.write(path, _tone(16000), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a copy cut off half way: the header still promises the whole clip
    return path


def _with_sample(value: float):
    def write(path: Path) -> Path:
        samples = _tone(16000).astype(np.float32)
        samples[100] = value
        soundfile.write(path, samples, 16000, subtype="FLOAT")
        return path

    return write


BAD_AUDIO = {
    "corrupt header": (lambda p: p.write_bytes(b"RIFX" + b"\0" * 40) or p, "cannot be decoded as audio"),
    "truncated": (_truncated, "the file is truncated: its header declares 32000 bytes of audio but only 159"),
    "zero-length": (lambda p: soundfile.write(p, np.zeros((0, 1)), 16000) or p, "no samples"),
    "all silent": (lambda p: soundfile.write(p, np.zeros(16000), 16000) or p, "digital silence"),
    "NaN samples": (_with_sample(np.nan), "NaN or infinite sample values"),
    "Inf samples": (_with_sample(np.inf), "NaN or infinite sample values"),
}


@pytest.mark.parametrize("problem", list(BAD_AUDIO))
def test_bad_audio_is_named_with_its_problem(tmp_path, problem):
    write, message = BAD_AUDIO[problem]
    path = write(tmp_path / "clip.wav")
    with pytest.raises(InvalidClipError, match=message) as error:
        decode_waveform(str(path), 16000)
    assert error.value.path == str(path)


def test_bad_clips_stop_prepare_before_training_or_are_skipped_and_listed(tmp_path, caplog):
    """Every problem above in one RAVDESS folder: the load stops at the first (naming it), or with skip_invalid skips
    each, logs it, and lists it in the dataset's record (and so in the run's report)."""
    root = tmp_path / "ravdess"
    good = write_audio(root / "Actor_01" / "03-01-05-01-01-01-01.wav", seconds=1.0)
    bad = {}
    for index, (problem, (write, _)) in enumerate(BAD_AUDIO.items()):
        if problem in ("corrupt header", "zero-length"):
            continue  # the header probe at load time already rejects these (tests/data/test_corpora.py)
        bad[problem] = write(root / "Actor_01" / f"03-01-0{index % 7 + 2}-02-01-01-01.wav")
    corpus = load_corpus("ravdess", root, skip_invalid=True)
    with pytest.raises(InvalidClipError):
        prepare_audio(corpus, cache_dir=tmp_path / "cache", num_proc=1)
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        prepared = prepare_audio(corpus, cache_dir=tmp_path / "cache", num_proc=1, skip_invalid=True)
    assert prepared["path"] == [str(good)]
    skipped = {
        item["path"]: item["problem"]
        for item in prepared.info.description and json.loads(prepared.info.description)["ser_hf"]["skipped"]
    }
    assert set(skipped) == {str(path) for path in bad.values()}
    for path in bad.values():
        assert str(path) in caplog.text


def test_a_ten_minute_clip_is_cropped_for_training_and_padded_batches_stay_small():
    feature_extractor = LogMelFeatureExtractor(n_mels=16)
    long_clip = np.random.default_rng(0).standard_normal(16000 * 600).astype(np.float32) * 0.1
    collator = AudioClassificationCollator(feature_extractor, max_duration_seconds=2.0, seed=0)
    batch = collator(
        [
            {"waveform": long_clip, "label": 0, "path": "long.wav"},
            {"waveform": long_clip[:8000], "label": 1, "path": "short.wav"},
        ]
    )
    assert batch["input_features"].shape == (2, feature_extractor.num_frames(torch.tensor(32000)).item(), 16)


# --- Splits and recipes: stopped before any training step --------------------------------------------------------


def _linked_corpus(source: Path, destination: Path, keep=lambda clip: True) -> Path:
    """A RAVDESS folder of links to `source`'s clips (those `keep` accepts)."""
    for actor in sorted(source.iterdir()):
        (destination / actor.name).mkdir(parents=True)
        for clip in actor.iterdir():
            if keep(clip):
                (destination / actor.name / clip.name).symlink_to(clip.resolve())
    return destination


def test_a_class_without_training_clips_stops_the_run_naming_it(tmp_path, tiny_ravdess):
    # The training actors' calm clips (emotion code 02) are gone: calm could never be learnt, only mispredicted.
    data = _linked_corpus(
        tiny_ravdess,
        tmp_path / "data",
        keep=lambda clip: not (clip.name.split("-")[2] == "02" and clip.parent.name in ("Actor_01", "Actor_02")),
    )
    recipe = write_recipe(tmp_path / "r.yaml", data, output_dir=str(tmp_path / "run"))
    with pytest.raises(SplitError, match=r"has no clip of class\(es\) \['calm'\] \(its speakers: \['01', '02'\]\)"):
        main([str(recipe)])
    assert not any((tmp_path / "run").glob("checkpoint-*"))


def test_a_speaker_in_no_split_is_left_out_and_named(tmp_path, tiny_ravdess, caplog):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        test_speakers=[],
        max_steps=1,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        output_dir=str(tmp_path / "run"),
    )
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        (report,) = main([str(recipe)])
    assert "Speaker(s) ['04'] are in no split and are left out (8 clips)" in caplog.text
    assert (
        report["split"]["speakers"] == {"train": ["01", "02"], "validation": ["03"], "test": []}
        or "test" not in report["split"]["speakers"]
    )


def test_a_missing_data_directory_is_named_before_any_work(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "no_such_corpus", output_dir=str(tmp_path / "run"))
    with pytest.raises(CorpusError, match=r"no_such_corpus.*does not exist"):
        main([str(recipe)])
    assert not (tmp_path / "run").exists()


def test_a_clip_shorter_than_the_encoders_receptive_field_is_named_or_skipped(tmp_path, tiny_ravdess):
    data = _linked_corpus(tiny_ravdess, tmp_path / "data")
    short = write_audio(data / "Actor_01" / "03-01-05-02-02-02-01.wav", seconds=0.005)  # 80 samples
    values = dict(
        model_type="wav2vec2",
        model_config=TINY_SSL,
        max_steps=1,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        output_dir=str(tmp_path / "run"),
    )
    # The tiny encoder's three convolutions (kernel 8, stride 4) see 8 + 7*4 + 7*16 = 148 samples (9.2 ms).
    with pytest.raises(InvalidClipError, match=r"shorter than the model's receptive field \(9.2 ms\).*5.0 ms, train"):
        main([str(write_recipe(tmp_path / "r.yaml", data, **values))])
    (report,) = main([str(write_recipe(tmp_path / "r.yaml", data, skip_invalid=True, **values))])
    assert report["split"]["clips"]["train"] == 16 and str(short) not in json.dumps(report)


def test_fast_mode_names_a_too_short_clip_before_encoding_or_skips_it(tmp_path, tiny_ravdess, monkeypatch):
    """FAST mode (encoder outputs cached) checks the receptive field on the whole corpus before the first clip is
    encoded, as normal training does on its splits."""
    import ser_hf.inputs.fast_mode as encoder_cache

    data = _linked_corpus(tiny_ravdess, tmp_path / "data")
    short = write_audio(data / "Actor_01" / "03-01-05-02-02-02-01.wav", seconds=0.005)  # 80 samples
    encoded, encode_dataset = [], encoder_cache.encode_dataset
    monkeypatch.setattr(
        encoder_cache,
        "encode_dataset",
        lambda model, feature_extractor, dataset, **kwargs: (
            encoded.append(len(dataset)) or encode_dataset(model, feature_extractor, dataset, **kwargs)
        ),
    )
    values = dict(
        model_type="wav2vec2",
        model_config=TINY_SSL,
        freeze_base_model=True,
        cache_encoder_outputs=True,
        max_steps=1,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        output_dir=str(tmp_path / "run"),
    )
    problem = (
        f"{short}: 1 clip(s) are shorter than the model's receptive field (9.2 ms): {short} (5.0 ms). Remove "
        "them, or set skip_invalid: true to skip them"
    )
    with pytest.raises(InvalidClipError, match=f"^{re.escape(problem)}$"):
        main([str(write_recipe(tmp_path / "r.yaml", data, **values))])
    assert encoded == [] and not (tmp_path / "run").exists()
    (report,) = main([str(write_recipe(tmp_path / "r.yaml", data, skip_invalid=True, **values))])
    assert encoded == [32]  # the 32 clips of tiny_ravdess, without the short one
    assert report["split"]["clips"]["train"] == 16 and str(short) not in json.dumps(report)


def test_a_model_folder_without_its_feature_extractor_is_named_with_the_fix(tmp_path, tiny_ravdess, capsys):
    """Training from, evaluating, predicting or embedding with a model folder that lacks preprocessor_config.json
    stops with the folder, the file and the fix, before any weights are read; the fix it gives works."""
    checkpoint = tmp_path / "wav2vec2-without-feature-extractor"
    config = AutoConfig.for_model("wav2vec2", **TINY_SSL)
    AutoModelForAudioClassification.from_config(config).save_pretrained(checkpoint)
    message = (
        f"The model folder {checkpoint} has no feature extractor: preprocessor_config.json is missing. Add the "
        'one the model was trained with, e.g. AutoFeatureExtractor.from_pretrained("facebook/wav2vec2-base")'
        f".save_pretrained('{checkpoint}') for a model fine-tuned from wav2vec2-base (ser-hf's own runs save "
        "it beside the weights)."
    )
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        model_type="wav2vec2",
        model_config={},
        model_name_or_path=str(checkpoint),
        output_dir=str(tmp_path / "run"),
    )
    with pytest.raises(MissingFeatureExtractorError) as error:
        main([str(recipe)])
    assert str(error.value) == message and isinstance(error.value, FileNotFoundError)
    assert not any((tmp_path / "run").glob("checkpoint-*"))
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                str(checkpoint),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--speakers",
                "04",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"ser-hf: error: {message}"
    clip = str(sorted((tiny_ravdess / "Actor_04").glob("*.flac"))[0])
    assert cli_main(["predict", str(checkpoint), clip, "--no-progress"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"ser-hf: error: {message}"
    with pytest.raises(MissingFeatureExtractorError, match=re.escape(message)):
        load_embedding_model(str(checkpoint))

    build_ssl_feature_extractor(config).save_pretrained(checkpoint)
    assert load_trained_model(str(checkpoint), device="cpu").feature_extractor.sampling_rate == 16000


# --- Numerical safety ---------------------------------------------------------------------------------------------


def test_a_nan_loss_stops_training_naming_the_step_and_the_clips(tmp_path, tiny_ravdess, monkeypatch):
    original_call = AudioClassificationCollator.__call__
    poisoned = []

    def poisoning_call(self, rows):
        batch = original_call(self, rows)
        if self.extra_columns and self._calls == 2:  # the second training batch
            batch["input_features"][1, 3, 0] = float("nan")
            poisoned.append(rows[1]["path"])
        return batch

    monkeypatch.setattr(AudioClassificationCollator, "__call__", poisoning_call)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(tmp_path / "run"))
    with pytest.raises(NonFiniteLossError, match=r"The training loss is nan at step 2 \(epoch 0.25\)") as error:
        main([str(recipe)])
    assert f"Its input_features hold NaN or infinite values for: {poisoned[0]}." in str(error.value)
    assert not (tmp_path / "run" / METRICS_FILE).exists()


def test_a_deferred_loss_check_waits_for_a_sync_point_names_the_batch_and_saves_nothing_after_it(
    tmp_path, tiny_ravdess, monkeypatch
):
    # What an accelerator does by default: no step waits for the device; the losses are checked together when Trainer
    # is about to log, evaluate or save (step 3 here), before anything is written from the spoiled weights.
    original_call = AudioClassificationCollator.__call__
    poisoned, checks = [], []

    def poisoning_call(self, rows):
        batch = original_call(self, rows)
        if self.extra_columns and self._calls == 2:
            batch["input_features"][0, 3, 0] = float("nan")
            poisoned.append(rows[0]["path"])
        return batch

    original_check = SERTrainer.check_training_losses

    def recording_check(self):
        checks.append((self.state.global_step, len(self._training_losses)))
        return original_check(self)

    monkeypatch.setattr(AudioClassificationCollator, "__call__", poisoning_call)
    monkeypatch.setattr(SERTrainer, "check_training_losses", recording_check)
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        output_dir=str(tmp_path / "run"),
        defer_loss_check=True,
        max_steps=6,
        logging_steps=3,
        eval_steps=3,
        save_steps=3,
    )
    with pytest.raises(NonFiniteLossError, match=r"The training loss is nan at step 2 \(epoch 0.25\)") as error:
        main([str(recipe)])
    assert f"Its input_features hold NaN or infinite values for: {poisoned[0]}." in str(error.value)
    assert checks[0] == (3, 3)  # steps 1-3 checked at once, at the first step that logs, evaluates and saves
    assert not list((tmp_path / "run").glob("checkpoint-*")) and not (tmp_path / "run" / METRICS_FILE).exists()


# --- No lost work -------------------------------------------------------------------------------------------------


def test_atomic_writes_leave_the_previous_file_when_writing_fails(tmp_path):
    path = tmp_path / "metrics.json"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as partial:
            partial.write_text("half")
            raise RuntimeError("killed while writing")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "model") as staging:
            (staging / "model.safetensors").write_bytes(b"half")
            raise RuntimeError("killed while exporting")
    assert not any((tmp_path / "model").iterdir())


def test_atomic_outputs_get_the_mode_a_plain_write_would(tmp_path):
    """Temporary files are created readable by their owner only: what is renamed into place must not stay so."""
    (tmp_path / "plain.txt").write_text("x")
    write_text_atomic(tmp_path / "report.md", "x")
    with atomic_directory(tmp_path / "model") as staging:
        (staging / "config.json").write_text("{}")
        (staging / "sub").mkdir()
        (staging / "sub" / "weights.bin").write_bytes(b"x")
    plain = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert plain & 0o044  # the group and others read a plain file under any usual umask; mkstemp's file they do not
    model = tmp_path / "model"
    for path in (tmp_path / "report.md", model / "config.json", model / "sub" / "weights.bin"):
        assert stat.S_IMODE(path.stat().st_mode) == plain, path


def test_the_finished_marker_is_written_last(tmp_path, monkeypatch):
    """A run killed while its report is written has no metrics.json, so a re-run finishes it instead of reading
    back half a report."""
    import ser_hf.evaluation.report as evaluation

    def failing_plot(*args, **kwargs):
        raise RuntimeError("killed while plotting")

    monkeypatch.setattr(evaluation, "format_report", lambda report: "# Evaluation")
    monkeypatch.setattr(evaluation, "plot_training_curves", failing_plot)
    with pytest.raises(RuntimeError):
        write_report(tmp_path, {"split": {}, "evaluation": {}}, log_history=[{"loss": 1.0, "step": 1}])
    assert not (tmp_path / METRICS_FILE).exists()


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_an_interrupted_data_split_leaves_the_previous_split_and_no_partial_folder(
    tmp_path, tiny_ravdess, monkeypatch, capsys
):
    output = tmp_path / "splits" / "ravdess"
    split = [
        "data",
        "split",
        "--corpus",
        "ravdess",
        "--data-dir",
        str(tiny_ravdess),
        "--output",
        str(output),
        "--train-speakers",
        "01,02",
    ]
    assert cli_main([*split, "--validation-speakers", "03", "--test-speakers", "04"]) == 0
    before = _folder_bytes(output)
    assert {"dataset_dict.json", "audit.json", "audit.md", "summary.json", "test/state.json"} <= set(before)

    save_to_disk, saved = Dataset.save_to_disk, []

    def dying_save(self, path, *args, **kwargs):  # the disk fills up after the first split is written
        if saved:
            raise OSError(28, "No space left on device")
        saved.append(path)
        return save_to_disk(self, path, *args, **kwargs)

    monkeypatch.setattr(Dataset, "save_to_disk", dying_save)
    capsys.readouterr()
    assert cli_main([*split, "--validation-speakers", "04", "--test-speakers", "03"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "ser-hf: error: [Errno 28] No space left on device"
    assert _folder_bytes(output) == before
    assert [path.name for path in output.parent.iterdir()] == ["ravdess"]  # no temporary folder left behind

    monkeypatch.setattr(Dataset, "save_to_disk", save_to_disk)
    assert cli_main([*split, "--validation-speakers", "04", "--test-speakers", "03"]) == 0
    assert json.loads((output / "summary.json").read_text()) != json.loads(before["summary.json"])
    assert cli_main(["data", "audit", str(output)]) == 0  # the new split, whole


def _eval_report(unweighted_accuracy: float) -> dict:
    return {
        "corpus_name": "ravdess",
        "split": {"name": "test"},
        "evaluation": {
            "ravdess (test)": {
                "label_names": ["sad", "angry"],
                "confusion_matrix": [[2, 0], [1, 1]],
                "confusion_matrix_normalized": [[1.0, 0.0], [0.5, 0.5]],
                "unweighted_accuracy": unweighted_accuracy,
                "accuracy": 0.75,
            }
        },
    }


def test_a_failure_while_writing_an_evaluation_report_leaves_the_previous_one(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate_module, "format_eval_report", lambda report: f"# UA {report['evaluation']}\n")
    output = tmp_path / "reports" / "ravdess-test"
    write_eval_report(output, _eval_report(0.75))
    before = _folder_bytes(output)
    assert set(before) == {"eval_report.json", "eval_report.md", "confusion_matrix.png"}

    def killed(*args, **kwargs):
        raise RuntimeError("killed while plotting")

    with monkeypatch.context() as patch:
        patch.setattr(evaluate_module, "plot_confusion_matrix", killed)
        with pytest.raises(RuntimeError, match="killed while plotting"):
            write_eval_report(output, _eval_report(0.5))
    assert _folder_bytes(output) == before

    write_text = Path.write_text

    def half_written(self, text, *args, **kwargs):  # the JSON, the report of record, is written last
        if self.name.startswith(f".{evaluate_module.EVAL_REPORT_JSON}."):
            write_text(self, text[: len(text) // 2], *args, **kwargs)
            raise OSError(28, "No space left on device")
        return write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", half_written)
    with pytest.raises(OSError, match="No space left on device"):
        write_eval_report(output, _eval_report(0.5))
    assert (output / "eval_report.json").read_bytes() == before["eval_report.json"]
    assert sorted(path.name for path in output.iterdir()) == sorted(before)  # no temporary file left behind


# Calls that write a file: methods, and json.dump / open(..., "w").
FILE_WRITERS = {
    "write_text",
    "write_bytes",
    "savefig",
    "to_csv",
    "to_parquet",
    "save_to_disk",
    "save_pretrained",
    "save",
}


def _writes_a_file(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name == "open":
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        return isinstance(mode, ast.Constant) and any(flag in mode.value for flag in "wax+")
    if name == "dump":
        return isinstance(func, ast.Attribute) and getattr(func.value, "id", None) == "json"
    return isinstance(func, ast.Attribute) and name in FILE_WRITERS


def test_ser_hf_writes_its_output_files_through_a_temporary_name():
    """Every call in the package that writes a file sits in a ``with atomic_path(...)`` or ``with
    atomic_directory(...)`` block (or is write_text_atomic), so no report, plot, card or dataset is left half
    written."""
    direct = []
    for path in sorted((REPO / "ser_hf").rglob("*.py")):
        if path.name == "atomic_files.py":
            continue
        tree = ast.parse(path.read_text())
        guarded = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call)
                and getattr(item.context_expr.func, "id", None) in ("atomic_path", "atomic_directory")
                for item in node.items
            ):
                guarded.update(id(inner) for statement in node.body for inner in ast.walk(statement))
        direct += [
            f"{path.relative_to(REPO)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and id(node) not in guarded and _writes_a_file(node)
        ]
    # ser-hf predict's --output file (ser_hf/predict.py) is changed on its own.
    assert [where for where in direct if not where.startswith("ser_hf/predict.py:")] == []


KILLER = """
import os, signal, sys
from transformers import TrainerCallback
from ser_hf.training import trainer as trainer_module
from ser_hf.train import main, where_the_run_is

class KillAtStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ["KILL_AT_STEP"]):
            os.kill(os.getpid(), signal.SIGKILL)  # no exception, no clean-up: the process just dies

original_init = trainer_module.SERTrainer.__init__
def init(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    self.add_callback(KillAtStep())
trainer_module.SERTrainer.__init__ = init
main(sys.argv[1:])
"""


def test_a_run_killed_mid_epoch_resumes_to_the_same_final_weights(tmp_path, tiny_ravdess):
    values = dict(
        max_steps=10,
        save_steps=2,
        eval_steps=4,
        gain_prob=0.5,
        num_time_masks=1,
        save_total_limit=None,
        load_best_model_at_end=False,
    )  # 4 steps per epoch: killed in the 2nd
    main([str(write_recipe(tmp_path / "a.yaml", tiny_ravdess, output_dir=str(tmp_path / "a"), **values))])

    recipe = write_recipe(tmp_path / "b.yaml", tiny_ravdess, output_dir=str(tmp_path / "b"), **values)
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(recipe)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KILL_AT_STEP": "5", "PYTHONWARNINGS": "ignore"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (tmp_path / "b" / "checkpoint-4").is_dir() and not (tmp_path / "b" / "checkpoint-6").exists()
    assert not (tmp_path / "b" / "metrics.json").exists()

    (report,) = main([str(recipe)])
    assert report["training"]["resumed_from"].endswith("checkpoint-4")
    final_a, final_b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert final_a.keys() == final_b.keys()
    assert all(torch.equal(final_a[name], final_b[name]) for name in final_a)


def test_a_finished_run_is_not_trained_again_unless_asked(tmp_path, tiny_ravdess, caplog):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        max_steps=2,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        output_dir=str(tmp_path / "run"),
    )
    (first,) = main([str(recipe)])
    weights = tmp_path / "run" / "model.safetensors"
    written = weights.stat().st_mtime_ns
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        (again,) = main([str(recipe)])
    assert again == json.loads((tmp_path / "run" / METRICS_FILE).read_text())
    assert weights.stat().st_mtime_ns == written and "overwrite_output_dir" in caplog.text
    (retrained,) = main([str(recipe), "--overwrite_output_dir", "true", "--learning_rate", "0.1"])
    assert weights.stat().st_mtime_ns != written and retrained["training"]["resumed_from"] is None


# --- Security -----------------------------------------------------------------------------------------------------

PLANTED_TOKEN = "hf_plantedTOKENdoNotLeak0123456789"


def test_the_hub_token_is_in_no_file_and_no_log_of_a_run(tmp_path, tiny_ravdess, capfd, caplog):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        max_steps=2,
        output_dir=str(tmp_path / "run"),
        hub_token=PLANTED_TOKEN,
        logging_steps=1,
    )
    with caplog.at_level(logging.DEBUG, logger="ser_hf"):
        main([str(recipe)])
    files = [path for path in (tmp_path / "run").rglob("*") if path.is_file()]
    assert any(path.name == "training_args.bin" for path in files)  # the pickled arguments Trainer saves
    for path in files:
        assert PLANTED_TOKEN.encode() not in path.read_bytes(), path
    captured = capfd.readouterr()
    assert PLANTED_TOKEN not in captured.out + captured.err + caplog.text


def test_weights_are_written_as_safetensors_only(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, max_steps=2, output_dir=str(tmp_path / "run"))
    main([str(recipe)])
    names = {path.name for path in (tmp_path / "run").rglob("*") if path.is_file()}
    assert "model.safetensors" in names
    assert not names & {"pytorch_model.bin", "model.bin", "adapter_model.bin"}


def test_ser_hf_never_turns_on_remote_code_itself():
    """No call in the package passes trust_remote_code=True: it is only ever the user's own option."""
    import ast

    turned_on = []
    for path in (REPO / "ser_hf").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                turned_on += [
                    f"{path.name}:{node.lineno}"
                    for keyword in node.keywords
                    if keyword.arg == "trust_remote_code"
                    and isinstance(keyword.value, ast.Constant)
                    and keyword.value.value is True
                ]
    assert turned_on == []


# --- Issue 20: recipe values and one-line errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "values, message",
    [
        ({"max_steps": -1, "num_train_epochs": -1}, "num_train_epochs must be positive, got -1"),
        ({"max_steps": -1, "num_train_epochs": 0}, "num_train_epochs must be positive, got 0"),
        ({"max_steps": 0}, "max_steps must be a positive number of optimizer steps, got 0"),
        ({"max_steps": -3}, "max_steps must be a positive number of optimizer steps, got -3"),
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size must be at least 1, got 0"),
        ({"per_device_eval_batch_size": 0}, "per_device_eval_batch_size must be at least 1, got 0"),
        ({"label_smoothing_factor": 1.0}, r"label_smoothing_factor must be in \[0, 1\) \(0: no smoothing\), got 1"),
        (
            {"label_smoothing_factor": -0.1},
            r"label_smoothing_factor must be in \[0, 1\) \(0: no smoothing\), got -0.1",
        ),
        ({"sampling_rate": 0}, "sampling_rate must be a positive number of samples per second, got 0"),
        ({"split_protocol": "kfold", "num_folds": 1}, "num_folds must be at least 2 .*, got 1"),
        (
            {"model_config": {"conv_channels": 16}},
            r"model_config\.conv_channels: 16 is not a valid list\[int\] \| tuple\[int, \.\.\.\]",
        ),
        (
            {"model_config": {"conv_channels": [4, 8], "pool_size": "2x2"}},
            r"model_config\.pool_size: '2x2' is not a valid list\[int\] \| tuple\[int, \.\.\.\]",
        ),
        (
            {"model_config": {"conv_channels": [0, 8]}},
            "model_config: num_mel_bins and every conv_channels entry must be positive",
        ),
        (
            {"model_type": "wav2vec2", "model_config": {**TINY_SSL, "conv_dim": 32}},
            r"model_config\.conv_dim: 32 is not a valid list\[int\] \| tuple\[int, \.\.\.\]",
        ),
        ({"test_size": 0.3}, "test_size cannot be used with train_speakers, validation_speakers, test_speakers"),
    ],
)
def test_a_bad_recipe_value_stops_before_any_work_naming_the_key_value_and_file(tmp_path, values, message):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, **values)
    with pytest.raises(RecipeError, match=message) as error:
        main([str(recipe)])
    assert str(error.value).endswith(f"(recipe {recipe})") and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_negative_epochs_on_the_command_line_are_refused_not_saved_as_a_finished_run(tmp_path, tiny_ravdess, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess)
    assert cli_main(["train", str(recipe), "--max_steps", "-1", "--num_train_epochs", "-1"]) == 2
    assert "ser-hf: error: num_train_epochs must be positive, got -1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # no untrained model, no report a later run would read back


def test_test_size_with_speaker_lists_is_refused_on_the_command_line_too(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, train_speakers=None, validation_speakers=None)
    with pytest.raises(
        RecipeError,
        match=r"validation_size cannot be used with test_speakers: the split takes the "
        r"speakers named and would ignore validation_size",
    ):
        parse_recipe([str(recipe), "--validation_size=0.2"])
    # Without speaker lists the shares apply.
    no_lists = write_recipe(
        tmp_path / "shares.yaml", tmp_path, train_speakers=None, validation_speakers=None, test_speakers=None
    )
    _, data_args, _, _ = parse_recipe([str(no_lists), "--test_size", "0.25"])
    assert data_args.split_options() == {"test_size": 0.25, "validation_size": 0.1, "seed": 42}

    assert (
        cli_main(
            [
                "data",
                "split",
                "--corpus",
                "ravdess",
                "--data-dir",
                str(REPO / "data" / "ravdess_sample"),
                "--test-speakers",
                "07",
                "--test-size",
                "0.3",
                "--output",
                str(tmp_path / "split"),
            ]
        )
        == 2
    )
    assert (
        "ser-hf: error: --test-size cannot be used with --test-speakers: the split takes the speakers named and "
        "would ignore --test-size"
    ) in capsys.readouterr().err
    assert not (tmp_path / "split").exists()


def test_an_output_dir_that_cannot_be_written_is_named_before_any_work(tmp_path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("the user's own file")
    long_name = tmp_path / ("r" * 300) / "run"
    cases = {
        str(a_file): f"output_dir {a_file} is a file, not a folder: choose another output_dir.",
        str(a_file / "run"): f"output_dir {a_file / 'run'} cannot be created: {a_file} is a file, not a folder.",
        str(long_name): "is 300 bytes long, over the file system's limit of 255",
    }
    for output_dir, message in cases.items():
        with pytest.raises(RecipeError, match=re.escape(message)):
            main([str(write_recipe(tmp_path / "r.yaml", tmp_path, output_dir=output_dir))])
    assert a_file.read_text() == "the user's own file"


def test_a_read_only_output_folder_is_named_before_any_work(tmp_path, monkeypatch):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):
        # Running as root, for whom permission bits do not bind: answer as the kernel answers any other user.
        real_access = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda path, mode, *args, **kwargs: (
                False if Path(path) == read_only and mode & os.W_OK else real_access(path, mode, *args, **kwargs)
            ),
        )
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, output_dir=str(read_only / "run"))
    with pytest.raises(
        RecipeError,
        match=re.escape(
            f"output_dir {read_only / 'run'} cannot be created: {read_only} "
            "is not writable (permissions, or a read-only file system)"
        ),
    ):
        main([str(recipe)])
    read_only.chmod(0o755)


def test_an_os_error_during_a_run_is_one_line_naming_the_path(tmp_path, monkeypatch, capsys):
    def unreadable(data_args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "corpus" / "Actor_01"))

    monkeypatch.setattr("ser_hf.training.stages.load_dataset_from_args", unreadable)  # ser_hf.train imports it per run
    assert cli_main(["train", str(write_recipe(tmp_path / "r.yaml", tmp_path))]) == 2
    err = capsys.readouterr().err
    assert f"ser-hf: error: {tmp_path / 'corpus' / 'Actor_01'}: Permission denied\n" in err
    assert "Traceback" not in err


def test_python_m_ser_hf_train_prints_the_same_one_line_errors_as_ser_hf_train(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "missing_corpus")
    assert cli_main(["train", str(recipe)]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message == f"ser-hf: error: Data directory '{tmp_path / 'missing_corpus'}' does not exist."

    result = subprocess.run(
        [sys.executable, "-m", "ser_hf.train", str(recipe)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == message.replace("ser-hf:", "ser_hf.train:", 1)


@pytest.mark.slow
def test_an_error_under_accelerate_launch_is_printed_once_without_a_traceback_of_ser_hf(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "missing_corpus")
    accelerate = str(Path(sys.executable).parent / "accelerate")
    result = subprocess.run(
        [
            accelerate,
            "launch",
            "--num_processes",
            "1",
            "--cpu",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "ser_hf.train",
            str(recipe),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode != 0
    message = f"ser_hf.train: error: Data directory '{tmp_path / 'missing_corpus'}' does not exist."
    assert result.stderr.count(message) == 1, result.stderr[-3000:]
    # What is left is accelerate's own report that its child failed (`accelerate launch -q` leaves it out).
    assert result.stderr.count("Traceback") <= 1 and "ser_hf/" not in result.stderr.partition("Traceback")[2]


def test_too_many_folds_for_the_speakers_names_the_recipe_key(tmp_path, tiny_ravdess, capsys):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        split_protocol="kfold",
        num_folds=12,
        train_speakers=None,
        validation_speakers=None,
        test_speakers=None,
        validation_size=0.0,
    )
    assert cli_main(["train", str(recipe)]) == 2
    assert (
        "ser-hf: error: 12 folds asked for (num_folds in a recipe, --n-splits on the command line), but a "
        "speaker-grouped k-fold needs at least one speaker per fold and the dataset has 4 speakers: ask for 2 to "
        "4 folds."
    ) in capsys.readouterr().err


@pytest.mark.parametrize("command", ["data summary", "data split", "evaluate", "embed"])
@pytest.mark.parametrize("rate", ["0", "-16000"])
def test_a_sampling_rate_below_one_is_a_usage_error_of_every_command(tmp_path, capsys, command, rate):
    extra = {
        "data split": ["--output", str(tmp_path / "split")],
        "evaluate": ["--model", str(tmp_path)],
        "embed": ["--model", str(tmp_path)],
    }.get(command, [])
    with pytest.raises(SystemExit) as exit_:
        cli_main(
            [
                *command.split(),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(REPO / "data" / "ravdess_sample"),
                "--sampling-rate",
                rate,
                *extra,
            ]
        )
    assert exit_.value.code == 2
    assert f"error: argument --sampling-rate: must be a positive integer, got {int(rate)}" in capsys.readouterr().err


def test_an_unknown_corpus_option_lists_the_options_the_corpus_takes(capsys):
    data_dir = str(REPO / "data" / "ravdess_sample")
    assert cli_main(["data", "summary", "--corpus", "ravdess", "--data-dir", data_dir, "--option", "foo=bar"]) == 2
    assert (
        "ser-hf: error: --option foo=...: corpus ravdess has no option 'foo'; its options are check_audio."
        in capsys.readouterr().err
    )
    assert (
        cli_main(["data", "summary", "--corpus", "folder", "--data-dir", data_dir, "--option", "speaker_col=x"]) == 2
    )
    assert (
        "its options are check_audio, corpus_name, csv_path, label_column, path_column, speaker_column, "
        "speaker_regex, text_column." in capsys.readouterr().err
    )


@pytest.fixture(scope="module")
def tiny_crnn_folder(tmp_path_factory) -> Path:
    """A tiny CRNN saved as a trained model would be (its receptive field is one sample)."""
    from tests.conftest_models import build_tiny

    folder = tmp_path_factory.mktemp("tiny_crnn")
    model, feature_extractor = build_tiny("crnn")
    model.save_pretrained(folder)
    feature_extractor.save_pretrained(folder)
    return folder


def test_predict_warns_about_a_clip_too_short_for_an_emotion_and_still_classifies_it(
    tmp_path, tiny_crnn_folder, capsys, caplog
):
    short = write_audio(tmp_path / "blip.wav", seconds=0.1)
    long_enough = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        assert cli_main(["predict", str(tiny_crnn_folder), str(short), str(long_enough), "--no-progress"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(short), str(long_enough)]
    assert all(line["label"] is not None and line["error"] is None for line in lines)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [
        f"{short} is 0.100 s long, shorter than 0.25 s: too little speech for an emotion, so its "
        "prediction is not meaningful."
    ]


def test_predict_on_a_url_says_urls_are_not_supported(tiny_crnn_folder, capsys):
    assert cli_main(["predict", str(tiny_crnn_folder), "https://example.com/clips/happy.wav"]) == 2
    err = capsys.readouterr().err
    assert (
        "ser-hf: error: https://example.com/clips/happy.wav: URLs are not supported; download the file first "
        "(curl -LO URL) and pass its path."
    ) in err
    assert "https:/example" not in err


# --- Issue 20: Hub, decode and CLI cases --------------------------------------------------------------------------

HUB_TOKEN = "hf_issueTwentyTOKENdoNotPrint0123456"
RAVDESS_LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> Path:
    """An untrained tiny wav2vec2 classifier over RAVDESS' labels, saved with its feature extractor."""
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


@pytest.fixture
def no_hub_lookups(monkeypatch) -> list:
    """Record (and refuse) every repository lookup: a local-looking name must never reach the Hub."""
    lookups = []

    def refuse(self, repo_id, **kwargs):
        lookups.append(repo_id)
        raise AssertionError(f"{repo_id} was looked up on the Hub")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", refuse)
    return lookups


def _last_error_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_a_typo_in_a_local_model_path_is_no_such_folder_at_once(
    tmp_path, tiny_ravdess, monkeypatch, capsys, no_hub_lookups
):
    """`ser-hf predict outputs/dmeo` and `ser-hf evaluate --model outputs/dmeo` (outputs/ exists) answer in well
    under 2 s with the folder named and the closest one suggested; names written as paths, and names that are no
    valid repository id, never reach the Hub either."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "demo").mkdir(parents=True)
    clip = str(sorted((tiny_ravdess / "Actor_04").glob("*.flac"))[0])
    message = (
        "ser-hf: error: No such folder: outputs/dmeo (outputs/ is a folder here, so it is read as a path, not "
        "as a Hub repository id). Did you mean outputs/demo?"
    )
    started = time.monotonic()
    assert cli_main(["predict", "outputs/dmeo", clip, "--no-progress"]) == 2
    assert time.monotonic() - started < 2
    assert _last_error_line(capsys) == message
    started = time.monotonic()
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                "outputs/dmeo",
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--speakers",
                "04",
            ]
        )
        == 2
    )
    assert time.monotonic() - started < 2
    assert _last_error_line(capsys) == message
    for name, reason in (
        ("./outputs/dmeo", "it is written as a path"),
        ("runs/2024/demo", "it is not a valid Hub repository id (namespace/name) either"),
        ("../elsewhere/model", "it is written as a path"),
    ):
        with pytest.raises(ModelNotFoundError, match=re.escape(f"No such folder: {name} ({reason}).")):
            load_feature_extractor(name)
    with pytest.raises(ModelNotFoundError, match=re.escape(f"{clip} is a file, not a model folder")):
        load_embedding_model(clip)
    assert no_hub_lookups == []


def test_an_ssl_recipe_offline_names_the_missing_encoder_without_retries(
    tmp_path, tiny_ravdess, monkeypatch, no_hub_lookups
):
    """With HF_HUB_OFFLINE, a model_name_or_path that is no folder and not in the Hub cache stops the run with one
    line, and the Hub is not asked."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    name = "ser-hf-tests/no-such-encoder"
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        model_type="wav2vec2",
        model_config={},
        model_name_or_path=name,
        output_dir=str(tmp_path / "run"),
    )
    with pytest.raises(ModelNotFoundError) as error:
        main([str(recipe)])
    assert str(error.value) == (
        f"No such folder: {name}, and {name} is not in the Hub cache "
        f"({huggingface_hub.constants.HF_HUB_CACHE}); HF_HUB_OFFLINE is set, so the Hub was "
        "not asked."
    )
    assert no_hub_lookups == [] and not any((tmp_path / "run").glob("checkpoint-*"))


def test_a_hub_id_is_asked_once_and_an_unreachable_hub_is_one_line(tmp_path, tiny_ravdess, monkeypatch, capsys):
    from tests.hub_server import LocalHub

    clip = str(sorted((tiny_ravdess / "Actor_04").glob("*.flac"))[0])
    monkeypatch.chdir(tmp_path)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", closed)
    started = time.monotonic()
    assert cli_main(["predict", "someone/ser-model", clip, "--no-progress"]) == 2
    assert time.monotonic() - started < 2
    assert re.fullmatch(
        rf"ser-hf: error: No such folder: someone/ser-model, and the Hub at {closed} could not be "
        r"reached to download it \(ConnectError: .*\)\. Check the connection, or pass the folder of a "
        r"model saved locally\.",
        _last_error_line(capsys),
    )
    with LocalHub(token=HUB_TOKEN) as hub:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
        assert cli_main(["predict", "someone/ser-model", clip, "--no-progress"]) == 2
        assert _last_error_line(capsys) == (
            "ser-hf: error: No such folder: someone/ser-model, and no Hub repository "
            "someone/ser-model (or it is private and your token cannot read it: "
            "`hf auth login`)."
        )
        assert hub.requests == [("GET", "/api/models/someone/ser-model")]


@pytest.fixture
def silent_hub():
    """An endpoint that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_a_push_to_a_hub_that_never_answers_times_out_with_the_retry_advice(tmp_path, monkeypatch, capsys, silent_hub):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    monkeypatch.setenv("SER_HF_HUB_TIMEOUT", "0.5")
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", silent_hub)
    started = time.monotonic()
    assert cli_main(["push", str(run_dir), "--repo-id", "me/ser-demo", "--no-card"]) == 2
    assert time.monotonic() - started < 10
    assert _last_error_line(capsys) == (
        f"ser-hf: error: The Hub at {silent_hub} did not answer within 0.5 s while pushing {run_dir} (set "
        f"SER_HF_HUB_TIMEOUT to wait longer). Nothing in {run_dir} was changed; to try again, run `ser-hf push "
        f"{run_dir} --repo-id me/ser-demo --no-card`."
    )
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.json"]

    reports = tmp_path / "reports"
    (reports / "ravdess-test").mkdir(parents=True)
    (reports / "ravdess-test" / "eval_report.json").write_text("{}")
    with pytest.raises(HubPushError) as error:
        push_reports_to_hub(reports, "me/ser-reports", endpoint=silent_hub)
    assert str(error.value).endswith(
        f"to try again, run `hf upload me/ser-reports {reports} reports --repo-type dataset`."
    )
    monkeypatch.setenv("SER_HF_HUB_TIMEOUT", "soon")
    assert cli_main(["push", str(run_dir), "--repo-id", "me/ser-demo", "--no-card"]) == 2
    assert _last_error_line(capsys) == (
        "ser-hf: error: SER_HF_HUB_TIMEOUT='soon': give the seconds to wait for the "
        "Hub, a positive number (default 60)."
    )


def test_a_hub_error_that_echoes_the_token_is_printed_redacted(tmp_path, monkeypatch, capsys, caplog):
    from tests.hub_server import LocalHub

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    with LocalHub(token=HUB_TOKEN) as hub:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
        hub.fail("POST", "/api/repos/create", status=400, echo_authorization=True)
        with caplog.at_level(logging.DEBUG):
            assert cli_main(["push", str(run_dir), "--repo-id", "me/ser-demo", "--no-card"]) == 2
            logging.getLogger("ser_hf.hub.push").warning("token %s in a record", HUB_TOKEN)
    err = capsys.readouterr().err
    assert "Request rejected; it carried Authorization: Bearer <REDACTED>" in err and "ser-hf: error: " in err
    assert HUB_TOKEN not in err + caplog.text and "token <REDACTED> in a record" in caplog.text


def test_tokens_are_redacted_from_messages_and_log_records():
    from ser_hf.hub.token import TokenRedactingFilter, redact_tokens

    text = (
        "401 for Authorization: Bearer s3cret-value; hf_abcdefghijklmnopqrstuvwxyz012345 and the user's own "
        "my-own-token; hf_hub_download and api_org_ABCDEFGHIJKLMNOPQRST stay/go"
    )
    assert redact_tokens(text, tokens=["my-own-token"]) == (
        "401 for Authorization: Bearer <REDACTED>; <REDACTED> and the user's own <REDACTED>; hf_hub_download and "
        "<REDACTED> stay/go"
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TokenRedactingFilter(tokens=["my-own-token"]))
    logger = logging.getLogger("ser_hf.test_redaction")
    logger.addHandler(handler)
    try:
        logger.error("pushing with %s", "my-own-token")
        try:
            raise ValueError("server said Bearer my-own-token")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert "my-own-token" not in stream.getvalue()
    assert "pushing with <REDACTED>" in stream.getvalue() and "server said Bearer <REDACTED>" in stream.getvalue()


def test_verify_full_names_a_clip_that_is_cut_short_past_its_header(tmp_path, tiny_ravdess):
    """A FLAC cut short keeps a readable header, so the default load takes it and `ds[i]["audio"]` fails later
    with torchcodec's error, unnamed; verify="full" names it at load time, or skips and lists it."""
    data = tmp_path / "ravdess"
    shutil.copytree(tiny_ravdess / "Actor_01", data / "Actor_01")
    bad = sorted((data / "Actor_01").glob("*.flac"))[2]
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 3])
    dataset = load_corpus("ravdess", data)
    assert len(dataset) == 8
    with pytest.raises(RuntimeError) as unnamed:
        dataset[2]["audio"].get_all_samples()
    assert str(bad) not in str(unnamed.value)
    with pytest.raises(InvalidClipError) as error:
        load_corpus("ravdess", data, verify="full")
    assert error.value.path == str(bad.resolve())
    assert error.value.problem.startswith("cannot be decoded as audio past its header, cut short or corrupt (")
    verified = load_corpus("ravdess", data, verify="full", skip_invalid=True)
    assert len(verified) == 7 and str(bad.resolve()) not in verified["path"]
    assert [entry["path"] for entry in get_ser_info(verified)["skipped"]] == [str(bad.resolve())]
    assert all(verified[i]["audio"].get_all_samples().data.numel() for i in range(len(verified)))
    with pytest.raises(CorpusError, match=r"verify='deep' is not one of header, full"):
        load_corpus("ravdess", data, verify="deep")


def test_train_and_sweep_help_print_their_options(capsys):
    with pytest.raises(SystemExit) as exit_status:
        cli_main(["train", "--help"])
    out = capsys.readouterr().out
    assert exit_status.value.code == 0
    assert out.startswith("usage: python -m ser_hf.train RECIPE.yaml [--key value ...]")
    assert "--model_name_or_path" in out and "--num_train_epochs" in out
    with pytest.raises(SystemExit):
        cli_main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert out.count("options:") == 1 and "--grid KEY=V1,V2" in out
    with pytest.raises(SystemExit) as exit_status:
        cli_main(["predict", "--bogus", "model", "clip.wav"])
    assert exit_status.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_a_run_ends_saying_where_it_was_written_and_its_weights_are_readable_like_its_other_files(
    tmp_path, tiny_ravdess, caplog
):
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, max_steps=2, output_dir=str(run))
    with caplog.at_level(logging.INFO, logger="ser_hf"):
        main([str(recipe)])
    closing = [record.getMessage() for record in caplog.records if record.name.startswith("ser_hf")][-1]
    assert closing == (
        f"Finished: the run is in {run} (model, metrics.json, model card); try it: ser-hf predict {run} AUDIO_FILE"
    )
    (tmp_path / "plain.txt").write_text("")
    plain = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    weights = [run / "model.safetensors", *run.glob("checkpoint-*/model.safetensors")]
    assert len(weights) > 1
    for path in [*weights, run / "config.json", run / "metrics.json"]:
        assert stat.S_IMODE(path.stat().st_mode) == plain, path
    assert where_the_run_is(Path("runs/kfold"), [{"fold": 0}, {"fold": 1}]) == (
        "Finished: the run is in runs/kfold (2 fold model(s) in fold-0, fold-1, mean ± std in summary.json)"
    )


def test_embed_shows_its_progress_and_says_when_the_projection_runs(
    tmp_path, tiny_ravdess, tiny_classifier, capsys, caplog
):
    with caplog.at_level(logging.INFO, logger="ser_hf"):
        assert (
            cli_main(
                [
                    "embed",
                    "--model",
                    str(tiny_classifier),
                    "--corpus",
                    "ravdess",
                    "--data-dir",
                    str(tiny_ravdess),
                    "--speakers",
                    "03,04",
                    "--method",
                    "tsne",
                    "--output-dir",
                    str(tmp_path / "embed"),
                ]
            )
            == 0
        )
    err = capsys.readouterr().err
    assert re.search(r"Embedding: 100%\|.*\| 16/16", err), err
    assert "Projecting 16 embeddings to 2-D with t-SNE (a while for thousands of clips)" in caplog.text


def test_evaluate_on_some_speakers_decodes_only_their_clips(tmp_path, tiny_ravdess, tiny_classifier, monkeypatch):
    decoded = []
    real_prepare = evaluate_module.prepare_audio
    monkeypatch.setattr(
        evaluate_module,
        "prepare_audio",
        lambda dataset, **kwargs: decoded.append(len(dataset)) or real_prepare(dataset, **kwargs),
    )
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                str(tiny_classifier),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--speakers",
                "04",
                "--output-dir",
                str(tmp_path / "report"),
            ]
        )
        == 0
    )
    assert decoded == [8]
    report = json.loads((tmp_path / "report" / "eval_report.json").read_text())
    assert report["split"]["speakers"] == {"ravdess (speakers 04)": ["04"]}
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                str(tiny_classifier),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--speakers",
                "04,99",
                "--output-dir",
                str(tmp_path / "report"),
            ]
        )
        == 2
    )
    assert decoded == [8]  # an unknown speaker stops it before anything is decoded


# --- Issue 34: flags, output paths, one-label splits, learning rates, one-line errors -----------------------------


@pytest.mark.parametrize("top_k", ["-3", "0"])
def test_predict_top_k_below_one_is_a_usage_error_naming_the_flag(tmp_path, tiny_crnn_folder, capsys, top_k):
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    with pytest.raises(SystemExit) as exit_:
        cli_main(["predict", str(tiny_crnn_folder), str(clip), "--top-k", top_k, "--no-progress"])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no file was classified
    assert captured.err.strip().splitlines()[-1] == (
        f"ser-hf predict: error: argument --top-k: must be a positive integer, got {int(top_k)}"
    )
    assert cli_main(["predict", str(tiny_crnn_folder), str(clip), "--top-k", "1", "--no-progress"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"]) == 1


def test_predict_never_writes_into_a_model_folder_or_a_folder_of_audio(tmp_path, tiny_crnn_folder, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_crnn_folder, model)
    config = (model / "config.json").read_bytes()
    recordings = tmp_path / "recordings"
    clip = write_audio(recordings / "sentence.wav", seconds=1.0)
    cases = {
        model / "config.json": f"{model} is a model folder (it holds config.json)",
        model / "emotions.csv": f"{model} is a model folder (it holds config.json)",
        recordings / "emotions.csv": f"{recordings} holds audio files (a corpus or a folder of recordings)",
    }
    for output, message in cases.items():
        for overwrite in ([], ["--overwrite"]):
            assert cli_main(["predict", str(model), str(clip), "--output", str(output), *overwrite]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert err[-1].startswith(f"ser-hf: error: --output {output}: {message}"), err
    assert (model / "config.json").read_bytes() == config and not (model / "emotions.csv").exists()
    assert AutoConfig.from_pretrained(model).model_type == "ser_crnn"  # the model still loads


def test_predict_replaces_its_own_output_but_not_a_users_file_without_overwrite(tmp_path, tiny_crnn_folder, capsys):
    clip = write_audio(tmp_path / "audio" / "sentence.wav", seconds=1.0)
    for name in ("notes.csv", "notes.json"):
        output = tmp_path / "results" / name
        output.parent.mkdir(exist_ok=True)
        output.write_text("my own notes, not predictions\n")
        predict = ["predict", str(tiny_crnn_folder), str(clip), "--output", str(output), "--no-progress"]
        assert cli_main(predict) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"ser-hf: error: --output {output} already exists and is not a file ser-hf wrote: give --overwrite to "
            "replace it, or another name."
        )
        assert output.read_text() == "my own notes, not predictions\n"
        assert cli_main([*predict, "--overwrite"]) == 0
        written = output.read_text()
        assert str(clip) in written
        assert cli_main(predict) == 0  # an earlier ser-hf predict output is replaced without --overwrite
        assert output.read_text() == written


def test_data_split_refuses_a_model_folder_a_corpus_and_a_folder_of_other_files(tmp_path, tiny_ravdess, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("chapter 1")
    split = ["data", "split", "--corpus", "ravdess", "--data-dir", str(tiny_ravdess), "--test-speakers", "04"]
    cases = {
        model: f"--output {model}: {model} is a model folder (it holds config.json)",
        tiny_ravdess: f"--output {tiny_ravdess}: {tiny_ravdess} is the data directory {tiny_ravdess}",
        tiny_ravdess / "splits": f"{tiny_ravdess / 'splits'} is inside the data directory {tiny_ravdess}",
        mine: f"--output {mine} already holds files that ser-hf did not write (thesis.txt): choose a new or empty "
        "folder, or give --overwrite",
    }
    for output, message in cases.items():
        assert cli_main([*split, "--output", str(output)]) == 2
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert [path.name for path in model.iterdir()] == ["config.json"] and not (tiny_ravdess / "splits").exists()
    assert sorted(path.name for path in tiny_ravdess.iterdir()) == ["Actor_01", "Actor_02", "Actor_03", "Actor_04"]
    for output in (model, tiny_ravdess):  # --overwrite does not open a model or a corpus
        assert cli_main([*split, "--output", str(output), "--overwrite"]) == 2
    assert cli_main([*split, "--output", str(mine), "--overwrite"]) == 0
    assert (mine / "thesis.txt").read_text() == "chapter 1" and (mine / "dataset_dict.json").is_file()
    assert cli_main([*split, "--output", str(mine / "again")]) == 0
    assert cli_main([*split, "--output", str(mine / "again")]) == 0  # an earlier split is replaced without asking


def test_a_training_split_of_one_emotion_stops_before_the_model_is_built(tmp_path, tiny_ravdess, capsys):
    data = _linked_corpus(tiny_ravdess, tmp_path / "data", keep=lambda clip: clip.name.split("-")[2] == "05")
    recipe = write_recipe(tmp_path / "r.yaml", data, output_dir=str(tmp_path / "run"))
    assert cli_main(["train", str(recipe)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "ser-hf: error: The training split holds clips of one emotion only ('angry', all 2 of them): a classifier of "
        "one label learns nothing and scores 100 % UA. Point data_dir at a corpus with at least two emotions, or "
        f"widen labels/label_map (recipe {recipe})."
    )
    assert not (tmp_path / "run" / "config.json").exists() and not any((tmp_path / "run").glob("checkpoint-*"))


def test_validation_and_test_splits_missing_training_labels_are_a_warning(tmp_path, tiny_ravdess, caplog):
    from ser_hf.training.stages import audit_split, make_folds

    # Sad (04) only for the training actors 01 and 02: validation (03) and test (04) hold angry alone.
    data = _linked_corpus(
        tiny_ravdess,
        tmp_path / "data",
        keep=lambda clip: (
            clip.name.split("-")[2] == "05"
            or (clip.name.split("-")[2] == "04" and clip.parent.name in ("Actor_01", "Actor_02"))
        ),
    )
    _, data_args, _, _ = parse_recipe([str(write_recipe(tmp_path / "r.yaml", data))])
    dataset = load_corpus("ravdess", str(data))
    ((_, splits),) = make_folds(dataset, data_args)
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        audit_split(splits, recipe="r.yaml")
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [
        f"The {name} split holds 1 of the training split's 2 labels (none of ['sad']): its UA and macro-F1 "
        "average over the labels it holds."
        for name in ("validation", "test")
    ]


@pytest.mark.parametrize(
    "key, value, text",
    [
        ("learning_rate", float("inf"), "learning_rate: .inf"),
        ("learning_rate", -0.01, "learning_rate: -0.01"),
        ("learning_rate", 0.0, "learning_rate: 0.0"),
        ("learning_rate", float("nan"), "learning_rate: .nan"),
        ("head_learning_rate", float("inf"), "head_learning_rate: .inf"),
        ("head_learning_rate", -1.0e-3, "head_learning_rate: -0.001"),
    ],
)
def test_a_learning_rate_that_is_not_finite_and_positive_stops_at_parse_time(tmp_path, key, value, text):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, **{key: value})
    assert text in recipe.read_text().splitlines()
    with pytest.raises(RecipeError) as error:
        parse_recipe([str(recipe)])
    assert str(error.value) == (
        f"{key} must be a positive, finite number (2.0e-5, say), got {value:g}. (recipe {recipe})"
    )
    with pytest.raises(
        RecipeError, match=re.escape(f"{key} must be a positive, finite number (2.0e-5, say), got inf")
    ):
        parse_recipe([str(write_recipe(tmp_path / "ok.yaml", tmp_path)), f"--{key}", "inf"])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            "seed: !!python/object/apply:os.system ['touch {marker}']\n",
            "line 2, column 7: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'; recipes are read with a safe loader, which builds "
            "no Python objects: write plain values",
        ),
        (
            "seed: [1, 2\n",
            "line 3, column 1: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 2, "
            "column 7)",
        ),
    ],
)
def test_an_ensemble_recipe_that_is_not_plain_yaml_is_one_line_naming_the_file(tmp_path, capsys, text, problem):
    marker = tmp_path / "pwned"
    recipe = tmp_path / "ensemble.yaml"
    recipe.write_text("ensemble_members: [a.yaml, b.yaml]\n" + text.format(marker=marker))
    assert cli_main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and not marker.exists()
    assert err.strip().splitlines() == [f"ser-hf: error: Recipe {recipe} is not valid YAML: {problem}"]


def test_a_nan_loss_under_ser_hf_train_is_one_line_and_status_2(tmp_path, tiny_ravdess, monkeypatch, capsys):
    original_call = AudioClassificationCollator.__call__

    def poisoning_call(self, rows):
        batch = original_call(self, rows)
        if self.extra_columns and self._calls == 2:  # the second training batch
            batch["input_features"][1, 3, 0] = float("nan")
        return batch

    monkeypatch.setattr(AudioClassificationCollator, "__call__", poisoning_call)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(tmp_path / "run"))
    assert cli_main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("ser-hf: error: The training loss is nan at step 2 (epoch 0.25), in a batch of 4 clips: ")
    )
    assert not (tmp_path / "run" / METRICS_FILE).exists()


INTERRUPTER = """
import os, signal, sys
# As in a terminal: a test runner's worker may ignore SIGINT, and a child inherits that.
signal.signal(signal.SIGINT, signal.default_int_handler)
from transformers import TrainerCallback
from ser_hf.cli import main
from ser_hf.training import trainer as trainer_module

class CtrlCAtStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C in the terminal sends

original_init = trainer_module.SERTrainer.__init__
def init(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    self.add_callback(CtrlCAtStep())
trainer_module.SERTrainer.__init__ = init
sys.exit(main(["train", *sys.argv[1:]]))
"""


def test_ctrl_c_during_ser_hf_train_is_one_line_status_130_and_the_run_resumes(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(tmp_path / "run"), max_steps=6)
    interrupted = subprocess.run(
        [sys.executable, "-c", INTERRUPTER, str(recipe)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert interrupted.returncode == 130, interrupted.stderr[-3000:]
    assert "Traceback" not in interrupted.stderr, interrupted.stderr[-3000:]
    assert interrupted.stderr.strip().splitlines()[-1] == (
        "ser-hf: interrupted; re-run the same command to resume from its last checkpoint"
    )
    assert (tmp_path / "run" / "checkpoint-2").is_dir() and not (tmp_path / "run" / METRICS_FILE).exists()
    (report,) = main([str(recipe)])
    assert report["training"]["resumed_from"].endswith("checkpoint-2")


# --- Issue 34, round three: model files that do not load, the debug switch, exports, the app, messages -------------


def _model_copy(source: Path, folder: Path) -> Path:
    shutil.copytree(source, folder)
    return folder


def _ser_hf_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()


def test_a_model_folder_with_pickled_weights_only_is_refused_naming_the_conversion(tmp_path, tiny_crnn_folder, capsys):
    """torch's weights_only refuses this pickle (it holds a Namespace): transformers raised its UnpicklingError."""
    import argparse

    model = _model_copy(tiny_crnn_folder, tmp_path / "model")
    state = load_file(model / "model.safetensors")
    (model / "model.safetensors").unlink()
    torch.save({**state, "args": argparse.Namespace(lr=0.1)}, model / "pytorch_model.bin")
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    evaluate = ["evaluate", "--model", str(model), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    for command in (["predict", str(model), str(clip), "--no-progress"], evaluate, ["export", str(model), "out"]):
        assert cli_main(command) == 2
        (line,) = _ser_hf_lines(capsys)
        assert line.startswith(
            f"ser-hf: error: {model} (pytorch_model.bin): pickled weights refused: ser-hf loads safetensors only "
            "(unpickling a file can run any code it holds), and there is no model.safetensors. Convert the "
            "checkpoint, if you trust where it came from: python -c "
        ), line
    assert not (tmp_path / "out").exists()
    # The conversion the message gives works: the folder then loads, with the same weights.
    command = line.split("python -c ", 1)[1]
    subprocess.run([sys.executable, "-c", ast.literal_eval(command)], check=True, cwd=tmp_path)
    converted = load_file(model / "model.safetensors")
    assert converted.keys() == state.keys() and all(torch.equal(converted[k], state[k]) for k in state)
    assert cli_main(["predict", str(model), str(clip), "--no-progress"]) == 0


def test_a_tensor_of_the_wrong_shape_is_named_with_both_shapes(tmp_path, tiny_crnn_folder, capsys):
    model = _model_copy(tiny_crnn_folder, tmp_path / "model")
    state = load_file(model / "model.safetensors")
    state["classifier.weight"] = torch.zeros(9, *state["classifier.weight"].shape[1:])
    needed = list(load_file(tiny_crnn_folder / "model.safetensors")["classifier.weight"].shape)
    save_file(state, model / "model.safetensors", metadata={"format": "pt"})
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    for command in (["predict", str(model), str(clip), "--no-progress"], ["export", str(model), str(tmp_path / "o")]):
        assert cli_main(command) == 2
        assert _ser_hf_lines(capsys) == [
            f"ser-hf: error: {model}: the weights do not fit the model its config.json describes: classifier.weight "
            f"is [9, {needed[1]}] in model.safetensors, the model needs {needed}. The weights and config.json come "
            "from different models (or config.json was edited): keep the config.json saved with these weights, or "
            "save the model again with save_pretrained."
        ]
    # A header cut short is named too (safetensors' own error names no file).
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert cli_main(["predict", str(model), str(clip), "--no-progress"]) == 2
    (line,) = _ser_hf_lines(capsys)
    assert line.startswith(f"ser-hf: error: {model / 'model.safetensors'} is damaged and cannot be loaded (")


@pytest.fixture(scope="module")
def tiny_onnx_export(tmp_path_factory, tiny_crnn_folder) -> Path:
    """The tiny CRNN exported by `ser-hf export` (TorchScript's exporter: dynamo cannot trace its LSTM)."""
    folder = tmp_path_factory.mktemp("tiny_onnx") / "export"
    assert cli_main(["export", str(tiny_crnn_folder), str(folder), "--exporter", "torchscript"]) == 0
    return folder


def test_a_truncated_onnx_graph_and_a_config_that_lost_its_labels_are_named(tmp_path, tiny_onnx_export, capsys):
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    assert cli_main(["predict", str(tiny_onnx_export), str(clip), "--no-progress"]) == 0
    capsys.readouterr()
    truncated = _model_copy(tiny_onnx_export, tmp_path / "truncated")
    graph = truncated / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:3000])
    assert cli_main(["predict", str(truncated), str(clip), "--no-progress"]) == 2
    (line,) = _ser_hf_lines(capsys)
    assert line.startswith(f"ser-hf: error: {graph} cannot be loaded by onnxruntime: it is truncated or corrupt (")
    source = json.loads((truncated / "onnx_export.json").read_text())["source_model"]
    assert line.endswith(f"Export the model again: ser-hf export {source} --format onnx {truncated}.")

    relabelled = _model_copy(tiny_onnx_export, tmp_path / "relabelled")
    config = json.loads((relabelled / "config.json").read_text())
    config["id2label"] = {str(i): label for i, label in enumerate(["neutral", "happy", "sad", "angry"])}
    config["label2id"] = {label: int(i) for i, label in config["id2label"].items()}
    (relabelled / "config.json").write_text(json.dumps(config))
    evaluate = ["evaluate", "--model", str(relabelled), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    for command in (["predict", str(relabelled), str(clip), "--no-progress"], evaluate):
        assert cli_main(command) == 2  # not a KeyError: 4 in each clip's row
        (line,) = _ser_hf_lines(capsys)
        assert line.startswith(
            f"ser-hf: error: {relabelled}: config.json has 4 labels, the graph outputs 7: config.json is not the "
            "one exported with model.onnx (edited, or copied from another model)."
        ), line


def test_debug_and_ser_hf_debug_show_the_traceback_behind_the_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SER_HF_DEBUG", raising=False)
    clip = str(write_audio(tmp_path / "sentence.wav", seconds=1.0))
    predict = ["predict", "./missing-model", clip, "--no-progress"]
    assert cli_main(predict) == 2
    assert _ser_hf_lines(capsys) == ["ser-hf: error: No such folder: ./missing-model (it is written as a path)."]
    for argv in (["--debug", *predict], [*predict, "--debug"]):
        with pytest.raises(ModelNotFoundError, match="No such folder: ./missing-model"):
            cli_main(argv)
    monkeypatch.setenv("SER_HF_DEBUG", "1")
    with pytest.raises(ModelNotFoundError):
        cli_main(predict)
    monkeypatch.setenv("SER_HF_DEBUG", "0")
    assert cli_main(predict) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    assert "--debug (or SER_HF_DEBUG=1) shows its traceback" in " ".join(capsys.readouterr().out.split())
    # python -m ser_hf.train reads the variable too: Python prints the traceback and exits with status 1.
    trained = subprocess.run(
        [sys.executable, "-m", "ser_hf.train", str(tmp_path / "missing.yaml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SER_HF_DEBUG": "1", "PYTHONWARNINGS": "ignore"},
    )
    assert trained.returncode == 1
    assert "Traceback (most recent call last)" in trained.stderr
    assert trained.stderr.strip().splitlines()[-1] == (
        f"ser_hf.recipe.errors.RecipeError: Recipe file {tmp_path / 'missing.yaml'} does not exist."
    )


def test_exporting_an_ensemble_is_refused_before_any_work_naming_each_members_export(
    tmp_path, tiny_crnn_folder, monkeypatch, capsys
):
    import ser_hf.export.onnx as onnx_export

    first, second = _model_copy(tiny_crnn_folder, tmp_path / "a"), _model_copy(tiny_crnn_folder, tmp_path / "b")
    ensemble, out = tmp_path / "ensemble", tmp_path / "exported"
    assert cli_main(["ensemble", str(first), str(second), "--output-dir", str(ensemble)]) == 0
    capsys.readouterr()

    def never(*args, **kwargs):
        raise AssertionError("the ensemble was loaded for an export that cannot succeed")

    monkeypatch.setattr(onnx_export, "load_model_for_export", never)
    assert cli_main(["export", str(ensemble), "--format", "onnx", str(out)]) == 2
    assert _ser_hf_lines(capsys) == [
        f"ser-hf: error: {ensemble} is an ensemble of 2 models (a, b): ensembles are not exportable to ONNX yet, "
        "since each member has its own inputs (member0_..., member1_..., each made by the member's own feature "
        "extractor) and an export runs one feature extractor before one graph. Export each member instead "
        f"(ser-hf export {first} --format onnx {out / 'a'}; ser-hf export {second} --format onnx {out / 'b'}), and "
        f"run the ensemble itself in torch: ser-hf predict and ser-hf evaluate take {ensemble}."
    ]
    assert not out.exists()
    loaded = AutoModelForAudioClassification.from_pretrained(ensemble)
    with pytest.raises(ValueError, match="ensembles are not exportable to ONNX yet"):
        onnx_export.export_onnx(loaded, out, feature_extractor=load_feature_extractor(ensemble))


def test_the_functionals_log_says_whether_they_are_computed_or_read_from_the_cache(tmp_path, monkeypatch, caplog):
    import datasets.config

    from ser_hf.inputs.speaker_normalization import compute_functionals_once
    from ser_hf.models import OpenSmileFeatureExtractor

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")  # nothing computed before
    clips = load_corpus("ravdess", REPO / "data" / "ravdess_sample", sampling_rate=16000).select(range(6))
    extractor = OpenSmileFeatureExtractor(feature_set="eGeMAPSv02")
    runs = []
    for _ in range(2):  # two runs of the same recipe
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="ser_hf"):
            runs.append(compute_functionals_once(prepare_audio(clips, num_proc=1), extractor))
        assert len([r for r in caplog.records if "functionals of 6 clips" in r.getMessage()]) == 1
        runs[-1] = (runs[-1], caplog.text)
    (first, first_log), (second, second_log) = runs
    assert "Computing eGeMAPSv02 functionals of 6 clips once (cached for later runs)." in first_log
    assert "Reading the eGeMAPSv02 functionals of 6 clips from the cache (computed by an earlier run)." in second_log
    assert second.cache_files[-1] == first.cache_files[-1]
    np.testing.assert_array_equal(np.asarray(first["functionals"]), np.asarray(second["functionals"]))


def test_resuming_says_when_no_complete_checkpoint_is_left_and_trains_from_scratch(tmp_path, tiny_ravdess, caplog):
    from tests.training.test_run_folder import truncate

    run = tmp_path / "run"
    values = dict(max_steps=4, save_steps=2, save_total_limit=None, load_best_model_at_end=False)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(run), **values)
    main([str(recipe)])
    for name in ("metrics.json", "model.safetensors"):  # as if killed after its last checkpoint
        (run / name).unlink()
    truncate(run / "checkpoint-4" / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        assert RunDir(run).last_complete_checkpoint() == str(run / "checkpoint-2")
    assert f"; resuming from the previous complete checkpoint, {run / 'checkpoint-2'}." in caplog.text
    truncate(run / "checkpoint-2" / "model.safetensors")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        (report,) = main([str(recipe)])
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Ignoring")]
    assert [w.split(":")[0] for w in warnings] == [f"Ignoring {run / f'checkpoint-{step}'}" for step in (4, 2)]
    assert all(w.endswith("; no complete checkpoint is left, so the run trains from scratch.") for w in warnings)
    assert "previous complete checkpoint" not in caplog.text
    assert report["training"]["resumed_from"] is None and (run / METRICS_FILE).is_file()


def test_a_recipe_that_is_not_utf8_is_named_with_its_line(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes("model_type: cnn2d\n# Données de l'été\nseed: 3\n".encode("latin-1"))
    assert cli_main(["train", str(recipe)]) == 2
    assert _ser_hf_lines(capsys) == [
        f"ser-hf: error: Recipe {recipe}, line 2: not UTF-8 text (invalid continuation byte at byte 24, b'\\xe9'). "
        "Save the recipe as UTF-8."
    ]


def test_a_model_with_code_of_its_own_names_the_flag_and_the_python_argument(tmp_path, tiny_crnn_folder, capsys):
    model = _model_copy(tiny_crnn_folder, tmp_path / "foreign")
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "someone_elses_model"
    config["auto_map"] = {"AutoConfig": "configuration_x.XConfig", "AutoModelForAudioClassification": "modeling_x.X"}
    (model / "config.json").write_text(json.dumps(config))
    clip = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    evaluate = ["evaluate", "--model", str(model), "--corpus", "ravdess", "--data-dir", str(REPO / "data")]
    for command in (["predict", str(model), str(clip), "--no-progress"], evaluate, ["export", str(model), "o"]):
        assert cli_main(command) == 2
        assert _ser_hf_lines(capsys) == [
            f"ser-hf: error: {model} holds model code of its own (auto_map in its config.json names code that is not "
            "ser-hf's), which runs only if you allow it: pass --trust-remote-code on the command line (ser-hf "
            "predict, evaluate, export, ensemble, app) or trust_remote_code=True in Python, once you have read that "
            f"code (the .py files in {model}) and trust it."
        ]


@pytest.fixture(scope="module")
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


def test_a_clip_too_short_for_opensmile_functionals_is_an_error_row_not_scores(
    tmp_path, tiny_opensmile_folder, capsys
):
    one_sample = tmp_path / "click.wav"
    soundfile.write(one_sample, np.array([0.1], dtype=np.float32), 16000)
    blip = write_audio(tmp_path / "blip.wav", seconds=0.05)
    sentence = write_audio(tmp_path / "sentence.wav", seconds=1.0)
    assert cli_main(["predict", str(tiny_opensmile_folder), str(tmp_path), "--no-progress"]) == 1
    rows = {Path(row["file"]).name: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    for clip, milliseconds in ((one_sample, "0.1"), (blip, "50.0")):
        assert rows[clip.name]["scores"] == {} and rows[clip.name]["error"] == (
            f"the clip is {milliseconds} ms long, shorter than one openSMILE frame (60.0 ms), below which its "
            "eGeMAPSv02 functionals are all NaN"
        )
    assert rows[sentence.name]["error"] is None and rows[sentence.name]["label"] is not None


def test_training_on_a_clip_too_short_for_opensmile_functionals_names_it_or_skips_it(tmp_path, tiny_ravdess):
    data = _linked_corpus(tiny_ravdess, tmp_path / "data")
    short = data / "Actor_01" / "03-01-05-02-02-02-01.wav"
    soundfile.write(short, np.array([0.1], dtype=np.float32), 16000)
    values = dict(
        model_type="opensmile",
        model_config={"hidden_sizes": [16]},
        feature_extractor_config={"feature_set": "eGeMAPSv02"},
        max_steps=2,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        output_dir=str(tmp_path / "run"),
    )
    recipe = write_recipe(tmp_path / "r.yaml", data, **values)
    for key in ("gain_prob", "num_time_masks"):  # spectrogram and waveform augmentation do not apply
        recipe.write_text("\n".join(line for line in recipe.read_text().splitlines() if not line.startswith(key)))
    problem = (
        f"{short}: 1 clip(s) are shorter than one openSMILE frame (60.0 ms), below which its eGeMAPSv02 "
        f"functionals are all NaN: {short} (0.1 ms). Remove them, or set skip_invalid: true to skip them"
    )
    with pytest.raises(InvalidClipError, match=f"^{re.escape(problem)}$"):
        main([str(recipe)])
    (report,) = main([str(recipe), "--skip_invalid", "true"])
    assert report["split"]["clips"]["train"] == 16 and str(short) not in json.dumps(report)


def test_evaluating_on_a_clip_too_short_for_opensmile_functionals_lists_it_unscored(
    tmp_path, tiny_ravdess, tiny_opensmile_folder, caplog
):
    # A globally normalised openSMILE model scored a 1-sample clip's all-NaN functionals (zeroed) as speech.
    data = _linked_corpus(tiny_ravdess, tmp_path / "data")
    short = data / "Actor_01" / "03-01-05-02-02-02-01.wav"
    soundfile.write(short, np.array([0.1], dtype=np.float32), 16000)
    output = tmp_path / "evaluation"
    evaluate = ["evaluate", "--model", str(tiny_opensmile_folder), "--corpus", "ravdess", "--data-dir", str(data)]
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        assert cli_main([*evaluate, "--output-dir", str(output)]) == 0
    report = json.loads((output / "eval_report.json").read_text())
    error = (
        "the clip is 0.1 ms long, shorter than one openSMILE frame (60.0 ms), below which its eGeMAPSv02 "
        "functionals are all NaN"
    )
    assert report["unscored_clips"] == [
        {"path": str(short), "speaker_id": "01", "duration": pytest.approx(1 / 16000), "error": error}
    ]
    (metrics,) = report["evaluation"].values()
    assert metrics["clips"] + sum(report["dropped_clips"].values()) == 4 * 8  # every clip of tiny_ravdess
    assert str(short) not in {clip["path"] for clip in metrics["clip_predictions"]}
    assert f"`{short}`: {error}" in (output / "eval_report.md").read_text()
    assert "Not scoring 1 clip(s) of ravdess (all), shorter than one openSMILE frame (60.0 ms)" in caplog.text
