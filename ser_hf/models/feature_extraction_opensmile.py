"""openSMILE functionals, the field's standard acoustic features (eGeMAPS, ComParE), as a feature extractor: one
vector of functionals per clip, standardised with the training set's statistics or each speaker's own.

This file is copied next to saved models (``register_for_auto_class``): it imports nothing from ser-hf.
"""

from __future__ import annotations

import functools
import warnings
from typing import Optional, Sequence, Union

import numpy as np
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

from .feature_normalization import STATISTICS_NORMALIZATIONS, FeatureStatisticsMixin, Statistics

#: openSMILE's functionals feature sets and how many functionals each gives per clip.
FEATURE_SETS = {"ComParE_2016": 6373, "eGeMAPSv02": 88, "eGeMAPSv01b": 88, "GeMAPSv01b": 62, "emobase": 988}
#: Joins several feature sets into one: ``"ComParE_2016+eGeMAPSv02"`` gives both sets' functionals, side by side.
FEATURE_SET_SEPARATOR = "+"


def split_feature_set(feature_set: Union[str, Sequence[str]]) -> list[str]:
    """The openSMILE feature sets named by `feature_set`: one name, names joined by ``+``, or a list of names."""
    names = feature_set.split(FEATURE_SET_SEPARATOR) if isinstance(feature_set, str) else list(feature_set)
    unknown = [name for name in names if name not in FEATURE_SETS]
    if unknown or not names:
        raise ValueError(
            f"Unknown openSMILE feature_set {feature_set!r}; expected one of {', '.join(FEATURE_SETS)}, "
            f"or several joined by {FEATURE_SET_SEPARATOR!r} (e.g. 'ComParE_2016+eGeMAPSv02')."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"openSMILE feature_set {feature_set!r} names a feature set twice.")
    return names


class OpenSmileFeatureExtractor(FeatureStatisticsMixin, SequenceFeatureExtractor):
    r"""Turns 16 kHz mono audio into `input_features` `(batch, feature_size)`: the openSMILE functionals of each clip
    (`opensmile` from PyPI), standardised.

    Functionals summarise a whole clip (means, percentiles, slopes... of pitch, loudness, spectral and voice-quality
    descriptors), so clips of any length give one vector and no padding or attention mask is needed. Computing them
    costs a noticeable fraction of a second per clip: ser-hf training computes them once per corpus and caches them.

    Args:
        feature_set (`str` or `list[str]`, *optional*, defaults to `"ComParE_2016"`):
            One of :data:`FEATURE_SETS`: `"ComParE_2016"` (6,373 functionals) or `"eGeMAPSv02"` (88, the minimalistic
            set designed for affect), ...; or several joined by `+` (a list is joined so): `"ComParE_2016+eGeMAPSv02"`
            gives each clip's functionals of every set, concatenated in that order (6,461).
        normalization (`str`, *optional*, defaults to `"global"`):
            `"global"`: standardised with the training set's `feature_mean` and `feature_std`; `"speaker"`: with the
            statistics of the clip's speaker (`speaker_statistics`), falling back to the global ones without them;
            `"corpus"`: with the statistics of the clip's corpus, passed the same way; `"none"`: as computed.
        feature_mean, feature_std (`list[float]`, *optional*):
            The training set's statistics (ser-hf training fits them).
        num_selected_features (`int`, *optional*):
            Keep only this many functionals, those that best separate the emotions of the training set (highest ANOVA
            F statistic of the standardised training functionals; ser-hf training fits them): thousands of
            correlated functionals for a few hundred clips invite overfitting. `feature_size` is this number. `None`
            keeps every functional.
        selected_features (`list[int]`, *optional*):
            The fitted indices of the kept functionals (in the order openSMILE gives them).
        sampling_rate (`int`, *optional*, defaults to 16000):
            Sampling rate the audio must have, in Hz.
    """

    model_input_names = ["input_features"]

    def __init__(
        self,
        feature_set: str = "ComParE_2016",
        normalization: str = "global",
        feature_mean: Optional[list[float]] = None,
        feature_std: Optional[list[float]] = None,
        num_selected_features: Optional[int] = None,
        selected_features: Optional[list[int]] = None,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        **kwargs,
    ):
        feature_sets = split_feature_set(feature_set)
        if normalization not in (*STATISTICS_NORMALIZATIONS, "none"):
            raise ValueError(f"normalization must be 'global', 'speaker', 'corpus' or 'none', got {normalization!r}.")
        num_functionals = sum(FEATURE_SETS[name] for name in feature_sets)
        if num_selected_features is not None:
            if normalization not in STATISTICS_NORMALIZATIONS:
                raise ValueError(
                    "num_selected_features needs normalization 'global', 'speaker' or 'corpus': the functionals "
                    "are selected on standardised training features."
                )
            if not 0 < num_selected_features <= num_functionals:
                raise ValueError(
                    f"num_selected_features must be between 1 and the {num_functionals} functionals of "
                    f"{FEATURE_SET_SEPARATOR.join(feature_sets)}, got {num_selected_features}."
                )
        if selected_features is not None and len(selected_features) != num_selected_features:
            raise ValueError(
                f"selected_features lists {len(selected_features)} functionals but "
                f"num_selected_features is {num_selected_features}."
            )
        for derived in ("feature_size", "num_functionals"):  # saved with the extractor, derived from the above
            kwargs.pop(derived, None)
        kwargs["return_attention_mask"] = False
        super().__init__(
            feature_size=num_selected_features or num_functionals,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            **kwargs,
        )
        self.feature_set = FEATURE_SET_SEPARATOR.join(feature_sets)
        self.normalization = normalization
        self.feature_mean = feature_mean
        self.feature_std = feature_std
        self.num_functionals = num_functionals
        self.num_selected_features = num_selected_features
        self.selected_features = selected_features
        self._smile = None

    def functionals(self, waveform: np.ndarray) -> np.ndarray:
        """The functionals `(feature_size,)` of one mono clip at the extractor's rate, before normalisation (every
        feature set's, in the order `feature_set` names them)."""
        if self._smile is None:
            import opensmile

            self._smile = [
                opensmile.Smile(
                    feature_set=getattr(opensmile.FeatureSet, name), feature_level=opensmile.FeatureLevel.Functionals
                )
                for name in split_feature_set(self.feature_set)
            ]
        waveform = np.asarray(waveform, np.float32)
        values = np.concatenate(
            [smile.process_signal(waveform, self.sampling_rate).to_numpy()[0] for smile in self._smile]
        )
        return np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)

    def standardize(
        self, features: np.ndarray, speaker_statistics: Optional[Sequence[Optional[Statistics]]] = None
    ) -> np.ndarray:
        """Standardise functionals `(batch, num_functionals)` as `normalization` says (every functional)."""
        features = np.asarray(features, np.float32)
        statistics = self.clip_statistics(len(features), speaker_statistics)
        if statistics is None:
            return features
        mean, std = statistics
        return (features - mean) / std

    def set_selected_features(self, indices: Sequence[int]) -> None:
        """Store the indices of the `num_selected_features` functionals to keep (saved with the extractor)."""
        indices = sorted(int(index) for index in indices)
        if (
            len(indices) != self.num_selected_features
            or len(set(indices)) != len(indices)
            or not (0 <= indices[0] and indices[-1] < self.num_functionals)
        ):
            raise ValueError(
                f"Expected {self.num_selected_features} distinct functional indices in "
                f"[0, {self.num_functionals}), got {len(indices)}."
            )
        self.selected_features = indices

    def normalize(
        self, features: np.ndarray, speaker_statistics: Optional[Sequence[Optional[Statistics]]] = None
    ) -> np.ndarray:
        """Standardise functionals `(batch, num_functionals)` as `normalization` says, then keep the selected ones:
        `(batch, feature_size)`."""
        if self.num_selected_features is not None and self.selected_features is None:
            raise ValueError(
                f"{type(self).__name__} keeps num_selected_features={self.num_selected_features} "
                "functionals but has no selected_features: ser-hf training fits them; set them with "
                "set_selected_features(indices)."
            )
        features = self.standardize(features, speaker_statistics)
        return features if self.num_selected_features is None else features[:, self.selected_features]

    def __call__(
        self,
        raw_speech: Union[np.ndarray, Sequence[np.ndarray]],
        sampling_rate: Optional[int] = None,
        return_tensors: Optional[str] = None,
        speaker_statistics: Optional[Sequence[Optional[Statistics]]] = None,
        normalize: bool = True,
        **unused,
    ) -> BatchFeature:
        """Functionals of one clip (1-D) or a batch (a list of clips, or a 2-D array of equal-length clips)."""
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(
                f"{type(self).__name__} expects audio at {self.sampling_rate} Hz but got "
                f"{sampling_rate} Hz; resample it first."
            )
        is_one_clip = (
            isinstance(raw_speech, np.ndarray)
            and raw_speech.ndim == 1
            or (isinstance(raw_speech, (list, tuple)) and raw_speech and np.isscalar(raw_speech[0]))
        )
        clips = [raw_speech] if is_one_clip else list(raw_speech)
        features = np.stack([self.functionals(np.asarray(clip, np.float32).ravel()) for clip in clips])
        if normalize:
            features = self.normalize(features, speaker_statistics)
        return BatchFeature({"input_features": features}, tensor_type=return_tensors)


# --- The shortest clip openSMILE computes functionals of ---------------------------------------------------------


def functionals_minimum_samples(feature_set: str, sampling_rate: int) -> int:
    """The shortest clip (in samples) whose openSMILE functionals of ``feature_set`` (sets joined by ``+`` included)
    are not all NaN: openSMILE computes them over frames, and gives NaN for a clip shorter than one (60 ms for the
    eGeMAPS and ComParE sets). Found once per feature set and rate by asking openSMILE itself."""
    return max(_one_set_minimum_samples(name, sampling_rate) for name in split_feature_set(feature_set))


@functools.lru_cache(maxsize=None)
def _one_set_minimum_samples(feature_set: str, sampling_rate: int) -> int:
    import opensmile

    with warnings.catch_warnings():
        # "Segment too short, filling with NaN." is what is being measured; deprecated sets say so at construction.
        warnings.simplefilter("ignore", UserWarning)
        smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, feature_set), feature_level=opensmile.FeatureLevel.Functionals
        )
        noise = (0.1 * np.random.default_rng(0).standard_normal(10 * sampling_rate)).astype(np.float32)

        def computed(samples: int) -> bool:
            return not np.isnan(smile.process_signal(noise[:samples], sampling_rate).to_numpy()[0]).all()

        low, high = 1, sampling_rate
        while not computed(high):
            if high >= len(noise):
                return len(noise)  # not reached by openSMILE's sets: longer than any frame they use
            low, high = high + 1, min(2 * high, len(noise))
        while low < high:
            middle = (low + high) // 2
            if computed(middle):
                high = middle
            else:
                low = middle + 1
        return high


def functionals_too_short(feature_set: str) -> str:
    """How an error names the shortest clip openSMILE computes ``feature_set`` functionals of (``{ms}``: its length,
    for :func:`ser_hf.inputs.base.drop_clips_shorter_than`)."""
    return f"one openSMILE frame ({{ms}} ms), below which its {feature_set} functionals are all NaN"


__all__ = [
    "FEATURE_SETS",
    "FEATURE_SET_SEPARATOR",
    "OpenSmileFeatureExtractor",
    "functionals_minimum_samples",
    "functionals_too_short",
    "split_feature_set",
]
