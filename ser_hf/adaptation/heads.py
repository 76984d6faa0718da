"""The classifiers the adaptation fits (:mod:`.selection` chooses among them): a linear classifier on the model's
projected representation, in calibrated logit units, with, for ``projector+head``, the projector's move in kernel
form; and their fits by L-BFGS (L2-SP: the class-balanced cross-entropy plus a pull towards the trained weights) or
as class prototypes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np


@dataclass
class ProjectorShift:
    """How a ``projector+head`` candidate moves the model's projector, in kernel form: its weight by ``coefficients @
    pooled[rows]`` (the pooled states it was fitted on, as the adaptation trains on them under `rule`: the move lies
    in their span, as any L2-pulled fit's does), its bias by ``bias``."""

    coefficients: np.ndarray
    bias: np.ndarray
    rows: np.ndarray
    rule: str

    def weight_change(self, pooled_training: Mapping[str, np.ndarray]) -> np.ndarray:
        """The change of the projector's weight `(projection width, pooled width)`."""
        return self.coefficients @ pooled_training[self.rule][self.rows]


@dataclass
class Classifier:
    """A linear classifier on the projected representation, in calibrated logit units: ``logits = z @ weight.T +
    bias``; with a ``shift``, the projector moved too (``projector+head``), whose projected representation is
    ``z + kernel @ shift.coefficients.T + shift.bias`` (`kernel`: the clips' pooled states against those it was
    fitted on)."""

    weight: np.ndarray
    bias: np.ndarray
    shift: Optional[ProjectorShift] = None

    def logits(self, projected: np.ndarray, kernel: Optional[np.ndarray] = None) -> np.ndarray:
        if self.shift is not None:
            if kernel is None:
                raise ValueError("A classifier whose projector moved needs the clips' kernel against its own.")
            projected = projected + kernel @ self.shift.coefficients.T + self.shift.bias
        return projected @ self.weight.T + self.bias


@dataclass
class PooledStates:
    """The labelled clips' input to the model's projector (its pooled, standardised encoder states), under each
    statistics rule of :data:`~.selection.PROJECTOR_RULES` the selection cross-validates, as the adaptation trains
    on them and as inference gives them; and their linear kernels (computed once, on first use)."""

    training: Mapping[str, np.ndarray]
    evaluation: Mapping[str, np.ndarray]
    _kernels: dict = field(default_factory=dict, repr=False)

    def kernels(self, rule: str) -> tuple[np.ndarray, np.ndarray]:
        """``(training @ training.T, evaluation @ training.T)`` under `rule`."""
        if rule not in self._kernels:
            training = self.training[rule]
            self._kernels[rule] = (training @ training.T, self.evaluation[rule] @ training.T)
        return self._kernels[rule]


def class_weights(labels: np.ndarray, num_labels: int) -> np.ndarray:
    """Each clip's weight in the class-balanced loss (each present label weighs the same), summing to 1."""
    counts = np.bincount(labels, minlength=num_labels).astype(np.float64)
    present = np.count_nonzero(counts)
    weights = 1.0 / (present * counts[labels])
    return weights / weights.sum()


def fit_head(
    start: Classifier, projected: np.ndarray, labels: np.ndarray, strength: float, free: Optional[np.ndarray] = None
) -> Classifier:
    """The classifier minimising the class-balanced cross-entropy on (`projected`, `labels`) plus ``strength`` times
    the squared distance of its weights and biases from `start` (L2-SP), by L-BFGS from `start` (a convex problem: the
    same answer from any start). Only the rows `free` marks (default all) move; the others stay `start`'s."""
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    num_labels, width = start.weight.shape
    free = np.ones(num_labels, dtype=bool) if free is None else np.asarray(free, dtype=bool)
    mask = np.concatenate([np.repeat(free, width), free]).astype(np.float64)
    weights = class_weights(labels, num_labels)
    onehot = np.eye(num_labels)[labels]
    origin = np.concatenate([start.weight.ravel(), start.bias])

    def loss(parameters: np.ndarray) -> tuple[float, np.ndarray]:
        weight = parameters[: num_labels * width].reshape(num_labels, width)
        bias = parameters[num_labels * width :]
        log_probabilities = log_softmax(projected @ weight.T + bias, axis=1)
        value = -float(np.sum(weights * np.sum(onehot * log_probabilities, axis=1)))
        residual = weights[:, None] * (np.exp(log_probabilities) - onehot)
        gradient = np.concatenate([(residual.T @ projected).ravel(), residual.sum(axis=0)])
        offset = parameters - origin
        return value + strength * float(offset @ offset), mask * (gradient + 2 * strength * offset)

    result = minimize(loss, origin, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    fitted = origin + mask * (result.x - origin)
    return Classifier(fitted[: num_labels * width].reshape(num_labels, width), fitted[num_labels * width :])


def fit_projector_head(
    start: Classifier,
    projected: np.ndarray,
    kernel: np.ndarray,
    labels: np.ndarray,
    strength: float,
    rows: np.ndarray,
    rule: str,
) -> Classifier:
    """The projector and classifier minimising the class-balanced cross-entropy on the labelled clips plus
    ``strength`` times the squared distance of both layers' weights and biases from the model's (L2-SP), by L-BFGS from
    the model's. The projector's move lies in the span of the clips' pooled states, so it is fitted in that span's
    orthonormal coordinates (``kernel``, their Gram matrix, `(clips, clips)`: the pooled width never enters) and
    returned in kernel form (:class:`ProjectorShift`); `projected` are the clips' projected representations, `rows`
    and `rule` where their pooled states are found again to save the move."""
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    eigenvalues, vectors = np.linalg.eigh(kernel)
    kept = eigenvalues > 1e-9 * max(float(eigenvalues.max()), 1e-12)
    scales = np.sqrt(eigenvalues[kept])
    coordinates = vectors[:, kept] * scales  # the clips' pooled states in an orthonormal basis of their span
    num_labels, width = start.weight.shape
    rank = coordinates.shape[1]
    weights = class_weights(labels, num_labels)
    onehot = np.eye(num_labels)[labels]
    origin = np.concatenate([np.zeros(width * rank + width), start.weight.ravel(), start.bias])
    sizes = np.cumsum([width * rank, width, num_labels * width])

    def loss(parameters: np.ndarray) -> tuple[float, np.ndarray]:
        move, bias_move, weight, bias = np.split(parameters, sizes)
        move, weight = move.reshape(width, rank), weight.reshape(num_labels, width)
        shifted = projected + coordinates @ move.T + bias_move
        log_probabilities = log_softmax(shifted @ weight.T + bias, axis=1)
        value = -float(np.sum(weights * np.sum(onehot * log_probabilities, axis=1)))
        residual = weights[:, None] * (np.exp(log_probabilities) - onehot)
        toward = residual @ weight  # the gradient with respect to the projected representation
        parts = [toward.T @ coordinates, toward.sum(axis=0), residual.T @ shifted, residual.sum(axis=0)]
        gradient = np.concatenate([part.ravel() for part in parts])
        offset = parameters - origin
        return value + strength * float(offset @ offset), gradient + 2 * strength * offset

    result = minimize(loss, origin, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    move, bias_move, weight, bias = np.split(result.x, sizes)
    # The weight change is move @ V.T with V the basis (pooled states.T @ vectors / scales): in kernel form,
    # coefficients @ pooled states.
    coefficients = move.reshape(width, rank) @ (vectors[:, kept] / scales).T
    shift = ProjectorShift(coefficients, bias_move, np.asarray(rows), rule)
    return Classifier(weight.reshape(num_labels, width), bias, shift)


def fit_prototypes(
    start: Classifier, projected: np.ndarray, labels: np.ndarray, free: Optional[np.ndarray] = None
) -> Classifier:
    """The nearest-class-mean classifier: ``logit_c = -|z - mean_c|^2 / (2 var)`` up to a term shared by the classes,
    with one variance over every dimension and class (the labelled clips' spread around their class means; around
    their overall mean where every class has one clip). A label without a labelled clip, or not `free`, keeps
    `start`'s row."""
    num_labels = start.weight.shape[0]
    free = np.ones(num_labels, dtype=bool) if free is None else np.asarray(free, dtype=bool)
    weight, bias = start.weight.copy(), start.bias.copy()
    means = {label: projected[labels == label].mean(axis=0) for label in np.unique(labels)}
    deviations = projected - np.stack([means[label] for label in labels])
    if not np.any(deviations):
        deviations = projected - projected.mean(axis=0)
    variance = max(float(np.mean(deviations**2)), 1e-6)
    for label in range(num_labels):
        if label in means and free[label]:
            weight[label] = means[label] / variance
            bias[label] = -0.5 * float(means[label] @ means[label]) / variance
    return Classifier(weight, bias)
