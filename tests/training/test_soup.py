"""Model soups (``soup_size``): the kept model is the average of its members' trained weights, every member starts
from the same weights, finished members are read back instead of trained again, and the card says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from ser_hf.errors import RecipeError
from ser_hf.run_folder import remove_run_outputs
from ser_hf.train import main
from ser_hf.training import soup
from ser_hf.training.soup import (
    SOUP_MEMBER_FILE,
    average_weights,
    member_folder,
    read_member,
    train_members,
    trained_weights,
    write_member,
)
from ser_hf.training.trainer import SERTrainer
from tests.recipe.test_parser import write_recipe
from tests.training.test_self_training import FAST
from tests.training.test_train import _Interrupt


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)  # frozen, as an encoder is: never averaged, never written
    return model


def test_the_soup_is_the_mean_of_its_members_trainable_weights():
    members = [
        {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0])},
        {"w": torch.tensor([3.0, 6.0]), "b": torch.tensor([1.0])},
    ]
    averaged = average_weights(members)
    assert torch.equal(averaged["w"], torch.tensor([2.0, 4.0])) and torch.equal(averaged["b"], torch.tensor([0.5]))
    assert set(trained_weights(_model())) == {"0.bias", "1.weight", "1.bias"}
    with pytest.raises(ValueError, match="one member at least"):
        average_weights([])


def test_members_start_from_the_same_weights_and_finished_ones_are_read_back(tmp_path):
    model = _model()
    start = trained_weights(model)
    frozen = model[0].weight.detach().clone()
    seen = []

    def train_member(index: int, folder: Path) -> bool:
        # Each member begins where the run began, whatever the one before it trained to.
        seen.append((index, folder.name, all(torch.equal(start[n], w) for n, w in trained_weights(model).items())))
        (folder / "checkpoint-3").mkdir(parents=True)  # what Trainer leaves; gone once the member is kept
        with torch.no_grad():
            model[1].weight.add_(float(index))
        return True

    members = train_members(model, 3, tmp_path, train_member)
    assert seen == [(1, "soup-1", True), (2, "soup-2", True)]
    assert all(torch.equal(start[n], w) for n, w in trained_weights(model).items())  # member 0 starts there too
    assert torch.equal(model[0].weight, frozen)
    for index, member in enumerate(members, start=1):
        assert torch.equal(member["1.weight"], start["1.weight"] + index)
        assert sorted(path.name for path in member_folder(tmp_path, index).iterdir()) == [SOUP_MEMBER_FILE]
        assert set(load_file(member_folder(tmp_path, index) / SOUP_MEMBER_FILE)) == set(start)
    # Run again (an interrupted run resumed): nothing trains, the kept weights come back.
    again = train_members(model, 3, tmp_path, lambda index, folder: pytest.fail("trained again"))
    assert all(torch.equal(a["1.weight"], b["1.weight"]) for a, b in zip(members, again))
    assert train_members(model, 1, tmp_path, lambda index, folder: pytest.fail("no member")) == []


def test_a_member_of_another_model_is_refused_naming_its_file(tmp_path):
    write_member(member_folder(tmp_path, 1), {"other.weight": torch.zeros(2)})
    with pytest.raises(RecipeError, match=r"soup-1/soup_member.safetensors holds weights of another model"):
        train_members(_model(), 2, tmp_path, lambda index, folder: True)
    assert read_member(member_folder(tmp_path, 2)) is None


def test_a_soup_run_keeps_the_average_of_its_members_and_says_so(tmp_path, tiny_ravdess, monkeypatch):
    last_member = {}
    original = soup.finish_soup

    def recording(model, members):
        last_member.update(trained_weights(model))  # member 0, just trained by the run's own trainer
        return original(model, members)

    monkeypatch.setattr("ser_hf.training.train_stage.finish_soup", recording)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, **FAST, soup_size=3)
    (report,) = main([str(recipe)])
    run = tmp_path / "run"
    members = [last_member] + [read_member(member_folder(run, index)) for index in (1, 2)]
    assert not torch.equal(members[1]["classifier.weight"], members[2]["classifier.weight"])  # seeds differ
    saved = load_file(run / "model.safetensors")
    for name, value in average_weights(members).items():
        assert torch.allclose(saved[name], value, atol=1e-6), name
    assert "| soup_size | 3 |" in (run / "README.md").read_text()
    assert report.split.clips["test"] and report.evaluation["test"].unweighted_accuracy is not None
    remove_run_outputs(run)  # overwriting removes the members with the run
    assert not list(run.glob("soup-*"))


def test_an_interrupted_soup_trains_no_finished_member_again(tmp_path, tiny_ravdess, monkeypatch):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, **FAST, soup_size=3)
    step = SERTrainer.training_step

    def killed_in_the_second_member(self, *args, **kwargs):
        if Path(self.args.output_dir).name == "soup-2":
            raise _Interrupt("killed in member 2")
        return step(self, *args, **kwargs)

    monkeypatch.setattr(SERTrainer, "training_step", killed_in_the_second_member)
    with pytest.raises(_Interrupt):
        main([str(recipe)])
    run = tmp_path / "run"
    kept = read_member(member_folder(run, 1))
    assert kept is not None and read_member(member_folder(run, 2)) is None
    trained = []

    def recording(self, *args, **kwargs):
        trained.append(Path(self.args.output_dir).name)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(SERTrainer, "training_step", recording)
    main([str(recipe)])
    assert "soup-1" not in trained and {"soup-2", "run"} <= set(trained)
    assert torch.equal(read_member(member_folder(run, 1))["classifier.weight"], kept["classifier.weight"])
