"""The protocol abstraction (:mod:`ser_hf.experiments.protocol`): what :func:`run_protocol` does for every protocol
(refusing an override of a key the protocol sets, resuming from the result file, refusing other settings), shown on a
protocol written in a few lines as a new one would be; and leave-one-speaker-out, a protocol reached only through it
and through a recipe's ``split_protocol: loso``."""

from __future__ import annotations

import json

import pytest

from ser_hf.errors import RecipeError
from ser_hf.experiments.kfold import KFold
from ser_hf.experiments.loco import LeaveOneCorpusOut
from ser_hf.experiments.loso import LeaveOneSpeakerOut
from ser_hf.experiments.protocol import SPLIT_KEYS, Protocol, run_protocol
from tests.recipe.test_parser import write_recipe


class EachSeed(Protocol):
    """A protocol of three cells (a training seed each) that trains nothing: its rows record what it was asked."""

    experiment = "each-seed"
    title = "the each-seed protocol"
    sets_how = "a seed per cell"
    also_sets = ("seed", "output_dir")

    def __init__(self):
        self.trained = []

    def resolve(self, recipe, raw, values, run_dir, overrides, model_paths):
        self.values = {**self.without_split(values), "output_dir": str(run_dir)}

    def clip_record(self):
        return {"clips": 0}  # no clip loaded: the protocol trains nothing

    def settings(self):
        return {"seeds": [1, 2, 3]}

    def cells(self):
        return {f"seed={seed}": seed for seed in (1, 2, 3)}

    def train(self, todo):
        for key, seed in todo:
            self.trained.append(seed)
            if seed == 3 and getattr(self, "fail_on_3", False):
                raise KeyboardInterrupt  # an interruption after two cells
            yield {"key": key, "seed": seed, "unweighted_accuracy": 10.0 * seed}, {}

    def summarize(self, cells):
        return {"cells": len(cells), "mean": sum(cell["unweighted_accuracy"] for cell in cells) / max(len(cells), 1)}


def test_a_new_protocol_gets_resuming_refusals_and_the_result_file_from_run_protocol(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess)
    output = tmp_path / "each.json"
    interrupted = EachSeed()
    interrupted.fail_on_3 = True
    with pytest.raises(KeyboardInterrupt):
        run_protocol(interrupted, recipe, output, run_dir=tmp_path / "runs")
    # Written after every cell: the two finished cells are in the file.
    assert [cell["seed"] for cell in json.loads(output.read_text())["cells"]] == [1, 2]

    resumed = EachSeed()
    document = run_protocol(resumed, recipe, output, run_dir=tmp_path / "runs")
    assert resumed.trained == [3]  # the finished cells are read back, not trained again
    assert document["experiment"] == "each-seed" and document["summary"] == {"cells": 3, "mean": 20.0}
    # The resolved values are recorded: the protocol's own split replaced the recipe's.
    values = document["settings"]["recipe_values"]
    assert "test_speakers" not in values and values["output_dir"] == str(tmp_path / "runs")

    with pytest.raises(RecipeError, match=r"^seed, test_speakers: set by the each-seed protocol itself \(a seed"):
        run_protocol(EachSeed(), recipe, output, overrides={"seed": 4, "test_speakers": ["01"]})
    with pytest.raises(RecipeError, match="was written with overrides.max_steps = None, not 5"):
        run_protocol(EachSeed(), recipe, output, run_dir=tmp_path / "runs", overrides={"max_steps": 5})


def test_each_protocol_sets_the_split_keys_it_does_not_leave_to_the_recipe():
    """One list of split keys: k-fold leaves validation_size (its validation share) and train_only_corpora (a merged
    recipe's folds) to the recipe; leave-one-corpus-out sets them all."""
    assert set(LeaveOneCorpusOut.sets()) == {*SPLIT_KEYS, "output_dir"}
    assert set(KFold.sets()) == {*SPLIT_KEYS, "split_seed", "seed", "output_dir"} - {
        "validation_size",
        "train_only_corpora",
    }
    assert LeaveOneSpeakerOut.sets() == KFold.sets()


@pytest.mark.slow  # four one-step folds, then read back: about 25 s
def test_leave_one_speaker_out_tests_each_speaker_alone_and_resumes(tmp_path, tiny_ravdess, monkeypatch):
    recipe = write_recipe(
        tmp_path / "r.yaml", tiny_ravdess, eval_strategy="no", save_strategy="no", load_best_model_at_end=False
    )
    output, run_dir = tmp_path / "loso.json", tmp_path / "runs"
    options = dict(run_dir=run_dir, overrides={"max_steps": 1})
    document = run_protocol(LeaveOneSpeakerOut(fold_seed=3), recipe, output, **options)
    assert document["experiment"] == "loso" and document["settings"]["recipe_values"]["split_protocol"] == "loso"
    assert sorted(tuple(cell["test_speakers"]) for cell in document["cells"]) == [("01",), ("02",), ("03",), ("04",)]
    for cell in document["cells"]:
        report = json.loads((run_dir / f"fold-{cell['fold']}" / "metrics.json").read_text())
        assert cell["test_speakers"][0] not in report["split"]["speakers"]["train"]
        assert "validation" not in report["split"]["speakers"]  # it chooses nothing on validation speakers
    assert document["summary"]["folds"] == 4 and document["summary"]["mean"]["unweighted_accuracy"] >= 0
    # Run again: every fold is read back from its run (nothing trains), the result is the same.
    monkeypatch.setattr("ser_hf.training.trainer.SERTrainer.train", lambda *a, **k: pytest.fail("a fold trained"))
    assert run_protocol(LeaveOneSpeakerOut(fold_seed=3), recipe, output, **options)["cells"] == document["cells"]
    with pytest.raises(RecipeError, match="^num_folds: set by the leave-one-speaker-out protocol itself"):
        run_protocol(LeaveOneSpeakerOut(), recipe, output, overrides={"num_folds": 2})
