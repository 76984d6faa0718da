"""``ser-hf evaluate`` of a model standardised by corpus or speaker statistics (issue 69): each clip goes through the
encoder once (the states that give the statistics are the ones the head reads), and the statistics come from every
clip the model can read, whatever its label; the report says which clips they came from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from ser_hf.cli import main as cli_main
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor
from tests.conftest_models import LABELS, TINY_WHISPER, load_clip

SPEAKER_REGEX = r"/(?P<speaker>[A-Z]\d)_"
#: Each speaker's clips: label folder, shipped clip, seconds, gain. The "calm" clips (a label the model lacks) are
#: louder and longer: statistics computed without them differ.
CLIPS = (
    ("neutral", 0, 0.8, 1.0),
    ("neutral", 1, 1.0, 1.0),
    ("angry", 2, 0.9, 1.0),
    ("angry", 3, 1.1, 1.0),
    ("calm", 4, 2.0, 4.0),
    ("calm", 5, 2.2, 4.0),
)


@pytest.fixture
def calm_corpus(tmp_path):
    """A folder corpus of two speakers in neutral, angry and calm (which the model does not know)."""
    root = tmp_path / "recordings"
    for speaker_index, speaker in enumerate(("A1", "B1")):
        for index, (label, clip, seconds, gain) in enumerate(CLIPS):
            waveform = gain * load_clip(clip + speaker_index, seconds)
            path = root / label / f"{speaker}_{index}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, np.clip(waveform, -1, 1).astype(np.float32), 16000)
    return root


def whisper_model(normalization: str, window_seconds: int = 3):
    """A tiny Whisper classifier (every layer's statistics, head at scale 1) standardised by `normalization`
    statistics."""
    torch.manual_seed(0)
    config = WhisperConfig(**{**TINY_WHISPER, "max_source_positions": 50 * window_seconds})
    model = build_ssl_classifier(config, LABELS, use_weighted_layer_sum=True, pooling_mode="layer_statistics").eval()
    with torch.no_grad():
        for module in (model.projector, model.classifier):
            for parameter in module.parameters():
                parameter.normal_()
    return model, build_ssl_feature_extractor(model.config, normalization=normalization)


@pytest.fixture
def encoded_clips(monkeypatch, tmp_path):
    """How many clips went through a Whisper encoder (every model's), counted at its forward; with a cache of the
    test's own (encoder states of the same clips from another test would be reused)."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets_cache")
    counted = {"clips": 0}
    forward = WhisperEncoder.forward

    def counting(self, input_features, *args, **kwargs):
        counted["clips"] += input_features.shape[0]
        return forward(self, input_features, *args, **kwargs)

    monkeypatch.setattr(WhisperEncoder, "forward", counting)
    return counted


def source_of(root):
    from ser_hf.evaluation.evaluate_model import CorpusSource

    return CorpusSource("folder", str(root), options={"speaker_regex": SPEAKER_REGEX})


def two_pass_scores(model, feature_extractor, dataset, shared, normalization_clips):
    """The scores of today's two passes: statistics through the model over `normalization_clips`, then the whole model
    run on the clips of the `shared` labels; softmax over the shared labels' logits."""
    from ser_hf.evaluation.evaluate_model import predict_logits
    from ser_hf.inputs.speaker_normalization import evaluation_normalization

    plan = evaluation_normalization(feature_extractor, normalization_clips, "reference", model)
    names = dataset.features["label"].names
    scored = dataset.filter(lambda label: names[label] in shared, input_columns="label")
    logits = predict_logits(model, feature_extractor, scored, normalization=plan)
    logits = logits[:, [LABELS.names.index(label) for label in shared]]
    return torch.tensor(logits).softmax(-1).numpy()


@pytest.mark.parametrize("normalization", ["speaker", "corpus"])
def test_statistics_come_from_every_readable_clip_whatever_its_label_and_the_encoder_runs_once(
    normalization, calm_corpus, encoded_clips
):
    from ser_hf.evaluation.evaluate_model import TrainedModel, evaluate_on_dataset, load_evaluation_corpus

    model, feature_extractor = whisper_model(normalization)
    source = source_of(calm_corpus)
    dataset = load_evaluation_corpus(source, 16000)
    assert len(dataset) == 12 and sorted(set(dataset["emotion_code"])) == ["angry", "calm", "neutral"]

    encoded_clips["clips"] = 0
    report = evaluate_on_dataset(TrainedModel("tiny", model, feature_extractor), dataset, source)
    # Every clip, calm ones included (their states give the statistics), through the encoder once.
    assert encoded_clips["clips"] == 12
    (metrics,) = report["evaluation"].values()
    assert report["labels"] == ["neutral", "angry"] and report["dropped_clips"] == {"calm": 4}
    assert metrics["clips"] == 8
    scores = np.array([[row["scores"][label] for label in report["labels"]] for row in metrics["clip_predictions"]])

    # The scores are the whole model's, standardised with statistics of all 12 clips (calm included) ...
    expected = two_pass_scores(model, feature_extractor, dataset, report["labels"], dataset)
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    # ... which differ from statistics of the 8 scored clips alone (what evaluation computed before issue 69).
    shared_only = dataset.filter(lambda code: code != "calm", input_columns="emotion_code")
    by_scored_clips = two_pass_scores(model, feature_extractor, dataset, report["labels"], shared_only)
    assert np.abs(by_scored_clips - expected).max() > 1e-2

    # The report says which clips the statistics came from.
    statistics = report["normalization"]["statistics_clips"]
    assert statistics["clips"] == 12 and statistics["scored_clips"] == 8
    assert statistics["other_labels"] == {"calm": 4} and statistics["left_out"] == 0
    from ser_hf.evaluation.eval_report import format_eval_report

    text = format_eval_report(report)
    assert "statistics from 12 clips" in text and "whatever their labels" in text and "calm 4" in text


def test_evaluate_cli_encodes_each_clip_once_under_speaker_statistics(tmp_path, calm_corpus, encoded_clips):
    """The command users run after training: a saved speaker-normalised Whisper model on a folder corpus."""
    model, feature_extractor = whisper_model("speaker")
    model.save_pretrained(tmp_path / "model")
    feature_extractor.save_pretrained(tmp_path / "model")
    encoded_clips["clips"] = 0
    arguments = ["evaluate", "--model", str(tmp_path / "model"), "--corpus", "folder", "--data-dir", str(calm_corpus)]
    assert cli_main([*arguments, "--option", f"speaker_regex={SPEAKER_REGEX}"]) == 0
    assert encoded_clips["clips"] == 12
    (report_dir,) = (tmp_path / "model" / "reports").iterdir()
    report = json.loads((report_dir / "eval_report.json").read_text())
    assert report["normalization"]["statistics_clips"]["clips"] == 12
    # A second evaluation reads the states back from the cache: no clip is encoded again.
    encoded_clips["clips"] = 0
    assert cli_main([*arguments, "--option", f"speaker_regex={SPEAKER_REGEX}"]) == 0
    assert encoded_clips["clips"] == 0
