"""Whether the recordings a model classifies come from a recording set-up far from its training corpora.

A model whose features are standardised with its training clips' statistics (``normalization: global``, what a
single clip needs) is only as good as those statistics fit the new recordings: another microphone, room or language
shifts every feature, and the model then answers with one or two classes (docs/results/LOG.md, leave-one-corpus-out).
The shift of a group of recordings is the root mean square of its mean features standardised with the stored statistics
(:meth:`~ser_hf.models.feature_normalization.FeatureStatisticsMixin.setup_shift`); training stores what its corpora
and speakers had (``setup_shifts``). Recordings farther than every training speaker were are "far": their scores
deserve distrust, and corpus or speaker statistics (which standardise the recordings with their own) fit them better.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator, Optional

import numpy as np
from datasets import Dataset

from ..inputs.speaker_normalization import ENCODER_STATES_COLUMN, FUNCTIONALS_COLUMN, speaker_statistics
from ..models.feature_normalization import RunningStatistics
from ..models.modeling_whisper import SerWhisperForAudioClassification
from ..models.runtime.onnx_runtime import POOLED_STATES, OnnxModelForAudioClassification

logger = logging.getLogger(__name__)


def measures_setup_shift(feature_extractor) -> bool:
    """Whether the model standardises with its training statistics only (``global``), so that a shifted set-up goes
    uncorrected, and has them stored."""
    return (
        getattr(feature_extractor, "normalization", None) == "global"
        and getattr(feature_extractor, "feature_mean", None) is not None
    )


@contextlib.contextmanager
def standardized_states(model) -> Iterator[Optional[RunningStatistics]]:
    """While the block runs the model, the running statistics of the standardised pooled states a Whisper classifier
    with layer statistics feeds its projector (in evaluation mode, its dropout is the identity), read by a hook: the
    set-up's shift at no extra encoding; an ONNX export of one, from the pooled states it outputs beside its logits.
    `None` for other models."""
    if _exported_with_pooled_states(model) and model.config.pools_layer_statistics:
        statistics = RunningStatistics()
        model.standardized_states_listener = statistics.add
        try:
            yield statistics
        finally:
            model.standardized_states_listener = None
        return
    if not (isinstance(model, SerWhisperForAudioClassification) and model.config.pools_layer_statistics):
        yield None
        return
    statistics = RunningStatistics()

    def record(module, inputs):
        statistics.add(inputs[0].detach().float().cpu().numpy())

    # Before the head keeps the layers it reads (config.pooled_layers): the shift is over every layer, as stored.
    handle = (model.layer_selection or model.projector).register_forward_pre_hook(record)
    try:
        yield statistics
    finally:
        handle.remove()


def _exported_with_pooled_states(model) -> bool:
    return isinstance(model, OnnxModelForAudioClassification) and POOLED_STATES in model.outputs


def setup_shift_report(
    feature_extractor,
    dataset: Dataset,
    model=None,
    standardized: Optional[RunningStatistics] = None,
) -> Optional[dict[str, Any]]:
    """How far `dataset`'s recordings sit from the model's training statistics, against its training corpora and
    speakers; `None` for a model that does not standardise with global statistics. `standardized`: the statistics of
    the standardised states the model computed (:func:`standardized_states`); otherwise the features `dataset` holds
    already (openSMILE functionals, FAST mode's cached states), and `None` when it holds none: the recordings are never
    read a second time for this."""
    if not measures_setup_shift(feature_extractor):
        return None
    if standardized is not None and standardized.count:
        mean_z = standardized.statistics()[0]
        shift = float(np.sqrt(np.mean(np.asarray(mean_z, np.float64) ** 2)))
    elif dataset is None or not {FUNCTIONALS_COLUMN, ENCODER_STATES_COLUMN} & set(dataset.column_names):
        return None  # measured only where it costs nothing: never a second pass over the recordings
    else:
        overall = RunningStatistics()
        for statistics in speaker_statistics(feature_extractor, dataset, model=model, group_column="corpus").values():
            overall.merge(statistics)
        shift = feature_extractor.setup_shift(overall.statistics()[0])
    training = getattr(feature_extractor, "setup_shifts", None) or {}
    farthest = training.get("speakers_max")
    far = farthest is not None and shift > farthest
    report = {"shift": round(shift, 4), "training": training, "far": far}
    if far:
        corpora = ", ".join(f"{name} {value:.2f}" for name, value in sorted((training.get("corpora") or {}).items()))
        logger.warning(
            "These recordings sit far from the model's training statistics: shift %.2f, against %.2f for the "
            "farthest training speaker%s. A model standardised with its training statistics (global) often "
            "answers with one or two classes on such a set-up: distrust these scores, and prefer a model trained "
            "with normalization: corpus or speaker, which standardises the recordings with their own statistics.",
            shift,
            farthest,
            f" (training corpora: {corpora})" if corpora else "",
        )
    return report


__all__ = ["measures_setup_shift", "setup_shift_report", "standardized_states"]
