"""Temperature scaling: the fit on constructed logits with a known answer, what it does to the ECE of an over-confident
model, every model kind applying the temperature it saves in its config, and the reliability diagram."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from scipy.special import softmax
from transformers import AutoModelForAudioClassification

from ser_hf.evaluation.calibration import (
    TEMPERATURE_CONFIG_KEY,
    apply_temperature,
    fit_temperature,
    fit_temperature_scaling,
    negative_log_likelihood,
    plot_reliability_diagram,
    reset_temperature,
    split_calibration,
)
from ser_hf.evaluation.metrics import expected_calibration_error
from ser_hf.models.configuration_opensmile import OpenSmileConfig
from ser_hf.models.modeling_opensmile import OpenSmileForAudioClassification
from tests.conftest_models import LABELS, MODEL_KINDS, build_tiny, featurize, load_clip


def _sampled_labels(logits: np.ndarray, temperature: float, seed: int) -> np.ndarray:
    """Labels drawn from softmax(logits / temperature): the scores are calibrated exactly at that temperature."""
    probabilities = softmax(logits / temperature, axis=1)
    rng = np.random.default_rng(seed)
    return np.array([rng.choice(len(p), p=p) for p in probabilities])


def test_fit_recovers_the_temperature_the_labels_were_drawn_at():
    logits = np.random.default_rng(0).normal(scale=4.0, size=(4000, 5))
    labels = _sampled_labels(logits, temperature=3.0, seed=1)
    assert fit_temperature(logits, labels) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(logits / 3.0, labels) == pytest.approx(1.0, rel=0.1)


def test_temperature_scaling_lowers_the_ece_of_an_over_confident_model_and_keeps_its_predictions():
    # A correct-ish classifier (about 70 % right, calibrated at T = 1), made over-confident by multiplying its logits
    # by 10; the temperature is fitted on one half ("validation") and judged on the other ("test").
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=1.5, size=(2000, 4))
    labels = _sampled_labels(logits, temperature=1.0, seed=2)
    over_confident = 10.0 * logits
    validation, test = slice(0, 1000), slice(1000, 2000)

    scaling = fit_temperature_scaling(over_confident[validation], labels[validation])
    assert scaling.fitted and scaling.fitted_on == "validation"
    assert scaling.temperature == pytest.approx(10.0, rel=0.2)
    assert scaling.nll_after < scaling.nll_before
    assert scaling.nll_after == pytest.approx(
        negative_log_likelihood(over_confident[validation] / 10, labels[validation]), rel=0.05
    )

    calibration = split_calibration(labels[test], over_confident[test], scaling.temperature)
    assert calibration["ece_before"] > 0.2
    assert calibration["ece_after"] < 0.05
    assert calibration["ece_before"] == pytest.approx(
        expected_calibration_error(softmax(over_confident[test], axis=1), labels[test])
    )
    calibrated = over_confident[test] / scaling.temperature
    np.testing.assert_array_equal(calibrated.argmax(axis=1), over_confident[test].argmax(axis=1))
    # The bins the diagram draws are those the ECE is computed from.
    bins = calibration["reliability_after"]
    assert sum(bins["clips"]) == 1000 and bins["n_bins"] == 15
    gaps = np.abs(np.subtract(bins["accuracy"], bins["confidence"]))
    assert np.dot(bins["clips"], gaps) / 1000 == pytest.approx(calibration["ece_after"])
    json.dumps(calibration)


def test_without_a_validation_split_or_when_off_the_temperature_stays_one_and_the_log_says_why(caplog):
    with caplog.at_level(logging.INFO, logger="ser_hf.evaluation.calibration"):
        missing = fit_temperature_scaling(None, None)
        off = fit_temperature_scaling(np.eye(3) * 10, np.arange(3), enabled=False)
    assert (missing.temperature, missing.fitted, missing.note) == (
        1.0,
        False,
        "no validation split to fit a temperature on",
    )
    assert (off.temperature, off.fitted, off.note) == (1.0, False, "calibrate_temperature is off")
    assert "No validation split to fit a temperature on" in caplog.text
    assert "calibrate_temperature is off" in caplog.text


def test_reliability_diagram_is_a_png(tmp_path):
    logits = 10.0 * np.random.default_rng(0).normal(size=(200, 3))
    labels = _sampled_labels(logits / 10.0, temperature=1.0, seed=3)
    plot_reliability_diagram(split_calibration(labels, logits, 8.0), tmp_path / "reliability.png", title="test")
    assert (tmp_path / "reliability.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_model_kind_divides_its_logits_by_the_saved_temperature(tmp_path, kind):
    torch.manual_seed(0)
    model, feature_extractor = build_tiny(kind)
    model.eval()
    inputs = featurize(feature_extractor, [load_clip(6, 1.1), load_clip(7, 0.6)])
    with torch.no_grad():
        logits = model(**inputs).logits
    model.save_pretrained(tmp_path / "uncalibrated")
    apply_temperature(model, 2.5)
    model.save_pretrained(tmp_path / "calibrated")

    config = json.loads((tmp_path / "calibrated" / "config.json").read_text())
    if kind.endswith("-mean"):  # transformers' own classifier: the temperature is folded into its weights
        assert TEMPERATURE_CONFIG_KEY not in config
    else:
        assert config[TEMPERATURE_CONFIG_KEY] == 2.5
    # A config saved without the key (as before calibration existed) loads as temperature 1.
    assert TEMPERATURE_CONFIG_KEY not in json.loads((tmp_path / "uncalibrated" / "config.json").read_text())
    for folder, temperature in (("uncalibrated", 1.0), ("calibrated", 2.5)):
        reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path / folder).eval()
        with torch.no_grad():
            reloaded_logits = reloaded(**inputs).logits
        torch.testing.assert_close(reloaded_logits, logits / temperature)


def test_opensmile_model_divides_its_logits_and_training_starts_uncalibrated():
    config = OpenSmileConfig(num_features=6, hidden_sizes=[4], id2label=dict(enumerate(LABELS.names)))
    model = OpenSmileForAudioClassification(config).eval()
    features = torch.randn(3, 6)
    with torch.no_grad():
        logits = model(features).logits
        apply_temperature(model, 4.0)
        torch.testing.assert_close(model(features).logits, logits / 4.0)
        reset_temperature(model)
        torch.testing.assert_close(model(features).logits, logits)


def test_a_validation_split_without_errors_leaves_the_model_uncalibrated(caplog):
    """With every validation clip right, the likelihood grows as T shrinks: a fit would run to its bound and make the
    model near-certain everywhere; T stays 1 and the note says why."""
    labels = np.arange(200) % 4
    logits = np.eye(4)[labels] * 6.0
    with caplog.at_level(logging.INFO, logger="ser_hf.evaluation.calibration"):
        scaling = fit_temperature_scaling(logits, labels)
    assert (scaling.temperature, scaling.fitted) == (1.0, False)
    assert "has no misclassified clip" in scaling.note and "no misclassified clip" in caplog.text
