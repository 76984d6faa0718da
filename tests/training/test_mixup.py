"""Mixup in training (``mixup_alpha``): the loss it gives, that it mixes training batches only, that 0 leaves training
as it was, and that the recipe refuses it for models whose inputs cannot be mixed."""

from __future__ import annotations

import pytest
import torch
from transformers import PretrainedConfig, set_seed

from ser_hf.errors import RecipeError
from ser_hf.inputs.augment import check_model_augmentation
from ser_hf.recipe.parser import parse_recipe
from ser_hf.training.trainer import SERTrainer
from tests.recipe.test_parser import write_recipe

WEIGHTS = torch.tensor([0.5, 1.0, 2.0])
FEATURES = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
LABELS = torch.tensor([0, 1, 2, 2, 1, 0])


class Head(torch.nn.Module):
    """A linear head over fixed-size ``input_features`` that records the inputs it was given."""

    def __init__(self):
        super().__init__()
        self.config = PretrainedConfig()
        self.linear = torch.nn.Linear(4, 3)
        self.seen = []

    def forward(self, input_features):
        self.seen.append(input_features)
        return {"logits": self.linear(input_features)}


def make_trainer(tmp_path, mixup_alpha: float) -> SERTrainer:
    recipe = write_recipe(
        tmp_path / "r.yaml", tmp_path, label_smoothing_factor=0.2, eval_strategy="no", load_best_model_at_end=False
    )
    training_args = parse_recipe([str(recipe)])[3]
    return SERTrainer(model=Head(), args=training_args, class_weights=WEIGHTS, mixup_alpha=mixup_alpha)


def plain_loss(logits, labels):
    return torch.nn.CrossEntropyLoss(weight=WEIGHTS, label_smoothing=0.2)(logits, labels)


def test_mixup_loss_is_the_lambda_weighted_loss_of_both_label_sets(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, mixup_alpha=0.4)
    monkeypatch.setattr(trainer, "mixup_lambda", lambda: 0.3)
    model = Head().train()
    torch.manual_seed(1)
    loss = trainer.compute_loss(model, {"input_features": FEATURES.clone(), "labels": LABELS})

    torch.manual_seed(1)
    order = torch.randperm(len(LABELS))
    assert not torch.equal(order, torch.arange(len(LABELS)))
    mixed = 0.3 * FEATURES + 0.7 * FEATURES[order]
    assert torch.allclose(model.seen[0], mixed)
    logits = model.linear(mixed)
    expected = 0.3 * plain_loss(logits, LABELS) + 0.7 * plain_loss(logits, LABELS[order])
    assert torch.allclose(loss, expected)
    assert not torch.allclose(loss, plain_loss(logits, LABELS))


def test_mixup_leaves_evaluation_batches_alone(tmp_path):
    trainer = make_trainer(tmp_path, mixup_alpha=0.4)
    model = Head().eval()
    loss, outputs = trainer.compute_loss(
        model, {"input_features": FEATURES.clone(), "labels": LABELS}, return_outputs=True
    )
    assert torch.equal(model.seen[0], FEATURES)
    assert torch.allclose(loss, plain_loss(model.linear(FEATURES), LABELS))


def test_mixup_draws_are_reproducible_under_set_seed(tmp_path):
    trainer = make_trainer(tmp_path, mixup_alpha=0.4)
    model = Head().train()
    losses = []
    for _ in range(2):
        set_seed(3)
        losses.append(trainer.compute_loss(model, {"input_features": FEATURES.clone(), "labels": LABELS}))
    assert torch.equal(losses[0], losses[1])
    assert torch.equal(model.seen[0], model.seen[1]) and not torch.equal(model.seen[0], FEATURES)


def test_mixup_alpha_0_trains_as_before(tmp_path):
    trainer = make_trainer(tmp_path, mixup_alpha=0.0)
    model = Head().train()
    torch.manual_seed(5)
    loss = trainer.compute_loss(model, {"input_features": FEATURES.clone(), "labels": LABELS})
    # Nothing mixed, nothing drawn: the random stream (dropout, crops) is the one training had without the option.
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3))
    assert torch.equal(model.seen[0], FEATURES)
    assert torch.equal(loss, plain_loss(model.linear(FEATURES), LABELS))


def test_recipe_takes_mixup_for_functionals_and_refuses_it_for_variable_length_inputs(tmp_path):
    functionals = write_recipe(tmp_path / "f.yaml", tmp_path, model_type="opensmile", model_config={}, mixup_alpha=0.4)
    model_args, _, augmentation_args, _ = parse_recipe([str(functionals)])
    check_model_augmentation(augmentation_args, model_args)
    assert augmentation_args.mixup_alpha == 0.4
    model_args, _, augmentation_args, _ = parse_recipe(
        [str(write_recipe(tmp_path / "r.yaml", tmp_path, mixup_alpha=0.4))]
    )
    with pytest.raises(RecipeError, match="mixup_alpha: 0.4 mixes fixed-size inputs .*cnn2d reads clips of varying"):
        check_model_augmentation(augmentation_args, model_args)
    with pytest.raises(RecipeError, match=r"mixup_alpha must be 0 \(off\) or positive, got -0.2"):
        parse_recipe([str(write_recipe(tmp_path / "bad.yaml", tmp_path, mixup_alpha=-0.2))])
