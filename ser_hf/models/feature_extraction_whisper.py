"""Whisper's log-mel feature extractor for ser-hf's Whisper classifiers: always returns the `attention_mask` the model
pools the clip's own frames with, never cuts a clip longer than the window silently, passes the statistics that
standardise the encoder's states (`normalization`), with `dereverberation="wpe"`, takes each clip's room reverberation
out (weighted prediction error) and, with `trim_silence_db`, trims each clip's leading and trailing silence.

This file is copied next to saved models (``register_for_auto_class``): it imports nothing from ser-hf.
"""

from __future__ import annotations

import importlib.util
from typing import Optional, Sequence

import numpy as np
from transformers import BatchFeature, WhisperFeatureExtractor

from .feature_normalization import STATISTICS_NORMALIZATIONS, FeatureStatisticsMixin, Statistics

#: Each clip's frames centred on their own mean (the model's `center_frames`), the rest standardised globally.
UTTERANCE_NORMALIZATION = "utterance"
#: `normalization` values: none, or standardising the encoder's states with stored statistics.
STATE_NORMALIZATIONS = ("none", *STATISTICS_NORMALIZATIONS, UTTERANCE_NORMALIZATION)
#: Frames of the silence trimming (`trim_silence_db`): 25 ms every 10 ms at 16 kHz, the log-mel's own.
TRIM_FRAME_LENGTH, TRIM_HOP_LENGTH = 400, 160
#: A clip that trimming would leave shorter than this (0.1 s at 16 kHz: silence, or nearly) is kept whole.
TRIM_MIN_SAMPLES = 1600
#: `dereverberation` values: none (`None`), or weighted prediction error (`"wpe"`, nara_wpe).
DEREVERBERATIONS = ("wpe",)
#: Weighted prediction error as `dereverberation="wpe"` runs it (nara_wpe's `wpe` on one channel): an STFT of 512
#: samples every 128 (32 ms every 8 ms at 16 kHz), a prediction filter of 10 frames (`dereverberation_taps` sets
#: another length) after a delay of 3 (the direct sound and early reflections, which carry the voice, are kept),
#: 3 iterations.
WPE_SETTINGS = {"stft_size": 512, "stft_shift": 128, "taps": 10, "delay": 3, "iterations": 3}
#: The longest prediction filter `dereverberation_taps` takes: 100 frames of 8 ms, 0.8 s of a room's tail.
MAX_DEREVERBERATION_TAPS = 100
#: How to install the package `dereverberation="wpe"` needs (ser_hf.extras.install_hint's words: this file imports
#: nothing from ser-hf).
WPE_INSTALL = (
    "pip install 'ser-hf[dereverberation]' (from a clone of ser-hf: pip install -e '.[dereverberation]'), or "
    "pip install nara-wpe"
)


def is_dereverberation(value) -> bool:
    """Whether `value` is a `dereverberation` setting: `None` (clips as recorded) or in :data:`DEREVERBERATIONS`."""
    return value is None or (isinstance(value, str) and value in DEREVERBERATIONS)


def is_dereverberation_taps(value) -> bool:
    """Whether `value` is a `dereverberation_taps` setting: `None` (:data:`WPE_SETTINGS`' 10) or a whole number of
    STFT frames from 1 to :data:`MAX_DEREVERBERATION_TAPS`."""
    return value is None or (
        isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_DEREVERBERATION_TAPS
    )


def dereverberation_taps_problem(taps, dereverberation) -> Optional[str]:
    """Why `dereverberation_taps=taps` cannot go with `dereverberation`, or `None` where it can."""
    if not is_dereverberation_taps(taps):
        return (
            f"dereverberation_taps must be a whole number of STFT frames (8 ms each) from 1 to "
            f"{MAX_DEREVERBERATION_TAPS}, or null (the default {WPE_SETTINGS['taps']}), got {taps!r}."
        )
    if taps is not None and dereverberation is None:
        return f"dereverberation_taps ({taps}) sets the filter of dereverberation: wpe, which is not set."
    return None


def check_dereverberation_installed(value) -> None:
    """Raise an `ImportError` saying how to install it where `dereverberation=value` needs a missing package."""
    if value == "wpe" and importlib.util.find_spec("nara_wpe") is None:
        raise ImportError(f"dereverberation='wpe' runs nara_wpe, which is not installed: {WPE_INSTALL}.")


def is_trim_silence_db(value) -> bool:
    """Whether `value` is a `trim_silence_db` setting: `None` (no trimming) or a number of dB above 0."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0)


class ClipLongerThanWindowError(ValueError):
    """A clip longer than the encoder's window, which Whisper's extractor would cut without a word."""


class SerWhisperFeatureExtractor(FeatureStatisticsMixin, WhisperFeatureExtractor):
    r"""[`WhisperFeatureExtractor`] that returns an `attention_mask`, refuses clips longer than its window
    (`chunk_length` seconds) and, with `normalization`, passes statistics of the encoder's mean states.

    Args:
        normalization (`str`, *optional*, defaults to `"none"`):
            `"none"`; `"global"`: the model standardises each layer's states with the training clips' statistics
            stored here (`feature_mean`, `feature_std`, one value per layer and dimension); `"speaker"`: with each
            speaker's own, passed as `speaker_statistics` (one `(mean, std)` per clip), falling back to the global
            ones with a warning when none are given; `"corpus"`: with each corpus' own, passed the same way;
            `"utterance"`: each clip's frames centred on their own mean by the model (`center_frames`, which
            needs no other clip), what remains standardised with the training clips' statistics as with `"global"`.
            Statistics are fitted by ser-hf training on the frozen encoder's
            cached states (FAST mode).
        feature_mean, feature_std (`list[float]`, *optional*): the stored global statistics.
        dereverberation (`str`, *optional*): `"wpe"`: each clip's late reverberation taken out by weighted prediction
            error (nara_wpe, one channel, :data:`WPE_SETTINGS`) before anything else, so that speech recorded in a
            room reaches the encoder nearer to how it left the speaker's mouth; like `trim_silence_db`, it applies
            wherever the extractor runs (training, the encoder caches and their condition copies, `pipeline`,
            `ser-hf predict` and `ser-hf evaluate --conditions`, whose room is added first). About 0.02 s per second
            of audio on one core. Needs the `dereverberation` extra (nara-wpe). `None` (the default): clips as
            recorded.
        dereverberation_taps (`int`, *optional*): with `dereverberation="wpe"`, the length of the prediction filter
            in STFT frames of 8 ms (1 to :data:`MAX_DEREVERBERATION_TAPS`): a longer filter reaches further into a
            room's tail and costs time in proportion. `None` (the default): :data:`WPE_SETTINGS`' 10 frames.
        trim_silence_db (`float`, *optional*): trim each clip's leading and trailing frames quieter than this many
            dB below its loudest frame (`librosa.effects.trim`, 25-ms frames) before the log-mel, so that the
            silence a recording set-up leaves around speech (a second on each side of a RAVDESS clip, little in
            others) is not pooled with it; a clip trimming would leave under 0.1 s is kept whole. Applies wherever
            the extractor runs (training, the encoder caches, `pipeline`, `ser-hf predict`'s windows, each one
            trimmed). `None` (the default): clips as they are.
        **kwargs: the arguments of [`WhisperFeatureExtractor`] (`feature_size`, `chunk_length`, ...).
    """

    model_input_names = ["input_features", "attention_mask"]
    # The encoder's pooled states vary from clip to clip by variances of 1e-6 to 1e-2: the functionals' floor (1e-5)
    # would flatten a good share of them.
    variance_floor = 1e-8
    stored_statistics_normalizations = (*STATISTICS_NORMALIZATIONS, UTTERANCE_NORMALIZATION)

    def __init__(
        self,
        normalization: str = "none",
        feature_mean: Optional[list[float]] = None,
        feature_std: Optional[list[float]] = None,
        return_attention_mask: bool = True,
        trim_silence_db: Optional[float] = None,
        speaker_statistics_check: bool = False,
        dereverberation: Optional[str] = None,
        dereverberation_taps: Optional[int] = None,
        **kwargs,
    ):
        if normalization not in STATE_NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(STATE_NORMALIZATIONS)}, got {normalization!r}.")
        if not is_trim_silence_db(trim_silence_db):
            raise ValueError(f"trim_silence_db must be a number of dB above 0 (e.g. 30), got {trim_silence_db!r}.")
        if not is_dereverberation(dereverberation):
            raise ValueError(
                f"dereverberation must be null or one of {', '.join(DEREVERBERATIONS)}, got {dereverberation!r}."
            )
        taps_problem = dereverberation_taps_problem(dereverberation_taps, dereverberation)
        if taps_problem:
            raise ValueError(taps_problem)
        check_dereverberation_installed(dereverberation)
        if not isinstance(speaker_statistics_check, bool):
            raise ValueError(f"speaker_statistics_check must be true or false, got {speaker_statistics_check!r}.")
        if speaker_statistics_check and normalization != "speaker":
            raise ValueError(
                f"speaker_statistics_check checks speaker statistics: it needs normalization='speaker', not "
                f"{normalization!r}."
            )
        super().__init__(return_attention_mask=return_attention_mask, **kwargs)
        self.normalization = normalization
        self.speaker_statistics_check = speaker_statistics_check
        self.feature_mean = feature_mean
        self.feature_std = feature_std
        self.trim_silence_db = trim_silence_db
        self.dereverberation = dereverberation
        self.dereverberation_taps = dereverberation_taps

    def dereverberate(self, clip) -> np.ndarray:
        """`clip` with its late reverberation taken out (`dereverberation="wpe"`: :data:`WPE_SETTINGS`, the filter
        `dereverberation_taps` long where set), as long as it was; as it is without that setting, or where it is
        shorter than one STFT frame."""
        clip = np.asarray(clip, dtype=np.float32)
        if self.dereverberation is None or clip.ndim != 1 or len(clip) < WPE_SETTINGS["stft_size"]:
            return clip
        from nara_wpe.utils import istft, stft  # only models that dereverberate need it
        from nara_wpe.wpe import wpe

        size, shift = WPE_SETTINGS["stft_size"], WPE_SETTINGS["stft_shift"]
        # nara_wpe's layouts: the STFT is (channels, frames, bins), wpe takes (bins, channels, frames).
        spectrum = stft(clip[None].astype(np.float64), size=size, shift=shift).transpose(2, 0, 1)
        filtered = wpe(
            spectrum,
            taps=self.dereverberation_taps or WPE_SETTINGS["taps"],
            delay=WPE_SETTINGS["delay"],
            iterations=WPE_SETTINGS["iterations"],
            statistics_mode="full",
        )
        return istft(filtered.transpose(1, 2, 0), size=size, shift=shift)[0][: len(clip)].astype(np.float32)

    def trim_silence(self, clip) -> np.ndarray:
        """`clip` without its leading and trailing silence (`trim_silence_db`); as it is without that setting, or
        where trimming would leave less than 0.1 s."""
        clip = np.asarray(clip, dtype=np.float32)
        if self.trim_silence_db is None or clip.ndim != 1 or len(clip) <= TRIM_MIN_SAMPLES:
            return clip
        import librosa  # only models that trim need it

        trimmed, _ = librosa.effects.trim(
            clip, top_db=self.trim_silence_db, frame_length=TRIM_FRAME_LENGTH, hop_length=TRIM_HOP_LENGTH
        )
        return trimmed if len(trimmed) >= TRIM_MIN_SAMPLES else clip

    def reads_whole(self, clip) -> bool:
        """Whether the encoder reads `clip` whole, through one window, as this extractor trims it: a clip longer than
        the window by its silence alone (`trim_silence_db`) is."""
        if self.trim_silence_db is None:  # nothing else changes a clip's length
            return np.shape(clip)[-1] <= self.n_samples
        return len(self.trim_silence(self.dereverberate(clip))) <= self.n_samples

    @classmethod
    def from_whisper(cls, feature_extractor: WhisperFeatureExtractor, **changes) -> "SerWhisperFeatureExtractor":
        """The same settings as a checkpoint's `WhisperFeatureExtractor`, with `changes` (such as `chunk_length`)."""
        settings = feature_extractor.to_dict()
        for key in ("feature_extractor_type", "processor_class", "n_samples", "nb_max_frames", "mel_filters"):
            settings.pop(key, None)
        settings.update(changes)
        return cls(**settings)

    def __call__(
        self,
        raw_speech,
        sampling_rate: Optional[int] = None,
        speaker_statistics: Optional[Sequence[Optional[Statistics]]] = None,
        return_tensors=None,
        return_state_statistics: bool = True,
        **kwargs,
    ) -> BatchFeature:
        """Log-mel features of the whole window with their `attention_mask` (and `state_mean`, `state_std` with
        `normalization`, unless `return_state_statistics=False`: the encoder's raw states, as FAST mode caches
        them); `**kwargs` as [`WhisperFeatureExtractor.__call__`]. Raises
        :class:`ClipLongerThanWindowError` for a clip longer than the window (classify long recordings by windows:
        `ser-hf predict` does)."""
        is_batched = isinstance(raw_speech, (list, tuple)) or (
            isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 1
        )
        clips = raw_speech if is_batched else [raw_speech]
        # The room first: a reverberant tail would otherwise be trimmed as speech.
        if self.dereverberation is not None:
            clips = [self.dereverberate(clip) for clip in clips]
        if self.trim_silence_db is not None:
            clips = [self.trim_silence(clip) for clip in clips]
        if self.dereverberation is not None or self.trim_silence_db is not None:
            raw_speech = clips if is_batched else clips[0]
        for index, clip in enumerate(clips):
            samples = np.shape(clip)[-1] if np.ndim(clip) else 0
            if samples > self.n_samples and kwargs.get("truncation") is not True:
                rate = sampling_rate or self.sampling_rate
                where = f"Clip {index} of the {len(clips)} in this call" if len(clips) > 1 else "The clip"
                raise ClipLongerThanWindowError(
                    f"{where} is {samples / rate:.3f} s long ({samples} samples), longer than the encoder's "
                    f"{self.chunk_length:g}-s window ({self.n_samples} samples), and would be cut. Classify long "
                    "recordings in windows (ser-hf predict and FAST training do), or call this extractor with "
                    "truncation=True to cut them."
                )
        # The encoder takes exactly its window: a batch padded to its longest clip (as collators ask) is padded on.
        kwargs.update(padding="max_length", max_length=None, pad_to_multiple_of=None)
        kwargs.setdefault("return_attention_mask", True)
        kwargs.setdefault("truncation", True)
        features = super().__call__(raw_speech, sampling_rate=sampling_rate, return_tensors=None, **kwargs)
        statistics = self.clip_statistics(len(clips), speaker_statistics) if return_state_statistics else None
        if statistics is not None:
            features["state_mean"], features["state_std"] = statistics
        return BatchFeature(dict(features), tensor_type=return_tensors)


__all__ = [
    "ClipLongerThanWindowError",
    "DEREVERBERATIONS",
    "STATE_NORMALIZATIONS",
    "SerWhisperFeatureExtractor",
    "is_dereverberation",
    "is_trim_silence_db",
    "UTTERANCE_NORMALIZATION",
]
