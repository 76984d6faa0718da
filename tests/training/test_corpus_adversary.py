"""Domain-adversarial training across the training corpora (``corpus_adversarial_weight``): the gradient reversal,
its schedule, the adversary's loss, the batches' corpus labels, the trainer's loss, the recipe checks and a FAST run
on two corpora."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from ser_hf.errors import RecipeError
from ser_hf.recipe import Recipe
from ser_hf.recipe.parser import parse_recipe
from ser_hf.train import main
from ser_hf.training.corpus_adversary import (
    CORPUS_LABELS_KEY,
    CorpusAdversary,
    CorpusLabelsCollator,
    GradientReversal,
    attach_corpus_adversary,
    reversal_scale,
)
from ser_hf.training.trainer import SERTrainer
from tests.recipe.test_parser import write_recipe
from tests.training.test_train import TINY_MODELS


def test_the_reversal_layer_passes_values_and_reverses_scaled_gradients_on_ganins_schedule():
    inputs = torch.randn(3, 4, requires_grad=True)
    outputs = GradientReversal.apply(inputs, 0.25)
    assert torch.equal(outputs, inputs)
    (outputs * torch.arange(4.0)).sum().backward()
    assert torch.allclose(inputs.grad, -0.25 * torch.arange(4.0).expand(3, 4))
    # 0 at the start, the weight times 2 / (1 + e^-10p) - 1 after, never above the weight.
    assert reversal_scale(0.5, 0.0) == 0.0
    assert reversal_scale(0.5, 0.1) == pytest.approx(0.5 * (2 / (1 + math.exp(-1)) - 1))
    assert reversal_scale(0.5, 1.0) == pytest.approx(0.5, abs=1e-4) and reversal_scale(0.5, 2.0) <= 0.5


def test_the_adversary_weighs_each_corpus_by_the_inverse_of_its_share_of_the_batch():
    torch.manual_seed(0)
    adversary = CorpusAdversary(8, 3)
    projected = torch.randn(6, 8, requires_grad=True)
    corpora = torch.tensor([0, 0, 0, 0, 1, 2])
    loss = adversary(projected, corpora, scale=0.5)
    logits = adversary.layers(projected)
    weights = torch.tensor([6 / (3 * 4), 6 / 3, 6 / 3])
    assert torch.allclose(loss, nn.functional.cross_entropy(logits, corpora, weight=weights))
    # The adversary learns to tell the corpora apart; the projection gets the opposite gradient, scaled.
    loss.backward()
    reference = projected.detach().clone().requires_grad_(True)
    nn.functional.cross_entropy(adversary.layers(reference), corpora, weight=weights).backward()
    assert torch.allclose(projected.grad, -0.5 * reference.grad)
    with pytest.raises(ValueError, match="two training corpora or more, got 1"):
        CorpusAdversary(8, 1)


def test_training_batches_carry_each_clips_corpus_and_an_unknown_corpus_is_named():
    collator = CorpusLabelsCollator(lambda rows: {"labels": torch.tensor([row["label"] for row in rows])}, ["a", "b"])
    batch = collator([{"label": 1, "corpus": "b"}, {"label": 0, "corpus": "a"}, {"label": 2, "corpus": "b"}])
    assert batch[CORPUS_LABELS_KEY].tolist() == [1, 0, 1] and batch["labels"].tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match="corpus 'c' is none of the training corpora \\['a', 'b'\\]"):
        collator([{"label": 1, "corpus": "c"}])


class _Head(nn.Module):
    """A head as FAST mode trains it: a linear projector and a classifier of the projection."""

    def __init__(self):
        super().__init__()
        self.projector = nn.Linear(6, 4)
        self.classifier = nn.Linear(4, 3)

    def forward(self, encoder_states, **kwargs):
        return {"logits": self.classifier(self.projector(encoder_states))}


def test_the_trainer_adds_the_adversarys_loss_to_training_batches_only(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, eval_strategy="no", load_best_model_at_end=False)
    _, _, _, training_args = parse_recipe([str(recipe)])
    torch.manual_seed(0)
    head = _Head()
    with pytest.raises(ValueError, match="the model has no corpus adversary"):
        SERTrainer(model=head, args=training_args, corpus_adversarial_weight=1.0)
    adversary = attach_corpus_adversary(head, ["a", "b"])
    trainer = SERTrainer(model=head, args=training_args, corpus_adversarial_weight=1.0)
    states, labels, corpora = torch.randn(5, 6), torch.tensor([0, 1, 2, 1, 0]), torch.tensor([0, 0, 1, 1, 1])
    emotion_loss = nn.functional.cross_entropy(head(states)["logits"], labels)
    head.train()
    loss = trainer.compute_loss(head, {"encoder_states": states, "labels": labels, CORPUS_LABELS_KEY: corpora})
    assert torch.allclose(loss, emotion_loss + adversary(head.projector(states), corpora, 0.0))
    head.eval()
    evaluated = trainer.compute_loss(head, {"encoder_states": states, "labels": labels})
    assert torch.allclose(evaluated, emotion_loss)
    # The adversary trains as part of the head (head_learning_rate), so checkpoints hold it.
    assert any(name.startswith("corpus_adversary.") for name, _ in head.named_parameters())


def test_a_recipe_is_refused_the_adversary_without_cached_states_or_two_corpora(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, corpus_adversarial_weight=1.0)
    with pytest.raises(RecipeError) as error:
        Recipe.parse([str(recipe)])
    assert "corpus_adversarial_weight: 1: it reads the head's projection" in str(error.value)
    assert "cache_encoder_outputs: true" in str(error.value) and "the recipe reads ravdess" in str(error.value)
    with pytest.raises(RecipeError, match="corpus_adversarial_weight must be 0 \\(off\\) or positive, got -1"):
        parse_recipe([str(write_recipe(tmp_path / "n.yaml", tiny_ravdess, corpus_adversarial_weight=-1))])


AUGMENTATION = ("cached_augmented_copies", "gain_prob", "lowpass_prob")
#: The tiny Whisper FAST recipe of the training tests (without its copies), on RAVDESS and CREMA-D clips.
FAST_TWO_CORPORA = {
    **{key: value for key, value in TINY_MODELS["whisper-fast-augmented"].items() if key not in AUGMENTATION},
    "corpus": ["ravdess", "cremad"],
    "validation_speakers": ["ravdess:03"],
    "test_speakers": ["ravdess:04"],
    "corpus_adversarial_weight": 1.0,
    "head_learning_rate": 1.0e-2,
}


def test_a_fast_run_on_two_corpora_trains_the_adversary_and_saves_the_classifier_without_it(
    tmp_path, tiny_ravdess, cremad_clips
):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        **FAST_TWO_CORPORA,
        train_speakers=["ravdess:01", "ravdess:02", "cremad:1001", "cremad:1002"],
    )
    (report,) = main([str(recipe), "--data_dir", str(tiny_ravdess), str(cremad_clips)])
    assert report.training.global_step == 4
    run = tmp_path / "run"
    saved = load_file(run / "model.safetensors")
    assert "projector.weight" in saved and not any("corpus_adversary" in name for name in saved)
    # Each checkpoint holds the adversary (a resumed run goes on with it), trained away from its initialisation.
    checkpoints = sorted(run.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    first, last = (load_file(path / "model.safetensors") for path in (checkpoints[0], checkpoints[-1]))
    adversary = [name for name in last if name.startswith("corpus_adversary.")]
    assert adversary and any(not torch.equal(first[name], last[name]) for name in adversary)
    # Each training log gives the two parts of its loss apart.
    logged = [
        entry
        for entry in json.loads((checkpoints[-1] / "trainer_state.json").read_text())["log_history"]
        if "loss" in entry
    ]
    assert logged
    for entry in logged:
        assert entry["corpus_adversary_loss"] > 0
        assert entry["emotion_loss"] + entry["corpus_adversary_loss"] == pytest.approx(entry["loss"], abs=1e-3)
    assert json.loads((run / "run_config.json").read_text())["training"]["corpus_adversarial_weight"] == 1.0


def test_a_split_that_trains_on_one_corpus_is_refused_before_any_clip_is_encoded(
    tmp_path, tiny_ravdess, cremad_clips, monkeypatch
):
    from ser_hf.inputs.fast_mode import FastMode

    def no_encoding(*args, **kwargs):
        raise AssertionError("the corpus was encoded before the split was checked")

    monkeypatch.setattr(FastMode, "_prepare_corpus", no_encoding)
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        **{**FAST_TWO_CORPORA, "test_speakers": ["cremad:1003", "cremad:1004"]},
        train_speakers=["ravdess:01", "ravdess:02"],
    )
    with pytest.raises(RecipeError, match="the training split holds 1 corpus \\(ravdess\\)"):
        main([str(recipe), "--data_dir", str(tiny_ravdess), str(cremad_clips)])


def test_the_top_layers_model_trains_its_layers_against_the_adversary_too(tmp_path, tiny_ravdess):
    """With ``finetune_top_layers`` the projection the adversary reads comes from the fine-tuned layers: their
    weights get the reversed gradient as well as the emotion loss's."""
    from ser_hf.inputs.top_layers import CachedLowerLayersModel
    from tests.models.test_whisper import tiny_top_layers_classifier

    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, eval_strategy="no", load_best_model_at_end=False)
    _, _, _, training_args = parse_recipe([str(recipe)])
    torch.manual_seed(0)
    model = tiny_top_layers_classifier()
    wrapper = CachedLowerLayersModel(model, lower_layer=1)
    attach_corpus_adversary(wrapper, ["ravdess", "tess"])
    layers = model.config.num_hidden_layers + 1
    batch = {
        "encoder_states": torch.randn(4, layers, 2 * model.config.d_model),
        "lower_states": torch.randn(4, 30, model.config.d_model),
        "frame_mask": torch.ones(4, 30, dtype=torch.bool),
        "labels": torch.tensor([0, 1, 2, 0]),
    }
    gradients = {}
    for weight in (0.0, 1.0):
        trainer = SERTrainer(model=wrapper, args=training_args, corpus_adversarial_weight=weight)
        trainer.state.global_step, trainer.state.max_steps = 5, 10  # half-way: the reversal at 0.99 x the weight
        wrapper.train()
        wrapper.zero_grad()
        torch.manual_seed(1)  # the same dropout both times
        trainer.compute_loss(wrapper, {**batch, CORPUS_LABELS_KEY: torch.tensor([0, 0, 1, 1])}).backward()
        gradients[weight] = wrapper.layers[-1].fc2.weight.grad.clone()
    assert wrapper.corpus_adversary.layers[0].weight.grad.abs().sum() > 0
    assert not torch.allclose(gradients[0.0], gradients[1.0])
