"""The augmentation section of a recipe (:class:`AugmentationArguments`): training-time augmentation of the training
split, with the checks that stop settings the recipe's model cannot use before any data is loaded."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from ..errors import RecipeError
from ..inputs.augment import MIXED_COPY, spec_augment, waveform_augmentation
from .fields import OFF_OR_POSITIVE, CardRow
from .value_forms import as_list, as_range
from .values import check_numbers


@dataclass
class AugmentationArguments:
    """Training-time augmentation (the training split only). Every probability defaults to 0: off."""

    noise_prob: float = field(
        default=0.0,
        metadata={
            "help": "Probability of adding noise to a clip.",
            "card": CardRow(1, "additive noise", "SNR {noise_snr_db} dB"),
        },
    )
    noise_snr_db: list[float] = field(
        default_factory=lambda: [10.0, 30.0], metadata={"help": "SNR range [low, high] of the added noise, in dB."}
    )
    noise_files: Optional[list[str]] = field(
        default=None, metadata={"help": "Recorded noise clips to mix in; generated noise (noise_colors) if not given."}
    )
    noise_colors: list[str] = field(
        default_factory=lambda: ["white"],
        metadata={"help": "Colours of the generated noise, one drawn per clip: white, pink, brown."},
    )
    gain_prob: float = field(
        default=0.0,
        metadata={"help": "Probability of a random gain.", "card": CardRow(2, "random gain", "{gain_db} dB")},
    )
    gain_db: list[float] = field(default_factory=lambda: [-6.0, 6.0], metadata={"help": "Gain range in dB."})
    speed_prob: float = field(
        default=0.0,
        metadata={
            "help": "Probability of speed perturbation (tempo and pitch).",
            "card": CardRow(3, "speed perturbation", "factors {speed_factors}"),
        },
    )
    speed_factors: list[float] = field(
        default_factory=lambda: [0.9, 1.1], metadata={"help": "Speed factors to choose from (Kaldi uses 0.9, 1.1)."}
    )
    pitch_prob: float = field(
        default=0.0,
        metadata={
            "help": "Probability of a pitch shift (tempo kept).",
            "card": CardRow(4, "pitch shift", "{pitch_semitones} semitones"),
        },
    )
    pitch_semitones: list[float] = field(
        default_factory=lambda: [-2.0, 2.0], metadata={"help": "Pitch shift range in semitones."}
    )
    reverb_prob: float = field(
        default=0.0,
        metadata={
            "help": "Probability of reverberation.",
            "card": CardRow(5, "reverberation", "RT60 {reverb_rt60} s"),
        },
    )
    reverb_rt60: list[float] = field(
        default_factory=lambda: [0.2, 0.8], metadata={"help": "RT60 range (s) of generated impulse responses."}
    )
    impulse_responses: Optional[list[str]] = field(
        default=None, metadata={"help": "Recorded room impulse responses; generated ones when not given."}
    )
    lowpass_prob: float = field(
        default=0.0,
        metadata={
            "help": "Probability of band-limiting a clip (a narrowband channel, e.g. telephone).",
            "card": CardRow(6, "band-limiting", "cut-off {lowpass_hz} Hz"),
        },
    )
    lowpass_hz: list[float] = field(
        default_factory=lambda: [3000.0, 6000.0], metadata={"help": "Cut-off frequency range in Hz."}
    )
    telephone_prob: float = field(
        default=0.0,
        metadata={
            "help": "Probability of passing a clip through a narrowband telephone channel (300-3,400 Hz, 8 kHz, "
            "8-bit mu-law), as `ser-hf evaluate --conditions telephone` does.",
            "card": CardRow(7, "telephone channel", "300-3,400 Hz, 8 kHz, mu-law"),
        },
    )
    codec_prob: float = field(
        default=0.0,
        metadata={
            "help": "Probability of a lossy codec round trip (FFmpeg's encoder through torchcodec).",
            "card": CardRow(8, "lossy codec", "{codecs} at {codec_bitrate_kbps} kbit/s"),
        },
    )
    codecs: list[str] = field(
        default_factory=lambda: ["opus", "mp3"], metadata={"help": "Codecs to draw from, one per clip: opus, mp3."}
    )
    codec_bitrate_kbps: list[float] = field(
        default_factory=lambda: [8.0, 32.0], metadata={"help": "Bit-rate range [low, high] of the codec, in kbit/s."}
    )
    cached_augmented_copies: int = field(
        default=0,
        metadata={
            "help": "FAST mode and finetune_top_layers: encode N augmented copies of every clip once (the recipe's "
            "waveform augmentation, seeded per clip and copy) beside the clip itself, up to the first fine-tuned "
            "layer with finetune_top_layers; each training epoch draws, per clip, the clip or one of its copies. "
            "Validation and test clips are never augmented."
        },
    )
    augmented_copy_conditions: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "What each of the cached_augmented_copies holds, one entry per copy: 'mixed' (the recipe's "
            "waveform augmentation, each perturbation at its probability) or one perturbation (noise, reverb, "
            "telephone, codec, gain, speed, pitch, lowpass) applied to every clip of the copy, drawn from the "
            "recipe's ranges, the others off. A copy in one condition is standardised as ser-hf evaluate --conditions "
            "standardises a recording condition: each speaker's states with that speaker's statistics over the copy "
            "(each corpus' under corpus normalisation); a mixed copy with the statistics of the speaker's own clips. "
            "Default: every copy mixed."
        },
    )
    augmentation_seed: Optional[int] = field(
        default=None,
        metadata={
            "help": "Seed of the augmented copies' draws (cached_augmented_copies); default: the training seed. Fix "
            "it to train several seeds on the same copies, encoded once: the seeds then vary the training, not the "
            "copies."
        },
    )
    num_time_masks: int = field(default=0, metadata={"help": "SpecAugment time masks per clip (spectrogram models)."})
    time_mask_width: int = field(
        default=20,
        metadata={
            "help": "SpecAugment time masks are drawn 0 to this many frames wide, this width excluded (torchaudio's "
            "TimeMasking)."
        },
    )
    num_freq_masks: int = field(
        default=0, metadata={"help": "SpecAugment frequency masks per clip (spectrogram models)."}
    )
    freq_mask_width: int = field(
        default=8,
        metadata={
            "help": "SpecAugment frequency masks are drawn 0 to this many bins wide, this width excluded "
            "(torchaudio's FrequencyMasking)."
        },
    )
    mask_time_prob: Optional[float] = field(
        default=None, metadata={"help": "SSL encoders: wav2vec2's own SpecAugment, share of frames masked."}
    )
    mask_time_length: Optional[int] = field(default=None, metadata={"help": "SSL encoders: frames per time mask."})
    mask_feature_prob: Optional[float] = field(
        default=None, metadata={"help": "SSL encoders: share of feature channels masked."}
    )
    mask_feature_length: Optional[int] = field(
        default=None, metadata={"help": "SSL encoders: channels per feature mask."}
    )
    mixup_alpha: float = field(
        default=0.0,
        metadata={
            "help": "Mixup (Zhang et al., 2018): each training batch's inputs are mixed with the same batch in "
            "shuffled order, with a weight lambda drawn from Beta(mixup_alpha, mixup_alpha), and the loss mixes the "
            "two clips' labels the same way. 0: off. Models of fixed-size inputs only (opensmile).",
            "range": OFF_OR_POSITIVE,
        },
    )

    def __post_init__(self):
        for name in ("noise_files", "impulse_responses"):
            setattr(self, name, as_list(getattr(self, name)))
        for name in ("noise_colors", "codecs"):
            setattr(self, name, [str(choice) for choice in as_list(getattr(self, name))])
        self.speed_factors = [float(f) for f in as_list(self.speed_factors)]
        for name in ("noise_snr_db", "gain_db", "pitch_semitones", "reverb_rt60", "lowpass_hz", "codec_bitrate_kbps"):
            setattr(self, name, list(as_range(getattr(self, name), name)))
        copies = self.cached_augmented_copies
        if isinstance(copies, bool) or not isinstance(copies, int) or not 0 <= copies <= 32:
            raise RecipeError(f"cached_augmented_copies: {copies!r} must be a whole number from 0 to 32.")
        self.augmented_copy_conditions = self._checked_copy_conditions()
        seed = self.augmentation_seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise RecipeError(f"augmentation_seed: {seed!r} must be a whole number from 0, or unset.")
        for name in ("noise_files", "impulse_responses"):
            missing = [path for path in getattr(self, name) or [] if not os.path.isfile(path)]
            if missing:
                raise RecipeError(f"{name}: {missing} do not exist.")
        check_numbers(self)
        try:  # the augmentation classes validate their values; fail here, before any data is loaded
            waveform_augmentation(self, 16000)
            spec_augment(self)
        except ValueError as error:
            raise RecipeError(str(error)) from None

    def _checked_copy_conditions(self) -> Optional[list[str]]:
        """``augmented_copy_conditions`` as strings, one per copy, each ``mixed`` or a perturbation's name."""
        conditions = as_list(self.augmented_copy_conditions)
        if conditions is None:
            return None
        conditions = [str(condition) for condition in conditions]
        known = [MIXED_COPY, *self.waveform_perturbations()]
        unknown = [condition for condition in conditions if condition not in known]
        if unknown:
            raise RecipeError(
                f"augmented_copy_conditions: {unknown[0]!r} is not a copy's condition; each entry is one of "
                f"{', '.join(known)}."
            )
        if len(conditions) != self.cached_augmented_copies:
            raise RecipeError(
                f"augmented_copy_conditions: {len(conditions)} entries ({conditions}) for cached_augmented_copies: "
                f"{self.cached_augmented_copies}; give one condition per copy."
            )
        return conditions

    def copy_condition(self, copy: int) -> str:
        """The condition of the `copy`-th cached augmented copy (1-based): ``mixed``, or one perturbation's name."""
        return (self.augmented_copy_conditions or [MIXED_COPY] * self.cached_augmented_copies)[copy - 1]

    def copy_augmentation(self, copy: int, sampling_rate: int):
        """The :class:`~ser_hf.inputs.augment.WaveformAugmentation` of the `copy`-th cached copy: the recipe's for a
        mixed copy; for a copy in one condition, that perturbation on every clip (probability 1, the recipe's
        ranges) and the others off."""
        condition = self.copy_condition(copy)
        return waveform_augmentation(self, sampling_rate, None if condition == MIXED_COPY else condition)

    def own_statistics_copies(self) -> list[int]:
        """The copies (1-based) in one condition, each standardised with its speakers' statistics over the copy."""
        return [copy for copy in range(1, self.cached_augmented_copies + 1) if self.copy_condition(copy) != MIXED_COPY]

    @classmethod
    def waveform_perturbations(cls) -> list[str]:
        """The waveform perturbations' names (``reverb`` for ``reverb_prob``)."""
        return [name.removesuffix("_prob") for name in cls.waveform_probabilities()]

    @classmethod
    def waveform_probabilities(cls) -> list[str]:
        """The waveform perturbations' probabilities (``*_prob``; wav2vec2's ``mask_*_prob`` mask features)."""
        return [item.name for item in fields(cls) if item.name.endswith("_prob") and not item.name.startswith("mask_")]

    def ssl_masking(self) -> dict[str, Any]:
        """wav2vec2-style masking settings to write into an SSL encoder's config (only those the recipe sets)."""
        names = ("mask_time_prob", "mask_time_length", "mask_feature_prob", "mask_feature_length")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


__all__ = ["AugmentationArguments"]
