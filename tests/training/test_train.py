"""The training entry point end to end, on a few real RAVDESS clips with tiny models: one short run per model kind,
k-fold summaries, FAST mode, resume, and the command lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import pipeline, set_seed

from ser_hf.data.decode import decode_waveform
from ser_hf.errors import RecipeError
from ser_hf.models import merge_lora
from ser_hf.recipe.parser import parse_recipe
from ser_hf.run_record import RunReport
from ser_hf.train import main
from ser_hf.training.model_stage import build_model
from ser_hf.training.trainer import SERTrainer
from tests.conftest import REPO
from tests.conftest_models import TINY_SSL, TINY_WHISPER
from tests.recipe.test_parser import write_recipe

TINY_MODELS = {
    "cnn2d": {"model_type": "cnn2d", "model_config": {"conv_channels": [4, 8]}},
    "crnn": {"model_type": "crnn", "model_config": {"conv_channels": [4, 8], "lstm_hidden_size": 8}},
    "cnn1d": {"model_type": "cnn1d", "model_config": {"conv_channels": [4, 4, 8, 8]}},
    "mfcc": {"model_type": "mfcc", "model_config": {}},
    "parallel_cnn_transformer": {
        "model_type": "parallel_cnn_transformer",
        "model_config": {
            "conv_channels": [4, 8],
            "transformer_hidden_size": 8,
            "transformer_num_heads": 2,
            "transformer_intermediate_size": 16,
        },
    },
    "cnn_attention_lstm": {
        "model_type": "cnn_attention_lstm",
        "model_config": {"conv_channels": [8], "lstm_hidden_size": 8, "num_attention_heads": 2},
    },
    "wav2vec2": {
        "model_type": "wav2vec2",
        "model_config": TINY_SSL,
        "use_weighted_layer_sum": True,
        "head_learning_rate": 1.0e-2,
    },
    # As recipes/cremad_lora.yaml: gradient checkpointing, through which the adapters must still get gradients.
    "hubert-lora": {
        "model_type": "hubert",
        "model_config": TINY_SSL,
        "use_lora": True,
        "lora_r": 2,
        "gradient_checkpointing": True,
    },
    "wavlm-attentive": {
        "model_type": "wavlm",
        "pooling_mode": "attentive_statistics",
        "num_frozen_layers": 1,
        "model_config": {**TINY_SSL, "num_buckets": 8, "max_bucket_distance": 20},
    },
    "wav2vec2-fast": {
        "model_type": "wav2vec2",
        "model_config": TINY_SSL,
        "freeze_base_model": True,
        "cache_encoder_outputs": True,
        "use_weighted_layer_sum": True,
    },
    # As recipes/ravdess_whisper_base_fast_speaker.yaml: a shortened window, states standardised per speaker.
    "whisper-fast-speaker": {
        "model_type": "whisper",
        "model_config": TINY_WHISPER,
        "encoder_window_seconds": 6,
        "freeze_base_model": True,
        "cache_encoder_outputs": True,
        "use_weighted_layer_sum": True,
        "feature_extractor_config": {"normalization": "speaker"},
    },
    "whisper-lora": {"model_type": "whisper", "model_config": TINY_WHISPER, "use_lora": True, "lora_r": 2},
    # FAST mode with two cached augmented copies of every clip (band-limited, level changed).
    "whisper-fast-augmented": {
        "model_type": "whisper",
        "model_config": TINY_WHISPER,
        "freeze_base_model": True,
        "cache_encoder_outputs": True,
        "use_weighted_layer_sum": True,
        "pooling_mode": "layer_statistics",
        "feature_extractor_config": {"normalization": "global"},
        "cached_augmented_copies": 2,
        "gain_prob": 1.0,
        "lowpass_prob": 0.5,
    },
    # As recipes/ravdess_whisper_tiny_en_top2.yaml: the top layer fine-tuned on the cached input of the lower ones
    # (each clip's leading and trailing silence trimmed, as the trimming recipes do).
    "whisper-top-layer": {
        "model_type": "whisper",
        "model_config": {**TINY_WHISPER, "trim_window": True},
        "freeze_base_model": True,
        "cache_encoder_outputs": True,
        "finetune_top_layers": 1,
        "use_weighted_layer_sum": True,
        "pooling_mode": "layer_statistics",
        "feature_extractor_config": {"normalization": "global", "trim_silence_db": 30},
        "cache_precision": "float16",
        "head_learning_rate": 1.0e-2,
    },
    # LoRA adapters on the top layer instead of its weights, merged into them when saved.
    "whisper-top-layer-lora": {
        "model_type": "whisper",
        "model_config": {**TINY_WHISPER, "trim_window": True},
        "freeze_base_model": True,
        "cache_encoder_outputs": True,
        "finetune_top_layers": 1,
        "use_lora": True,
        "lora_r": 2,
        "use_weighted_layer_sum": True,
        "pooling_mode": "layer_statistics",
        "feature_extractor_config": {"normalization": "global"},
        "learning_rate": 1.0e-2,
        "head_learning_rate": 1.0e-2,
    },
}


# --- Training -----------------------------------------------------------------------------------------------------


def _initial_weights(recipe: Path, labels) -> dict[str, torch.Tensor]:
    model_args, _, augmentation_args, training_args = parse_recipe([str(recipe)])
    set_seed(training_args.seed)
    model, _ = build_model(model_args, augmentation_args, labels)
    if isinstance(model, PeftModel):  # exported models have their adapters merged in
        model = merge_lora(model)
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@pytest.mark.parametrize("kind", list(TINY_MODELS))
def test_short_training_of_every_model_kind_changes_weights_and_writes_metrics(tmp_path, tiny_ravdess, kind):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, **TINY_MODELS[kind])
    (report,) = main([str(recipe)])
    run = tmp_path / "run"
    labels = report.labels
    assert report.split.speakers == {"train": ["01", "02"], "validation": ["03"], "test": ["04"]}
    assert report.leakage_audit["passed"] and report.protocol == "speaker"
    for split, clips in (("validation", 8), ("test", 8)):
        metrics = report.evaluation[split]
        assert metrics.clips == clips and 0.0 <= metrics.unweighted_accuracy <= 1.0
        assert np.asarray(metrics.confusion_matrix).sum() == clips
        assert set(metrics.per_speaker) == {"04" if split == "test" else "03"}
    assert json.loads((run / "metrics.json").read_text())["evaluation"] == json.loads(
        json.dumps(report.to_dict()["evaluation"])
    )
    for png in ("confusion_matrix_test.png", "confusion_matrix_validation.png", "training_curves.png"):
        assert (run / png).read_bytes()[:4] == b"\x89PNG"
    assert report.training.global_step == 4

    # The saved model is safetensors, differs from its initialisation, and classifies a clip through pipeline().
    saved = load_file(run / "model.safetensors")
    initial = _initial_weights(recipe, labels)
    changed = [name for name, tensor in saved.items() if name in initial and not torch.equal(tensor, initial[name])]
    assert changed, "training changed no weight"
    if kind in ("wav2vec2-fast", "whisper-fast-speaker", "whisper-fast-augmented"):
        assert all(name.startswith(("projector", "classifier", "layer_weights")) for name in changed)
        encoder = [name for name in saved if name.startswith(("wav2vec2.", "encoder."))]
        assert encoder and all(torch.equal(saved[name], initial[name]) for name in encoder)
    if kind == "whisper-fast-speaker":
        assert report.normalization["mode"] == "speaker" and report.normalization["transductive"]
        assert saved["encoder.embed_positions.weight"].shape[0] == 300
        saved_extractor = json.loads((run / "preprocessor_config.json").read_text())
        assert saved_extractor["chunk_length"] == 6 and len(saved_extractor["feature_mean"]) == 3 * 16
    if kind == "whisper-top-layer":  # the top layer and the final layer norm trained, nothing below them
        assert any(name.startswith("encoder.layers.1.") for name in changed)
        assert any(name.startswith("encoder.layer_norm.") for name in changed)
        assert not any(name.startswith(("encoder.layers.0.", "encoder.conv", "encoder.embed")) for name in changed)
        assert "Fine-tuned: the encoder's top 1 layer(s)" in (run / "README.md").read_text()
        assert json.loads((run / "config.json").read_text())["trim_window"] is True
        assert json.loads((run / "preprocessor_config.json").read_text())["trim_silence_db"] == 30
    if kind == "whisper-top-layer-lora":  # the adapters merged into the top layer's projections, nothing else
        assert not any("lora" in name for name in saved)
        top = {name for name in changed if name.startswith("encoder.layers.")}
        assert top and all(
            name.startswith("encoder.layers.1.")
            and name.endswith("_proj.weight")
            or name.startswith(("encoder.layers.1.fc1.weight", "encoder.layers.1.fc2.weight"))
            for name in top
        )
        assert "encoder.layers.1.fc1.weight" in top and "encoder.layers.1.self_attn.q_proj.weight" in top
        assert "LoRA" in (run / "README.md").read_text()
    if kind == "whisper-lora":  # merged adapters change the attention projections, not the convolutions
        assert any(".self_attn.q_proj." in name for name in changed)
        assert not any(name.startswith("encoder.conv") for name in changed)
    if kind == "wavlm-attentive":  # the feature encoder and the lowest layer were frozen
        assert not any(name.startswith(("wavlm.feature_extractor", "wavlm.encoder.layers.0.")) for name in changed)
        assert any(name.startswith("wavlm.encoder.layers.1.") for name in changed)
    if kind == "hubert-lora":  # merged adapters change the attention projections, nothing else of the encoder
        assert any(".attention.q_proj." in name for name in changed)
        assert not any(name.startswith("hubert.feature_extractor") for name in changed)
    classifier = pipeline("audio-classification", model=str(run))
    clip = decode_waveform(str(sorted((tiny_ravdess / "Actor_04").glob("*.flac"))[0]), 16000)
    scores = classifier({"raw": clip, "sampling_rate": 16000}, top_k=len(labels))
    assert {s["label"] for s in scores} == set(labels)
    assert sum(s["score"] for s in scores) == pytest.approx(1.0, abs=1e-4)


def test_class_weights_and_label_smoothing_define_the_loss(tmp_path, tiny_ravdess):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        class_weights="balanced",
        label_smoothing_factor=0.2,
        eval_strategy="no",
        load_best_model_at_end=False,
    )
    model_args, data_args, augmentation_args, training_args = parse_recipe([str(recipe)])
    model, _ = build_model(model_args, augmentation_args, ["neutral", "happy", "sad"])
    weights = torch.tensor([0.5, 1.0, 2.0])
    trainer = SERTrainer(model=model, args=training_args, class_weights=weights)
    logits = torch.randn(5, 3)
    labels = torch.tensor([0, 1, 2, 2, 1])

    class Fixed(torch.nn.Module):
        def forward(self, **inputs):
            return {"logits": logits}

    loss = trainer.compute_loss(Fixed(), {"input_features": torch.zeros(1), "labels": labels})
    expected = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=0.2)(logits, labels)
    assert torch.allclose(loss, expected)


def test_corpus_weights_set_each_corpus_share_of_the_draws_and_are_checked(tmp_path, tiny_ravdess):
    from collections import Counter

    from datasets import Dataset

    from ser_hf.training.train_stage import training_sample_weights
    from ser_hf.training.trainer import EpochSeededWeightedSampler, corpus_sampling_weights

    corpora = ["ravdess"] * 90 + ["tess"] * 10
    weights = corpus_sampling_weights(corpora, {"ravdess": 1.0, "tess": 1.0})
    assert weights.sum() == pytest.approx(1.0)
    assert weights[:90].sum() == pytest.approx(0.5) and weights[90:].sum() == pytest.approx(0.5)
    assert corpus_sampling_weights(corpora, {"ravdess": 1.0, "tess": 3.0})[90:].sum() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no weight to corpus 'tess'"):
        corpus_sampling_weights(corpora, {"ravdess": 1.0})

    # The trainer draws by them: the small corpus is half of each epoch's clips, each of its clips five times; the
    # large one shows 50 of its 90 clips once, others the next epoch; the same epoch always draws the same.
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, eval_strategy="no", load_best_model_at_end=False)
    model_args, _, augmentation_args, training_args = parse_recipe([str(recipe)])
    model, _ = build_model(model_args, augmentation_args, ["neutral", "happy"])
    train = Dataset.from_dict({"corpus": corpora})
    trainer = SERTrainer(model=model, args=training_args, train_dataset=train, sample_weights=weights)
    sampler = trainer._get_train_sampler(train)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
        counts = Counter(epochs[-1])
        assert len(epochs[-1]) == 100 and Counter(corpora[index] for index in epochs[-1]) == {
            "ravdess": 50,
            "tess": 50,
        }
        assert {counts[index] for index in range(90, 100)} == {5}
        assert sorted(counts[index] for index in range(90)) == [0] * 40 + [1] * 50
    assert {i for i in epochs[0] if i < 90} != {i for i in epochs[1] if i < 90}
    sampler.set_epoch(0)
    assert list(sampler) == epochs[0]  # a resumed run sees the epoch it would have seen
    # Uneven weights: every clip drawn floor or ceil of its expected count.
    uneven = EpochSeededWeightedSampler([3.0, 1.0, 1.0, 0.0, 1.5], seed=0)
    for epoch in range(5):
        uneven.set_epoch(epoch)
        counts = Counter(uneven)
        expected = 5 * np.array([3.0, 1.0, 1.0, 0.0, 1.5]) / 6.5
        assert all(np.floor(e) <= counts[i] <= np.ceil(e) for i, e in enumerate(expected)) and counts[3] == 0
    with pytest.raises(ValueError, match="all 0"):
        EpochSeededWeightedSampler([0.0, 0.0], seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        EpochSeededWeightedSampler([1.0, -1.0], seed=0)
    # What build_trainer gives it, from the recipe's data arguments (none without corpus_weights).
    data_args = SimpleNamespace(corpus_weights={"ravdess": 1.0, "tess": 1.0})
    np.testing.assert_allclose(training_sample_weights(train, data_args), weights)
    # A fold's model inputs keep the corpus column the weights are read from (every input mode keeps these columns).
    from ser_hf.inputs.base import model_inputs

    inputs = model_inputs(train.add_column("scratch", [0] * len(train)), columns=())
    assert inputs.column_names == ["corpus"]
    np.testing.assert_allclose(training_sample_weights(inputs, data_args), weights)
    assert training_sample_weights(train, SimpleNamespace(corpus_weights=None)) is None

    with pytest.raises(RecipeError, match="corpus_weights names 'crema', which the recipe does not train on"):
        parse_recipe([str(write_recipe(tmp_path / "a.yaml", tiny_ravdess, corpus_weights={"crema": 2}))])
    with pytest.raises(RecipeError, match="needs two corpora or more"):
        parse_recipe([str(write_recipe(tmp_path / "b.yaml", tiny_ravdess, corpus_weights={"ravdess": 2}))])
    with pytest.raises(RecipeError, match="positive finite numbers; bad entries: {'ravdess': 0}"):
        parse_recipe([str(write_recipe(tmp_path / "c.yaml", tiny_ravdess, corpus_weights={"ravdess": 0}))])
    # Not finite, or a boolean: refused when the recipe is read, not in torch.multinomial after the data is ready.
    for index, weight in enumerate([float("nan"), float("inf"), True]):
        recipe = write_recipe(tmp_path / f"w{index}.yaml", tiny_ravdess, corpus_weights={"ravdess": weight})
        with pytest.raises(RecipeError, match="positive finite numbers; bad entries: {'ravdess': "):
            parse_recipe([str(recipe)])
    with pytest.raises(RecipeError, match="train_only_corpora names 'tess', which the recipe does not train on"):
        parse_recipe([str(write_recipe(tmp_path / "d.yaml", tiny_ravdess, train_only_corpora=["tess"]))])
    with pytest.raises(RecipeError, match="train_only_corpora lists every corpus of the recipe"):
        parse_recipe([str(write_recipe(tmp_path / "e.yaml", tiny_ravdess, train_only_corpora="ravdess"))])


def test_head_learning_rate_gets_its_own_parameter_groups(tmp_path, tiny_ravdess):
    values = {
        **TINY_MODELS["wav2vec2"],
        "learning_rate": 1.0e-4,
        "head_learning_rate": 1.0e-2,
        "weight_decay": 0.01,
        "eval_strategy": "no",
        "load_best_model_at_end": False,
    }
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, **values)
    model_args, _, augmentation_args, training_args = parse_recipe([str(recipe)])
    model, _ = build_model(model_args, augmentation_args, ["neutral", "happy"])
    trainer = SERTrainer(model=model, args=training_args, head_learning_rate=1.0e-2)
    optimizer = trainer.create_optimizer()
    by_lr = {}
    for group in optimizer.param_groups:
        by_lr.setdefault(group["lr"], set()).update(id(p) for p in group["params"])
    head = {
        id(p)
        for name, p in model.named_parameters()
        if name.startswith(("projector", "classifier", "layer_weights")) and p.requires_grad
    }
    assert by_lr[1.0e-2] == head
    assert by_lr[1.0e-4] and not by_lr[1.0e-4] & head


def test_kfold_recipe_trains_every_fold_and_writes_mean_and_std(tmp_path, tiny_ravdess):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        split_protocol="kfold",
        num_folds=2,
        validation_size=0.0,
        train_speakers=None,
        validation_speakers=None,
        test_speakers=None,
        max_steps=2,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )
    reports = main([str(recipe)])
    assert [r.fold for r in reports] == [0, 1]
    test_speakers = [set(r.split.speakers["test"]) for r in reports]
    assert test_speakers[0].isdisjoint(test_speakers[1]) and len(test_speakers[0] | test_speakers[1]) == 4
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    ua = [r.evaluation["test"].unweighted_accuracy for r in reports]
    assert summary["folds"] == 2 and summary["protocol"] == "kfold" and summary["leakage_audits_passed"]
    assert summary["mean"]["unweighted_accuracy"] == pytest.approx(np.mean(ua))
    assert summary["std"]["unweighted_accuracy"] == pytest.approx(np.std(ua, ddof=1))
    assert [row["unweighted_accuracy"] for row in summary["per_fold"]] == pytest.approx(ua)
    assert "mean ± std" in (tmp_path / "run" / "summary.md").read_text()
    for fold in (0, 1):
        assert (tmp_path / "run" / f"fold-{fold}" / "model.safetensors").is_file()
    # A re-run reads the finished folds back instead of training them again.
    again = main([str(recipe)])
    assert [r.to_dict()["evaluation"] for r in again] == [
        json.loads(json.dumps(r.to_dict()["evaluation"])) for r in reports
    ]


class _Interrupt(Exception):
    pass


# Interrupted training of raw audio: in `make test-slow` (the cached-states resume below runs in `make test`),
# to keep `make test` under 5 minutes.
@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_final_weights(tmp_path, tiny_ravdess, monkeypatch):
    values = dict(
        max_steps=6,
        gain_prob=0.5,
        num_time_masks=1,
        num_freq_masks=1,
        max_duration_seconds=1.0,
        save_total_limit=None,
        load_best_model_at_end=False,
    )
    uninterrupted = write_recipe(tmp_path / "a.yaml", tiny_ravdess, output_dir=str(tmp_path / "a"), **values)
    main([str(uninterrupted)])

    interrupted = write_recipe(tmp_path / "b.yaml", tiny_ravdess, output_dir=str(tmp_path / "b"), **values)
    original_step = SERTrainer.training_step

    def failing_step(self, *args, **kwargs):
        if self.state.global_step == 3:
            raise _Interrupt("killed at step 3")
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(SERTrainer, "training_step", failing_step)
    with pytest.raises(_Interrupt):
        main([str(interrupted)])
    assert (tmp_path / "b" / "checkpoint-2").is_dir() and not (tmp_path / "b" / "metrics.json").exists()
    monkeypatch.setattr(SERTrainer, "training_step", original_step)

    (report,) = main([str(interrupted)])
    assert report.training.resumed_from.endswith("checkpoint-2")
    final_a = load_file(tmp_path / "a" / "model.safetensors")
    final_b = load_file(tmp_path / "b" / "model.safetensors")
    assert final_a.keys() == final_b.keys()
    assert all(torch.equal(final_a[name], final_b[name]) for name in final_a)


def test_resuming_into_a_folder_of_another_recipe_is_refused(tmp_path, tiny_ravdess, monkeypatch):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, max_steps=4)
    monkeypatch.setattr(SERTrainer, "training_step", _raise_at_step(SERTrainer.training_step))
    with pytest.raises(_Interrupt):
        main([str(recipe)])
    monkeypatch.undo()
    with pytest.raises(
        RecipeError, match=r"holds a run with other model settings \(model: model_config, model_type\)"
    ):
        main([str(recipe), "--model_type", "crnn", "--model_config", "{conv_channels: [4], lstm_hidden_size: 4}"])
    # A run an earlier ser-hf wrote, whose record lacks a setting added since (at its default now), resumes.
    record = tmp_path / "run" / "run_config.json"
    config = json.loads(record.read_text())
    del config["augmentation"]["cached_augmented_copies"], config["augmentation"]["lowpass_hz"]
    record.write_text(json.dumps(config))
    (report,) = main([str(recipe)])
    assert report.training.resumed_from.endswith("checkpoint-2")
    # The finished run is read back for the same recipe, however it logs, but not for another learning rate or
    # number of epochs: that run's results are not this recipe's.
    (again,) = main([str(recipe), "--logging_steps", "7", "--disable_tqdm", "true"])
    assert again == report
    # Nor does how many processes decode the audio (a data setting whose facts say so: "outcome": False).
    (again,) = main([str(recipe), "--preprocessing_num_workers", "1"])
    assert again == report
    with pytest.raises(
        RecipeError,
        match=r"other training settings \(training: learning_rate, num_train_epochs\).*overwrite_output_dir",
    ):
        main([str(recipe), "--learning_rate", "0.5", "--num_train_epochs", "7"])


def _raise_at_step(step, at: int = 3):
    def failing_step(self, *args, **kwargs):
        if self.state.global_step == at:
            raise _Interrupt(f"killed at step {at}")
        return step(self, *args, **kwargs)

    return failing_step


# --- Command lines ------------------------------------------------------------------------------------------------


def _run(*args, cwd=REPO, timeout=600):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_python_m_ser_hf_train_reports_an_unknown_key_in_one_line(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "bad.yaml", tiny_ravdess, num_train_epoch=3)
    result = _run(sys.executable, "-m", "ser_hf.train", str(recipe))
    assert result.returncode == 2
    assert "error: Unknown key(s) 'num_train_epoch' (did you mean 'num_train_epochs'?)" in result.stderr
    assert "bad.yaml" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_ser_hf_train_and_predict_command_lines(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, max_steps=2)
    ser_hf = str(Path(sys.executable).parent / "ser-hf")
    trained = _run(
        ser_hf,
        "train",
        str(recipe),
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    # disable_tqdm (the recipe's) reaches transformers' own bars too: loading weights, writing model shards.
    assert "Writing model shards" not in trained.stderr and "it/s]" not in trained.stderr + trained.stdout
    clip = sorted((tiny_ravdess / "Actor_04").glob("*.flac"))[0]
    predicted = _run(ser_hf, "predict", str(tmp_path / "run"), str(clip), "--top-k", "2")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    line = json.loads(predicted.stdout.strip().splitlines()[-1])
    assert line["file"] == str(clip) and len(line["predictions"]) == 2


@pytest.mark.slow
def test_two_process_accelerate_run_evaluates_the_full_split_once(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, max_steps=2, per_device_eval_batch_size=3)
    accelerate = str(Path(sys.executable).parent / "accelerate")
    result = _run(
        accelerate,
        "launch",
        "--config_file",
        str(REPO / "recipes" / "accelerate_configs" / "cpu.yaml"),
        "--num_processes",
        "2",
        "-m",
        "ser_hf.train",
        str(recipe),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["training"]["global_step"] == 2
    # 8 clips over 2 processes in batches of 3 pad the last batch: gathered metrics drop the padding.
    assert report["evaluation"]["test"]["clips"] == 8
    assert np.asarray(report["evaluation"]["test"]["confusion_matrix"]).sum() == 8
    assert (result.stdout + result.stderr).count("test: UA") == 1


def test_per_speaker_accuracy_follows_the_dataset_order(tmp_path, tiny_ravdess):
    """Evaluation keeps the split's order (no length grouping), so per-speaker figures pair each clip with its
    speaker: recomputed clip by clip from the saved model, they agree."""
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        max_steps=2,
        validation_speakers=[],
        test_speakers=["03", "04"],
        eval_strategy="no",
        load_best_model_at_end=False,
    )
    (report,) = main([str(recipe)])
    classifier = pipeline("audio-classification", model=str(tmp_path / "run"))
    from ser_hf import load_corpus

    corpus = load_corpus("ravdess", tiny_ravdess)
    names = corpus.features["label"].names
    correct: dict[str, list[bool]] = {}
    for row in corpus.select_columns(["path", "speaker_id", "label"]):
        if row["speaker_id"] not in ("03", "04"):
            continue
        top = classifier({"raw": decode_waveform(row["path"], 16000), "sampling_rate": 16000}, top_k=1)[0]
        correct.setdefault(row["speaker_id"], []).append(top["label"] == names[row["label"]])
    per_speaker = report.evaluation["test"].per_speaker
    for speaker, hits in correct.items():
        assert per_speaker[speaker]["accuracy"] == pytest.approx(np.mean(hits))


# --- Calibration --------------------------------------------------------------------------------------------------


def test_temperature_fitted_on_validation_is_saved_and_calibrates_the_pipeline_scores(tmp_path, tiny_ravdess):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, calibration_min_clips=1)  # a tiny validation split
    (report,) = main([str(recipe)])
    run = tmp_path / "run"
    calibration = report.calibration
    temperature = calibration.temperature
    assert calibration.fitted_on == "validation" and temperature > 0 and temperature != 1.0
    assert calibration.nll_after <= calibration.nll_before
    assert json.loads((run / "config.json").read_text())["calibration_temperature"] == pytest.approx(temperature)
    for split in ("validation", "test"):
        measured = report.evaluation[split].calibration
        assert measured["temperature"] == temperature
        # The split's reported ECE is the calibrated one.
        assert report.evaluation[split].expected_calibration_error == pytest.approx(measured["ece_after"])
        assert (run / f"reliability_diagram_{split}.png").read_bytes()[:4] == b"\x89PNG"
    assert f"T = {temperature:.3f} fitted on the validation split" in (run / "report.md").read_text()
    assert f"T = {temperature:.3f}" in (run / "README.md").read_text()

    # pipeline() scores are softmax(logits / T) of the model's uncalibrated logits; argmax is unchanged.
    clip = decode_waveform(str(sorted((tiny_ravdess / "Actor_04").glob("*.flac"))[0]), 16000)
    classifier = pipeline("audio-classification", model=str(run))
    scores = {s["label"]: s["score"] for s in classifier({"raw": clip, "sampling_rate": 16000}, top_k=None)}
    model, extractor = classifier.model, classifier.feature_extractor
    inputs = extractor(clip, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        calibrated = model(**inputs).logits[0]
        model.config.calibration_temperature = 1.0
        uncalibrated = model(**inputs).logits[0]
    expected = torch.softmax(uncalibrated / temperature, dim=-1)
    assert [scores[model.config.id2label[i]] for i in range(len(expected))] == pytest.approx(
        expected.tolist(), abs=1e-5
    )
    assert calibrated.argmax() == uncalibrated.argmax()


@pytest.mark.parametrize(
    "values, note",
    [
        ({"validation_speakers": [], "test_speakers": ["03", "04"], "eval_strategy": "no"}, "no validation split"),
        ({"calibrate_temperature": False}, "calibrate_temperature is off"),
        ({}, "the validation split's 8 clips are too few to fit a temperature on (at least 100)"),
    ],
)
def test_without_validation_split_or_when_off_the_model_stays_uncalibrated_and_says_so(
    tmp_path, tiny_ravdess, values, note
):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, max_steps=2, load_best_model_at_end=False, **values)
    (report,) = main([str(recipe)])
    run = tmp_path / "run"
    assert report.calibration.temperature == 1.0 and report.calibration.fitted_on is None
    assert note in report.calibration.note
    assert json.loads((run / "config.json").read_text()).get("calibration_temperature", 1.0) == 1.0
    assert all(metrics.calibration is None for metrics in report.evaluation.values())
    assert not list(run.glob("reliability_diagram_*.png"))
    assert f"Calibration: none ({report.calibration.note})" in (run / "report.md").read_text()
    assert "The scores are not calibrated" in (run / "README.md").read_text()


def test_one_cycle_schedules_every_warm_up_length_including_one_step():
    """OneCycleLR divides by the length of its warm-up and its annealing: a one-step warm-up (0.2 of 2 steps, or 0.1
    of 10) made it divide by zero on the first step. Every warm-up of every short run now steps through."""
    from ser_hf.training.trainer import one_cycle_warmup_share

    for total in range(1, 40):
        for warmup in range(total + 1):
            optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0e-3)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=1.0e-3, total_steps=total, pct_start=one_cycle_warmup_share(warmup, total)
            )
            rates = []
            for _ in range(total):
                optimizer.step()
                scheduler.step()
                rates.append(scheduler.get_last_lr()[0])
            assert all(np.isfinite(rates))
    # The learning rate peaks after the warm-up asked for (its last step), as before for warm-ups over one step.
    assert one_cycle_warmup_share(4, 100) == pytest.approx(0.04) and one_cycle_warmup_share(0, 100) == 0.3


def test_a_speaker_list_the_corpus_lacks_stops_the_run_before_the_corpus_is_encoded(
    tmp_path, tiny_ravdess, monkeypatch
):
    from ser_hf.errors import RecipeError
    from ser_hf.inputs import fast_mode

    def never(*args, **kwargs):
        raise AssertionError("the corpus was encoded before the split was checked")

    monkeypatch.setattr(fast_mode, "encode_dataset", never)
    recipe = write_recipe(
        tmp_path / "r.yaml", tiny_ravdess, test_speakers=["21", "22"], **TINY_MODELS["whisper-fast-speaker"]
    )
    # The recipe's early check reads the speakers from the file names, before torch and datasets load.
    with pytest.raises(RecipeError, match=r"test_speakers: speaker\(s\) \['21', '22'\] are not in the folder's file"):
        main([str(recipe)])


@pytest.mark.parametrize(
    "kind",
    # LoRA's and the augmented copies' resume in `make test-slow`, to keep `make test` under 5 minutes (the plain top
    # layer's runs here).
    [
        "whisper-top-layer",
        pytest.param("whisper-top-layer-lora", marks=pytest.mark.slow),
        pytest.param("whisper-fast-augmented", marks=pytest.mark.slow),
    ],
)
def test_an_interrupted_run_on_cached_states_resumes_to_the_same_final_weights(
    tmp_path, tiny_ravdess, monkeypatch, kind
):
    """Top layers fine-tuned on the cached lower layers (their weights, or LoRA adapters on them), and FAST mode
    drawing augmented copies: a resumed run reads the cache as it was and ends with the uninterrupted run's
    weights."""
    values = dict(TINY_MODELS[kind], max_steps=6, save_total_limit=None, load_best_model_at_end=False)
    report = _train_uninterrupted_and_interrupted(tmp_path, tiny_ravdess, monkeypatch, values, at=3)
    assert report.training.resumed_from.endswith("checkpoint-2")


def _train_uninterrupted_and_interrupted(tmp_path, tiny_ravdess, monkeypatch, values: dict, at: int) -> RunReport:
    """Train `values` into tmp_path/a, then into tmp_path/b interrupted at step `at` and resumed; assert both end
    with the same weights; return the resumed run's report."""
    main([str(write_recipe(tmp_path / "a.yaml", tiny_ravdess, output_dir=str(tmp_path / "a"), **values))])
    interrupted = write_recipe(tmp_path / "b.yaml", tiny_ravdess, output_dir=str(tmp_path / "b"), **values)
    monkeypatch.setattr(SERTrainer, "training_step", _raise_at_step(SERTrainer.training_step, at=at))
    with pytest.raises(_Interrupt):
        main([str(interrupted)])
    monkeypatch.undo()
    (report,) = main([str(interrupted)])
    final_a = load_file(tmp_path / "a" / "model.safetensors")
    final_b = load_file(tmp_path / "b" / "model.safetensors")
    assert final_a.keys() == final_b.keys()
    assert all(torch.allclose(final_a[name], final_b[name], atol=1e-6) for name in final_a)
    return report
