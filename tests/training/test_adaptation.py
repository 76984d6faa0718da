"""Training further from a trained ser-hf model (the recipe keys a user adapting by hand sets): the head's rows
matched to the user's labels by name (``match_head_labels``), L2-SP towards the trained weights
(``starting_point_weight``), and what ``ser-hf adapt`` reads of a model folder with its refusals
(``trained_model_facts``; the command end to end: tests/cli/test_adapt.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainingArguments, WhisperConfig

from ser_hf.adaptation.errors import AdaptationError
from ser_hf.adaptation.trained_model import ADAPTABLE_FAMILIES, STORED_STATISTICS, trained_model_facts
from ser_hf.inputs.fast_mode import CachedEncoderHead
from ser_hf.models import build_ssl_classifier
from ser_hf.models.feature_normalization import STATISTICS_NORMALIZATIONS
from ser_hf.models.runtime.registry import ENCODER_FAMILIES
from ser_hf.training.trainer import SERTrainer
from tests.conftest_models import TINY_WHISPER

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def _saved_classifier(folder: Path, labels=LABELS) -> Path:
    model = build_ssl_classifier(
        WhisperConfig(**TINY_WHISPER), labels, use_weighted_layer_sum=True, pooling_mode="layer_statistics"
    )
    model.save_pretrained(folder)
    return folder


def test_every_encoder_family_of_the_registry_can_be_adapted():
    assert set(ADAPTABLE_FAMILIES) == set(ENCODER_FAMILIES)
    assert set(STORED_STATISTICS) == set(STATISTICS_NORMALIZATIONS)


def test_matched_head_keeps_the_rows_of_shared_labels_drops_the_others_and_starts_new_ones(tmp_path):
    source = _saved_classifier(tmp_path / "source")
    saved = load_file(source / "model.safetensors")
    # The user's labels: a subset of the model's, in another order, and one it lacks ("other", a new row).
    task = ["angry", "other", "neutral"]
    model = build_ssl_classifier(source, task, match_head_labels=True)
    assert [model.config.id2label[i] for i in range(3)] == task
    for row, label in ((0, "angry"), (2, "neutral")):
        assert torch.equal(model.classifier.weight[row], saved["classifier.weight"][LABELS.index(label)])
        assert torch.equal(model.classifier.bias[row], saved["classifier.bias"][LABELS.index(label)])
    assert not any(torch.equal(model.classifier.weight[1], row) for row in saved["classifier.weight"])
    # The rest of the model loads as it was trained.
    state = model.state_dict()
    rest = [name for name in saved if not name.startswith("classifier.")]
    assert "projector.weight" in rest and all(torch.equal(state[name], saved[name]) for name in rest)


def test_matched_head_refusals(tmp_path):
    source = _saved_classifier(tmp_path / "source")
    with pytest.raises(ValueError, match="none of this task's"):
        build_ssl_classifier(source, ["a", "b"], match_head_labels=True)
    with pytest.raises(ValueError, match="pick one"):
        build_ssl_classifier(source, ["angry"], match_head_labels=True, reinitialize_head=True)
    # Without the option, another label set is refused, as before.
    with pytest.raises(ValueError, match="reinitialize_head"):
        build_ssl_classifier(source, ["angry", "neutral"])


def _head_distance(weight: float, tmp_path: Path) -> float:
    torch.manual_seed(0)
    model = build_ssl_classifier(
        WhisperConfig(**TINY_WHISPER),
        LABELS,
        use_weighted_layer_sum=True,
        pooling_mode="layer_statistics",
        freeze_base_model=True,
    )
    head = CachedEncoderHead(model)
    start = {name: value.detach().clone() for name, value in head.named_parameters()}
    states = torch.randn(16, TINY_WHISPER["encoder_layers"] + 1, 2 * TINY_WHISPER["d_model"])
    rows = [{"encoder_states": states[i], "labels": i % 8} for i in range(16)]
    args = TrainingArguments(
        output_dir=str(tmp_path / f"w{weight}"),
        max_steps=30,
        learning_rate=1e-2,
        per_device_train_batch_size=8,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    collate = lambda batch: {  # noqa: E731
        "encoder_states": torch.stack([row["encoder_states"] for row in batch]),
        "labels": torch.tensor([row["labels"] for row in batch]),
    }
    trainer = SERTrainer(
        model=head, args=args, train_dataset=rows, data_collator=collate, starting_point_weight=weight
    )
    trainer.train()
    return sum(float((value.detach() - start[name]).pow(2).sum()) for name, value in head.named_parameters())


def test_starting_point_weight_holds_the_trained_weights_near_where_they_started(tmp_path):
    free, held = _head_distance(0.0, tmp_path), _head_distance(10.0, tmp_path)
    assert held < 0.5 * free, (held, free)


def write_model_config(folder: Path, **config) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "preprocessor_config.json").write_text(json.dumps({"normalization": "corpus"}))
    (folder / "model.safetensors").write_bytes(b"")
    return folder


@pytest.mark.parametrize(
    "config, message",
    [
        ({"model_type": "ser_cnn2d", "id2label": {"0": "angry"}}, "model_type 'ser_cnn2d' cannot be adapted"),
        ({"model_type": "ser_whisper"}, "no id2label"),
        ({"model_type": "ser_whisper", "id2label": {"0": "LABEL_0", "1": "LABEL_1"}}, "bare encoder"),
        ({"model_type": "ser_whisper", "id2label": {"0": "angry", "1": "angry"}}, "names a label twice"),
    ],
    ids=["baseline", "no-labels", "placeholder-labels", "label-twice"],
)
def test_a_folder_that_is_no_trained_ser_hf_classifier_is_refused_naming_the_file(tmp_path, config, message):
    folder = write_model_config(tmp_path / "model", **config)
    with pytest.raises(AdaptationError, match=message) as error:
        trained_model_facts(folder)
    assert "config.json" in str(error.value)
    with pytest.raises(AdaptationError, match="No such model folder"):
        trained_model_facts(tmp_path / "missing")
