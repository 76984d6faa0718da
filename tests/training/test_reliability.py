"""Reliability of a training run: splits that cannot train (a class without clips, one emotion, a speaker in no
split, a missing corpus) stop before any step; too-short clips are named or skipped; a NaN loss stops the run naming
the step and the clips; a run killed mid-epoch resumes to the same weights, a finished one is not trained again, a
run without a complete checkpoint trains from scratch; weights are safetensors only."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from safetensors.torch import load_file

from ser_hf.cli import main as cli_main
from ser_hf.data.corpora import load_corpus
from ser_hf.data.corpora.base import InvalidClipError
from ser_hf.data.splits import SplitError
from ser_hf.errors import RecipeError
from ser_hf.inputs.collators import AudioClassificationCollator
from ser_hf.recipe.parser import parse_recipe
from ser_hf.run_folder import METRICS_FILE, RunDir
from ser_hf.run_record import RunReport
from ser_hf.train import main
from ser_hf.training.run_recipe import where_the_run_is
from ser_hf.training.trainer import NonFiniteLossError, SERTrainer
from tests.conftest import REPO, linked_corpus, write_audio
from tests.conftest_models import TINY_SSL, TINY_WHISPER
from tests.recipe.test_parser import write_recipe

pytestmark = pytest.mark.reliability


def test_a_class_without_training_clips_stops_the_run_naming_it(tmp_path, tiny_ravdess):
    # The training actors' calm clips (emotion code 02) are gone: calm could never be learnt, only mispredicted.
    data = linked_corpus(
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
        report.split.speakers == {"train": ["01", "02"], "validation": ["03"], "test": []}
        or "test" not in report.split.speakers
    )


def test_a_missing_data_directory_is_named_before_any_work(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "no_such_corpus", output_dir=str(tmp_path / "run"))
    # Named by the recipe's early check, before torch is imported (tests/recipe/test_keys.py).
    with pytest.raises(RecipeError, match=r"data_dir: '.*no_such_corpus' does not exist\. \(recipe "):
        main([str(recipe)])
    assert not (tmp_path / "run").exists()


def test_a_clip_shorter_than_the_encoders_receptive_field_is_named_or_skipped(tmp_path, tiny_ravdess):
    data = linked_corpus(tiny_ravdess, tmp_path / "data")
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
    # The tiny encoder's three convolutions (kernel 8, stride 4) see 8 + 7*4 + 7*16 = 148 samples (9.2 ms); the clip
    # is named when the corpus is decoded, before it is split.
    problem = f"{short}: 5.0 ms, shorter than the model's receptive field (9.2 ms)\nFix them, or leave them out"
    with pytest.raises(InvalidClipError, match=re.escape(problem)):
        main([str(write_recipe(tmp_path / "r.yaml", data, **values))])
    (report,) = main([str(write_recipe(tmp_path / "r.yaml", data, skip_invalid=True, **values))])
    assert report.split.clips["train"] == 16 and str(short) not in json.dumps(report.to_dict())


def _whole_clip_whisper_recipe(tmp_path: Path, mode: str, **changes) -> dict:
    """The recipe values of a tiny Whisper model that reads each clip whole ("raw audio", or "top layers" fine-tuned on
    their cached input) through a 4-s window: 10 of tiny_ravdess's 32 clips run 4.004-5.005 s, one of them a test
    clip, about half of each silence."""
    values = dict(
        model_type="whisper",
        model_config=TINY_WHISPER,
        encoder_window_seconds=4,
        max_steps=1,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        output_dir=str(tmp_path / "run"),
    )
    if mode == "top layers":
        values.update(
            model_config={**TINY_WHISPER, "trim_window": True},
            freeze_base_model=True,
            cache_encoder_outputs=True,
            finetune_top_layers=1,
            use_weighted_layer_sum=True,
            pooling_mode="layer_statistics",
        )
    return {**values, **changes}


@pytest.mark.parametrize("mode", ["raw audio", "top layers"])
def test_a_clip_longer_than_a_whisper_window_read_whole_is_named_with_its_duration_or_skipped(
    tmp_path, tiny_ravdess, mode
):
    """A Whisper model that reads each clip whole (raw audio, or layers fine-tuned on cached inputs) cannot take a
    clip longer than its window: the clip is named with its duration before anything is encoded, or skipped with
    skip_invalid. (FAST mode encodes such a clip in windows; see tests/inputs.)"""
    values = _whole_clip_whisper_recipe(tmp_path, mode)
    with pytest.raises(InvalidClipError) as error:
        main([str(write_recipe(tmp_path / "r.yaml", tiny_ravdess, **values))])
    message = str(error.value)
    assert re.search(r"10 clip\(s\) are longer than the encoder's 4-s window .*: \S+\.flac \(\d\.\d{3} s", message), (
        message
    )
    assert (
        "(5.005 s" in message and "(4.004 s" in message
    )  # with its split, where the corpus is split first and "set skip_invalid: true to skip them" in message
    # Every disgust clip is one of them: the skipping run leaves the class out, or no training speaker would have it.
    labels = ["neutral", "calm", "happy", "sad", "angry", "fearful", "surprised"]
    skipping = write_recipe(tmp_path / "r.yaml", tiny_ravdess, skip_invalid=True, labels=labels, **values)
    (report,) = main([str(skipping)])
    clips = report.split.clips
    assert clips["test"] == 7 and sum(clips.values()) == 28 - 6, clips


@pytest.mark.slow  # four trainings: about 10 s
@pytest.mark.parametrize("mode", ["raw audio", "top layers"])
def test_a_whisper_model_that_trims_silence_trains_on_clips_longer_than_its_window_by_their_silence_alone(
    tmp_path, tiny_ravdess, mode
):
    """With `trim_silence_db`, a clip is read as the extractor trims it: RAVDESS clips longer than a 4-s window by
    their silence train, and a clip longer once trimmed is still named before anything is encoded."""
    values = _whole_clip_whisper_recipe(tmp_path, mode, feature_extractor_config={"trim_silence_db": 30})
    data = linked_corpus(tiny_ravdess, tmp_path / "data")
    long = data / "Actor_01" / "03-01-05-02-02-02-01.wav"  # a 33rd clip, 5 s of noise: nothing to trim
    soundfile.write(long, np.random.default_rng(0).normal(0, 0.1, 16000 * 5).astype(np.float32), 16000)
    with pytest.raises(InvalidClipError) as error:
        main([str(write_recipe(tmp_path / "r.yaml", data, **values))])
    message = str(error.value)
    assert "1 clip(s) are longer than the encoder's 4-s window once trimmed" in message
    assert f"{long} (5.000 s" in message
    long.unlink()
    (report,) = main([str(write_recipe(tmp_path / "r.yaml", data, **values))])
    assert sum(report.split.clips.values()) == 32  # every clip, the ten longer than the window included


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


KILLER = """
import os, signal, sys
from transformers import TrainerCallback
from ser_hf.training import trainer as trainer_module
from ser_hf.train import main
from ser_hf.training.run_recipe import where_the_run_is

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


@pytest.mark.slow
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
    assert report.training.resumed_from.endswith("checkpoint-4")
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
    assert again.to_dict() == json.loads((tmp_path / "run" / METRICS_FILE).read_text())
    assert weights.stat().st_mtime_ns == written and "overwrite_output_dir" in caplog.text
    (retrained,) = main([str(recipe), "--overwrite_output_dir", "true", "--learning_rate", "0.1"])
    assert weights.stat().st_mtime_ns != written and retrained.training.resumed_from is None


def test_weights_are_written_as_safetensors_only(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, max_steps=2, output_dir=str(tmp_path / "run"))
    main([str(recipe)])
    names = {path.name for path in (tmp_path / "run").rglob("*") if path.is_file()}
    assert "model.safetensors" in names
    assert not names & {"pytorch_model.bin", "model.bin", "adapter_model.bin"}


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
    assert where_the_run_is(Path("runs/kfold"), [RunReport(fold=0), RunReport(fold=1)]) == (
        "Finished: the run is in runs/kfold (2 fold model(s) in fold-0, fold-1, mean ± std in summary.json)"
    )


def test_a_training_split_of_one_emotion_stops_before_the_model_is_built(tmp_path, tiny_ravdess, capsys):
    data = linked_corpus(tiny_ravdess, tmp_path / "data", keep=lambda clip: clip.name.split("-")[2] == "05")
    recipe = write_recipe(tmp_path / "r.yaml", data, output_dir=str(tmp_path / "run"))
    assert cli_main(["train", str(recipe)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "ser-hf: error: The training split holds clips of one emotion only ('angry', all 2 of them): a classifier of "
        "one label learns nothing and scores 100 % UA. Point data_dir at a corpus with at least two emotions, or "
        f"widen labels/label_map (recipe {recipe})."
    )
    assert not (tmp_path / "run" / "config.json").exists() and not any((tmp_path / "run").glob("checkpoint-*"))


def test_validation_and_test_splits_missing_training_labels_are_a_warning(tmp_path, tiny_ravdess, caplog):
    from ser_hf.training.data_stage import audit_split, make_folds

    # Sad (04) only for the training actors 01 and 02: validation (03) and test (04) hold angry alone.
    data = linked_corpus(
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


# Resuming an interrupted training: in `make test-slow`, to keep `make test` under 5 minutes.
@pytest.mark.slow
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
    assert report.training.resumed_from is None and (run / METRICS_FILE).is_file()


def _nan_inf_and_short_clips(data: Path, short_samples: int) -> dict[str, Path]:
    """A NaN clip, an infinite-valued clip and one of ``short_samples`` samples, angry clips of training speaker 01."""
    bad = {}
    for index, (values, what) in enumerate(
        [(np.full(4000, np.nan), "nan"), (np.full(4000, np.inf), "inf"), (np.full(short_samples, 0.1), "short")]
    ):
        path = data / "Actor_01" / f"03-01-05-01-02-0{index + 1}-01.wav"
        soundfile.write(path, values.astype(np.float32), 16000, subtype="FLOAT")
        bad[what] = path
    return bad


def _skipping_warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.getMessage().startswith("Skipping")]


def test_a_nan_an_inf_and_a_clip_shorter_than_an_opensmile_frame_are_named_in_one_error_or_skipped_in_one_warning(
    tmp_path, tiny_ravdess, caplog
):
    """Issue 78: a 10-ms clip (shorter than one openSMILE frame: its functionals would all be NaN) is named in the
    same error as the NaN and infinite clips, not on the next run; skip_invalid leaves all three out with one
    warning."""
    data = linked_corpus(tiny_ravdess, tmp_path / "data")
    bad = _nan_inf_and_short_clips(data, short_samples=160)
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
    with pytest.raises(InvalidClipError) as error:
        main([str(recipe)])
    message = str(error.value)
    assert message.startswith("3 unusable ravdess clip(s):\n"), message
    assert f"{bad['nan']}: the audio contains NaN or infinite sample values" in message
    assert f"{bad['inf']}: the audio contains NaN or infinite sample values" in message
    assert (
        f"{bad['short']}: 10.0 ms, shorter than one openSMILE frame (60.0 ms), below which its eGeMAPSv02 "
        "functionals are all NaN" in message
    )
    assert message.endswith("(each one it leaves out is logged).") and "skip_invalid: true" in message
    assert not (tmp_path / "run").exists()
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        (report,) = main([str(recipe), "--skip_invalid", "true"])
    (warning,) = _skipping_warnings(caplog)
    assert warning.startswith("Skipping 3 unusable ravdess clip(s):\n")
    assert all(str(path) in warning for path in bad.values())
    assert report.split.clips["train"] == 16  # the tiny corpus' clips, none of the three


def test_a_run_on_a_corpus_that_changed_since_is_not_read_back_and_names_the_change(tmp_path, tiny_ravdess):
    data = linked_corpus(tiny_ravdess, tmp_path / "data")
    recipe = write_recipe(
        tmp_path / "r.yaml",
        data,
        max_steps=2,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        output_dir=str(tmp_path / "run"),
    )
    (first,) = main([str(recipe)])
    assert main([str(recipe)]) == [first]  # the same corpus: the finished run is read back
    before = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "run").iterdir()}
    # A test clip's bytes replaced by another recording of the speaker (one the corpus lacks), its name kept.
    replaced = sorted((data / "Actor_04").iterdir())[1]
    other = sorted((REPO / "data" / "ravdess_sample" / "Actor_04").iterdir())[1]
    replaced.unlink()
    replaced.write_bytes(other.read_bytes())
    with pytest.raises(RecipeError) as error:
        main([str(recipe)])
    message = str(error.value)
    assert (
        f"(test: 8 clips then and now, 1 clip changed: Actor_04/{replaced.name} (other contents); recorded" in message
    )
    # Clips deleted from a training and a test speaker: the old report is not this corpus' any more.
    deleted = [sorted((data / actor).iterdir())[0] for actor in ("Actor_01", "Actor_04")]
    for clip in deleted:
        clip.unlink()
    with pytest.raises(RecipeError) as error:
        main([str(recipe)])
    message = str(error.value)
    assert "\n" not in message and "holds a run on other clips than the corpus holds now" in message
    assert (
        f"train: 16 clips then, 15 now (speaker 01: 8 -> 7), 1 clip changed: Actor_01/{deleted[0].name} (gone)"
        in message
    )
    assert "test: 8 clips then, 7 now (speaker 04: 8 -> 7), 2 clips changed: " in message
    assert f"Actor_04/{deleted[1].name} (gone), Actor_04/{replaced.name} (other contents)" in message
    assert "validation" not in message and "clip_fingerprint.json" in message and "overwrite_output_dir" in message
    assert {path.name: path.stat().st_mtime_ns for path in (tmp_path / "run").iterdir()} == before  # nothing lost
    # A fingerprint an earlier ser-hf wrote (no clip contents) cannot vouch for the clips: refused in one line.
    fingerprint = tmp_path / "run" / "clip_fingerprint.json"
    earlier = {split: {"clips": record["clips"], "speakers": record["speakers"], "sha256": "0" * 64}
               for split, record in json.loads(fingerprint.read_text()).items()}  # fmt: skip
    fingerprint.write_text(json.dumps(earlier))
    with pytest.raises(RecipeError, match="an earlier ser-hf wrote without the clips' contents") as error:
        main([str(recipe)])
    assert "\n" not in str(error.value) and "overwrite_output_dir" in str(error.value)
    (retrained,) = main([str(recipe), "--overwrite_output_dir", "true"])
    assert retrained.split.clips == {"train": 15, "validation": 8, "test": 7}


def test_corpus_weights_are_matched_as_the_loader_matches_names_scaled_before_dividing_and_said_when_idle(
    tmp_path, tiny_ravdess, caplog
):
    from types import SimpleNamespace

    from datasets import Dataset

    from ser_hf.training.train_stage import training_sample_weights

    def data_args(corpus, weights):
        recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, corpus=corpus, corpus_weights=weights)
        return parse_recipe([str(recipe), "--data_dir", str(tiny_ravdess), str(tiny_ravdess)])[1]

    corpora = ["ravdess"] * 90 + ["tess"] * 10
    train = Dataset.from_dict({"corpus": corpora})
    # Named as the recipe names its corpora, in capitals: the weights reach the clips (was "no weight to 'ravdess'").
    upper = data_args(["RAVDESS", "TESS"], {"RAVDESS": 1, "TESS": 3})
    assert upper.corpus_weights == {"ravdess": 1.0, "tess": 3.0}
    assert training_sample_weights(train, upper)[90:].sum() == pytest.approx(0.75)
    assert data_args(["cremad", "ravdess"], {"CREMA-D": 2}).corpus_weights == {"cremad": 2.0, "ravdess": 1.0}
    # Huge but equal weights draw evenly (the shares overflowed to "ravdess 0 %, tess 0 %").
    huge = data_args(["ravdess", "tess"], {"ravdess": 1.0e308, "tess": 1.0e308})
    weights = training_sample_weights(train, huge)
    assert np.isfinite(weights).all() and weights[90:].sum() == pytest.approx(0.5)
    # A weight too small beside the largest to draw anything, or one corpus named twice: refused when read.
    with pytest.raises(RecipeError, match=r"corpus_weights: the weight of 'tess' is too small beside the largest"):
        data_args(["ravdess", "tess"], {"ravdess": 1.0e300, "tess": 1.0e-300})
    with pytest.raises(
        RecipeError,
        match=r"corpus_weights names corpus 'ravdess' twice \('(RAVDESS|ravdess)' and '(ravdess|RAVDESS)'\)",
    ):
        data_args(["ravdess", "tess"], {"ravdess": 1, "RAVDESS": 2})
    # A weight whose corpus has no training clip is said to have no effect.
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        only_ravdess = training_sample_weights(Dataset.from_dict({"corpus": ["ravdess"] * 4}), upper)
    assert only_ravdess.sum() == pytest.approx(1.0)
    assert "corpus_weights gives 'tess' a weight, but the training split holds no clip of it" in caplog.text
    # A folder corpus (its column holds its corpus_name) takes the weight of "folder".
    folder = SimpleNamespace(corpus_weights={"folder": 3.0, "ravdess": 1.0})
    mixed = Dataset.from_dict({"corpus": ["ravdess"] * 6 + ["my_clips"] * 2})
    assert training_sample_weights(mixed, folder)[6:].sum() == pytest.approx(0.75)


def test_a_nan_an_inf_and_a_too_short_clip_are_named_in_one_error(tmp_path, tiny_ravdess, caplog):
    data = linked_corpus(tiny_ravdess, tmp_path / "data")
    bad = _nan_inf_and_short_clips(data, short_samples=80)
    model = {"model_type": "wav2vec2", "model_config": TINY_SSL}  # receptive field 148 samples, 9.25 ms
    recipe = write_recipe(tmp_path / "r.yaml", data, max_steps=1, **model)
    with pytest.raises(InvalidClipError) as error:
        main([str(recipe)])
    message = str(error.value)
    assert message.startswith("3 unusable ravdess clip(s):"), message
    assert f"{bad['nan']}: the audio contains NaN or infinite sample values" in message
    assert f"{bad['inf']}: the audio contains NaN or infinite sample values" in message
    assert f"{bad['short']}: 5.0 ms, shorter than the model's receptive field (9.2 ms)" in message
    assert "skip_invalid" in message and not (tmp_path / "run").exists()
    # skip_invalid: the three left out with one warning, before the model is built (no later "Skipping 1 clip").
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        (report,) = main([str(recipe), "--skip_invalid", "true", "--eval_strategy", "no", "--save_strategy", "no"])
    (warning,) = _skipping_warnings(caplog)
    assert warning.startswith("Skipping 3 unusable ravdess clip(s):") and all(str(p) in warning for p in bad.values())
    assert report.split.clips["train"] == 16


def test_a_checkpoint_past_the_runs_max_steps_is_passed_over_by_name_or_refused(tmp_path, tiny_ravdess, caplog):
    run = tmp_path / "run"
    for step in (2, 6):
        (run / f"checkpoint-{step}").mkdir(parents=True)
        (run / f"checkpoint-{step}" / "trainer_state.json").write_text(
            json.dumps({"global_step": step, "max_steps": 6})
        )
    assert RunDir(run).last_complete_checkpoint() == str(run / "checkpoint-6")
    # Valid, but past this run's smaller max_steps: resumed, it would end at once ("Finished", no warning).
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        assert RunDir(run).last_complete_checkpoint(max_steps=4) == str(run / "checkpoint-2")
    assert (
        f"Ignoring {run / 'checkpoint-6'}: its step 6 is past this run's max_steps 4; resuming from the previous "
        f"complete checkpoint, {run / 'checkpoint-2'}." in caplog.text
    )
    # Named by resume_from_checkpoint: refused, naming it, its step and max_steps, before the model is built.
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, max_steps=4, output_dir=str(tmp_path / "other"))
    with pytest.raises(RecipeError) as error:
        main([str(recipe), "--resume_from_checkpoint", str(run / "checkpoint-6")])
    assert str(error.value).startswith(
        f"resume_from_checkpoint {run / 'checkpoint-6'} is at step 6, past this run's max_steps 4"
    )
    assert not any((tmp_path / "other").glob("checkpoint-*"))
