"""Self-training on the test split's unlabelled clips (``self_training_rounds``): which clips a round picks, that the
last model trains on them with the predicted labels, that an interrupted run resumes at its round, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from safetensors.torch import load_file

from ser_hf.errors import RecipeError
from ser_hf.run_folder import remove_run_outputs
from ser_hf.train import main
from ser_hf.training import self_training
from ser_hf.training.self_training import (
    PSEUDO_LABELS_FILE,
    pick_pseudo_labels,
    read_picks,
    round_folder,
    with_pseudo_labels,
    write_picks,
)
from ser_hf.training.trainer import SERTrainer
from tests.recipe.test_parser import write_recipe
from tests.training.test_train import TINY_MODELS, _Interrupt, _raise_at_step

# As recipes/ravdess_whisper_base_fast.yaml with corpus statistics, tiny: the head trained on the cached states.
FAST = {
    **TINY_MODELS["whisper-fast-speaker"],
    "pooling_mode": "layer_statistics",
    "feature_extractor_config": {"normalization": "corpus"},
    "validation_speakers": [],
    "train_speakers": ["01", "02", "03"],
    "eval_strategy": "no",
    "load_best_model_at_end": False,
    "save_total_limit": None,
    "max_steps": -1,
    "num_train_epochs": 2,
    "per_device_train_batch_size": 8,
}


def test_a_round_picks_the_surest_share_of_each_predicted_emotion():
    logits = np.log(
        np.array(
            [
                [0.9, 0.1, 0.0],  # 0, sure
                [0.6, 0.4, 0.0],  # 0, less sure
                [0.5, 0.3, 0.2],  # 0, least sure
                [0.2, 0.7, 0.1],  # 1, least sure
                [0.0, 0.95, 0.05],  # 1, sure
            ]
        )
        + 1e-9
    )
    rows, labels = pick_pseudo_labels(logits, share=0.5)
    # Class 0: 3 clips, half rounds to 2 (the two surest); class 1: 2 clips -> 1; class 2 is never predicted.
    assert rows.tolist() == [0, 1, 4] and labels.tolist() == [0, 0, 1]
    rows, labels = pick_pseudo_labels(logits, share=0.1)
    assert rows.tolist() == [0, 4] and labels.tolist() == [0, 1]  # at least one clip of each predicted emotion
    rows, _ = pick_pseudo_labels(logits, share=1.0)
    assert rows.tolist() == [0, 1, 2, 3, 4]


def test_picked_clips_join_the_training_split_with_the_predicted_labels_only():
    features = Features({"path": Value("string"), "label": ClassLabel(names=["a", "b", "c"]), "x": Value("int32")})
    train = Dataset.from_dict({"path": ["t0", "t1"], "label": [0, 1], "x": [0, 1]}, features=features)
    train = train.with_format("numpy", columns=["label", "x"], output_all_columns=True)  # as the model inputs are
    # The test split's own columns in another order, and its true labels, which must not survive.
    test = Dataset.from_dict({"x": [10, 11, 12], "label": [2, 2, 2], "path": ["u0", "u1", "u2"]})
    test = test.cast(
        Features({"x": Value("int32"), "label": ClassLabel(names=["a", "b", "c"]), "path": Value("string")})
    )
    merged = with_pseudo_labels(train, test, np.array([0, 2]), np.array([1, 0]))
    assert merged.features == train.features and merged.format == train.format
    assert merged["path"] == ["t0", "t1", "u0", "u2"]
    assert merged["label"] == [0, 1, 1, 0] and merged["x"] == [0, 1, 10, 12]


def test_a_finished_round_removes_its_checkpoints_and_nothing_else(tmp_path):
    folder = round_folder(tmp_path, 0)
    (folder / "checkpoint-2").mkdir(parents=True)
    (folder / "checkpoint-2" / "model.safetensors").write_bytes(b"weights")
    (folder / "my_notes.txt").write_text("a user's file")
    (folder / "checkpoint-notes").mkdir()  # a user's folder, not Trainer's checkpoint-N
    (folder / "checkpoint-notes" / "n.txt").write_text("kept")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("kept")
    (folder / "checkpoint-9").symlink_to(elsewhere, target_is_directory=True)
    write_picks(folder, np.array([0, 2]), np.array([1, 0]), ["a", "b"], test_clips=3)
    assert sorted(path.name for path in folder.iterdir()) == [
        "checkpoint-9",
        "checkpoint-notes",
        "my_notes.txt",
        PSEUDO_LABELS_FILE,
    ]
    assert (elsewhere / "keep.txt").read_text() == "kept"  # a link to a folder is never followed into
    rows, labels = read_picks(folder, 3)
    assert rows.tolist() == [0, 2] and labels.tolist() == [1, 0]


def test_picks_of_another_test_split_are_never_read_back(tmp_path):
    folder = round_folder(tmp_path, 0)
    assert read_picks(folder, 5) is None  # the round has not finished
    folder.mkdir()
    (folder / PSEUDO_LABELS_FILE).write_text(json.dumps({"test_clips": 3, "rows": [0], "labels": [1]}))
    with pytest.raises(RecipeError, match=r"self-training-round-0/pseudo_labels.json holds picks among 3 test clips"):
        read_picks(folder, 5)
    rows, labels = read_picks(folder, 3)
    assert rows.tolist() == [0] and labels.tolist() == [1]


# As recipes/ravdess_whisper_base_top2_speaker.yaml, tiny: the top layer fine-tuned on the cached lower one, each
# speaker's statistics refreshed with the current weights every epoch.
TOP_LAYER = {**FAST, **TINY_MODELS["whisper-top-layer"], "feature_extractor_config": {"normalization": "speaker"}}


@pytest.mark.parametrize(
    "values",
    [FAST, pytest.param(TOP_LAYER, marks=pytest.mark.slow)],  # make test stays within 5 minutes; CI runs both
    ids=["fast-corpus", "top-layer-speaker"],
)
def test_self_training_trains_the_last_model_on_the_picks_and_says_so(tmp_path, tiny_ravdess, monkeypatch, values):
    picked_from = []
    original = self_training.pick_pseudo_labels

    def recording(logits, share):
        picked_from.append(np.asarray(logits))
        return original(logits, share)

    monkeypatch.setattr("ser_hf.training.train_stage.pick_pseudo_labels", recording)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, **values, self_training_rounds=2, self_training_share=0.5)
    (report,) = main([str(recipe)])
    run = tmp_path / "run"
    test_clips = report.split.clips["test"]
    assert len(picked_from) == 2 and all(logits.shape[0] == test_clips for logits in picked_from)
    counts = report.training.self_training_clips
    for index, count in enumerate(counts):
        picks = json.loads((round_folder(run, index) / PSEUDO_LABELS_FILE).read_text())
        expected_rows, expected_labels = original(picked_from[index], 0.5)
        assert picks["rows"] == expected_rows.tolist() and picks["labels"] == expected_labels.tolist()
        assert count == len(picks["rows"]) and picks["test_clips"] == test_clips
        # The round's checkpoints are gone once it has picked.
        assert not list(round_folder(run, index).glob("checkpoint-*"))
    # The last model trained on the training clips and the last round's picks: 2 epochs of their batches.
    train_clips = report.split.clips["train"]
    assert report.training.global_step == 2 * -(-(train_clips + counts[-1]) // 8)
    # The figures are of a model adapted to the test clips, which the card says.
    card = (run / "README.md").read_text()
    assert "Self-training, transductive (2 round(s) before this model)" in card
    assert f"({counts[0]}, {counts[1]} clips)" in card
    # Overwriting removes the rounds with the run.
    remove_run_outputs(run)
    assert not list(run.glob("self-training-round-*"))


@pytest.mark.slow
def test_an_interrupted_self_training_run_resumes_at_its_round(tmp_path, tiny_ravdess, monkeypatch):
    values = dict(FAST, self_training_rounds=1)
    main([str(write_recipe(tmp_path / "a.yaml", tiny_ravdess, output_dir=str(tmp_path / "a"), **values))])
    interrupted = write_recipe(tmp_path / "b.yaml", tiny_ravdess, output_dir=str(tmp_path / "b"), **values)
    # Killed in the first round (its step 3; it saves every 2), then once more in the last model's training.
    monkeypatch.setattr(SERTrainer, "training_step", _raise_at_step(SERTrainer.training_step, at=3))
    with pytest.raises(_Interrupt):
        main([str(interrupted)])
    assert (tmp_path / "b" / "self-training-round-0" / "checkpoint-2").is_dir()
    assert not (tmp_path / "b" / "self-training-round-0" / PSEUDO_LABELS_FILE).exists()
    monkeypatch.undo()
    monkeypatch.setattr(SERTrainer, "training_step", _raise_in_the_last_model(SERTrainer.training_step, at=5))
    with pytest.raises(_Interrupt):
        main([str(interrupted)])
    assert (tmp_path / "b" / "self-training-round-0" / PSEUDO_LABELS_FILE).is_file()
    assert (tmp_path / "b" / "checkpoint-4").is_dir()
    monkeypatch.undo()
    (report,) = main([str(interrupted)])
    assert report.training.resumed_from.endswith("checkpoint-4")
    final_a = load_file(tmp_path / "a" / "model.safetensors")
    final_b = load_file(tmp_path / "b" / "model.safetensors")
    assert final_a.keys() == final_b.keys()
    assert all(torch.allclose(final_a[name], final_b[name], atol=1e-6) for name in final_a)


def _raise_in_the_last_model(step, at: int):
    """`step`, raising at step `at` of the last model's training (in the run's own folder), not of a round's."""

    def failing_step(self, *args, **kwargs):
        if self.state.global_step == at and not Path(self.args.output_dir).name.startswith("self-training-round-"):
            raise _Interrupt(f"killed at step {at} of the last model")
        return step(self, *args, **kwargs)

    return failing_step


def test_self_training_without_test_clips_is_refused_before_training(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, **FAST, test_speakers=[], self_training_rounds=1)
    with pytest.raises(RecipeError, match=r"self_training_rounds: 1 picks clips of the test split, but this split"):
        main([str(recipe)])
    assert not (tmp_path / "run" / "model.safetensors").exists()
