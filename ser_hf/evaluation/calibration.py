"""Temperature scaling (Guo et al., 2017): after training, one temperature T > 0 is fitted on the validation split by
minimising the negative log-likelihood of ``logits / T``. Dividing every logit by the same T changes no prediction
(the argmax is the same), only how confident the scores are.

The trained model applies T itself (:func:`apply_temperature`), so the scores of the saved model, through
``pipeline("audio-classification")`` too, are the calibrated ones; reports show the expected calibration error and a
reliability diagram before and after.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from ..atomic_files import save_figure
from .metrics import expected_calibration_error, reliability_bins, softmax

logger = logging.getLogger(__name__)

#: The model config attribute ser-hf's models divide their logits by (absent: 1). Not ``temperature``, which
#: transformers reserves for generation and refuses in a model config.
TEMPERATURE_CONFIG_KEY = "calibration_temperature"
#: The range T is searched in: wide enough for any trained classifier, bounded so that a validation split every clip
#: of which is right (where the likelihood keeps growing as T shrinks) still gives a finite T.
TEMPERATURE_BOUNDS = (0.05, 20.0)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes under ``softmax(logits / temperature)``."""
    log_probabilities = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-log_probabilities[np.arange(len(labels)), np.asarray(labels)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T that minimises the negative log-likelihood of ``logits / T`` on (validation) clips,
    searched on log T within :data:`TEMPERATURE_BOUNDS` by scipy's bounded scalar minimiser."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("Fitting a temperature needs at least one clip.")
    result = minimize_scalar(
        lambda log_temperature: negative_log_likelihood(logits, labels, np.exp(log_temperature)),
        bounds=tuple(np.log(TEMPERATURE_BOUNDS)),
        method="bounded",
    )
    return float(np.exp(result.x))


@dataclass
class TemperatureScaling:
    """What a run's calibration did: the report's ``calibration`` block.

    Args:
        temperature (`float`): the model's logits are divided by it (1: not calibrated).
        fitted_on (`str`, *optional*): the split T was fitted on; `None` when it was not fitted.
        nll_before, nll_after (`float`, *optional*): that split's negative log-likelihood before and after.
        note (`str`, *optional*): why T was not fitted.
    """

    temperature: float = 1.0
    fitted_on: Optional[str] = None
    nll_before: Optional[float] = None
    nll_after: Optional[float] = None
    note: Optional[str] = None

    @property
    def fitted(self) -> bool:
        return self.fitted_on is not None

    def to_dict(self) -> dict[str, Any]:
        return {"method": "temperature scaling", **dataclasses.asdict(self)}


def fit_temperature_scaling(
    logits: Optional[np.ndarray],
    labels: Optional[np.ndarray],
    *,
    enabled: bool = True,
    split: str = "validation",
    min_clips: int = 1,
) -> TemperatureScaling:
    """Fit T on ``split``'s ``logits`` and ``labels``; T stays 1 (and the log says why) when calibration is off,
    there is no such split (``logits`` `None`) or it has fewer than ``min_clips`` clips."""
    if not enabled:
        logger.info("calibrate_temperature is off: the model's scores are not calibrated (temperature 1).")
        return TemperatureScaling(note="calibrate_temperature is off")
    if logits is None or len(logits) == 0:
        logger.info(
            "No %s split to fit a temperature on: the model's scores are not calibrated (temperature 1).", split
        )
        return TemperatureScaling(note=f"no {split} split to fit a temperature on")
    if len(logits) < min_clips:
        note = f"the {split} split's {len(logits)} clips are too few to fit a temperature on (at least {min_clips})"
        logger.info("Temperature scaling skipped: %s; the model's scores are not calibrated (temperature 1).", note)
        return TemperatureScaling(note=note)
    if (np.asarray(logits).argmax(axis=1) == np.asarray(labels)).all():
        # Every clip right: the likelihood keeps growing as T shrinks, so the fit would run to its bound and make
        # the model near-certain on every clip it will ever see.
        note = f"the {split} split has no misclassified clip, so its likelihood has no minimum in T"
        logger.info("Temperature scaling skipped: %s; the model's scores are not calibrated (temperature 1).", note)
        return TemperatureScaling(note=note)
    temperature = fit_temperature(logits, labels)
    if not TEMPERATURE_BOUNDS[0] * 1.05 < temperature < TEMPERATURE_BOUNDS[1] / 1.05:
        note = f"the fit on the {split} split ran to the edge of its range (T = {temperature:.3g}): no minimum in T"
        logger.info("Temperature scaling skipped: %s; the model's scores are not calibrated (temperature 1).", note)
        return TemperatureScaling(note=note)
    scaling = TemperatureScaling(
        temperature=temperature,
        fitted_on=split,
        nll_before=negative_log_likelihood(logits, labels),
        nll_after=negative_log_likelihood(logits, labels, temperature),
    )
    logger.info(
        "Temperature scaling: T = %.3f, fitted on the %s split (negative log-likelihood %.4f -> %.4f).",
        temperature,
        split,
        scaling.nll_before,
        scaling.nll_after,
    )
    return scaling


def split_calibration(labels: np.ndarray, logits: np.ndarray, temperature: float, n_bins: int = 15) -> dict[str, Any]:
    """A split's expected calibration error and reliability bins before and after dividing its (uncalibrated) logits
    by ``temperature``, JSON-ready."""
    labels = np.asarray(labels)
    logits = np.asarray(logits, dtype=np.float64)
    before, after = softmax(logits), softmax(logits / temperature)
    return {
        "temperature": temperature,
        "ece_before": expected_calibration_error(before, labels, n_bins),
        "ece_after": expected_calibration_error(after, labels, n_bins),
        "reliability_before": reliability_bins(before, labels, n_bins),
        "reliability_after": reliability_bins(after, labels, n_bins),
    }


def apply_temperature(model, temperature: float) -> None:
    """Make ``model`` divide its logits by ``temperature``. ser-hf's models read ``config.calibration_temperature``
    (saved in ``config.json``); transformers' own classifiers (SSL encoders with mean pooling) have the temperature
    folded into the weight and bias of their final linear ``classifier``, which gives the same logits."""
    import torch
    from torch import nn

    from ..models.runtime.registry import ser_model_types

    if isinstance(model, tuple(model_class for _, model_class, _ in ser_model_types())):
        setattr(model.config, TEMPERATURE_CONFIG_KEY, float(temperature))
        return
    if temperature == 1.0:
        return
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, nn.Linear):
        raise ValueError(
            f"{type(model).__name__} neither reads config.{TEMPERATURE_CONFIG_KEY} nor ends in a linear "
            "`classifier` to fold the temperature into: set calibrate_temperature to false for it."
        )
    with torch.no_grad():
        classifier.weight.div_(temperature)
        if classifier.bias is not None:
            classifier.bias.div_(temperature)
    logger.info("Temperature %.3f folded into the weights of %s's classifier.", temperature, type(model).__name__)


def reset_temperature(model) -> None:
    """Train on uncalibrated logits: a model built from a calibrated ser-hf checkpoint (or with the key in
    ``model_config``) goes back to temperature 1 until a new one is fitted after training."""
    config = model.config
    if getattr(config, TEMPERATURE_CONFIG_KEY, 1.0) != 1.0:
        logger.info(
            "Training on uncalibrated logits: %s %s reset to 1 (a new one is fitted after training).",
            TEMPERATURE_CONFIG_KEY,
            getattr(config, TEMPERATURE_CONFIG_KEY),
        )
        setattr(config, TEMPERATURE_CONFIG_KEY, 1.0)


def plot_reliability_diagram(calibration: Mapping[str, Any], path: str | os.PathLike, title: str = "") -> None:
    """Write the reliability diagrams before and after temperature scaling side by side as a PNG, from the bins of
    :func:`split_calibration` (the ones its ECE is computed on): accuracy per confidence bin against the diagonal
    of perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, 2, figsize=(9, 4.4), sharey=True)
    for axes, stage in zip(panels, ("before", "after")):
        bins = calibration[f"reliability_{stage}"]
        width = 1.0 / bins["n_bins"]
        lefts = np.asarray(bins["bin"]) * width
        axes.bar(lefts, bins["accuracy"], width=width, align="edge", edgecolor="black", label="accuracy")
        axes.bar(
            lefts,
            np.subtract(bins["confidence"], bins["accuracy"]),
            bottom=bins["accuracy"],
            width=width,
            align="edge",
            color="tab:red",
            alpha=0.3,
            label="gap to confidence",
        )
        axes.plot([0, 1], [0, 1], linestyle="--", color="gray")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_xlabel("confidence")
        label = "before calibration" if stage == "before" else f"after (T = {calibration['temperature']:.2f})"
        axes.set_title(f"{label}: ECE {calibration[f'ece_{stage}']:.3f}")
    panels[0].set_ylabel("accuracy")
    panels[0].legend(loc="upper left")
    if title:
        figure.suptitle(title)
    save_figure(figure, path)


__all__ = [
    "TEMPERATURE_BOUNDS",
    "TEMPERATURE_CONFIG_KEY",
    "TemperatureScaling",
    "apply_temperature",
    "fit_temperature",
    "fit_temperature_scaling",
    "negative_log_likelihood",
    "plot_reliability_diagram",
    "reset_temperature",
    "split_calibration",
]
