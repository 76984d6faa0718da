"""Shared front end of the baselines' feature extractors: raw audio in, one feature vector per frame out.

Frames are cut without centring (`center=False`): a frame exists only where it lies wholly inside the clip, so the
frames a clip gets are the same whether it is alone or padded in a batch, and no reflection of the padding leaks into
them. Features are computed in torch, batched, on any device. This file is copied next to saved models
(``register_for_auto_class``): it imports nothing from ser-hf.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence, Union

import numpy as np
import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

from .feature_normalization import FeatureStatisticsMixin, Statistics

logger = logging.getLogger(__name__)

#: Feature normalisations the extractors implement: per clip, none, or by stored statistics (see
#: :mod:`feature_normalization`).
NORMALIZATIONS = ("utterance", "none", "global", "speaker", "corpus")

AudioInput = Union[np.ndarray, torch.Tensor, Sequence[float], Sequence[np.ndarray], Sequence[torch.Tensor]]


class FramedAudioFeatureExtractor(FeatureStatisticsMixin, SequenceFeatureExtractor):
    r"""Base class: pads raw mono audio, frames it, and returns `input_features` `(batch, frames, feature_size)` with a
    frame-level `attention_mask`.

    Subclasses implement :meth:`compute_features`. Padded frames hold `padding_value` and are 0 in the mask, so the
    output can also be stored per clip (`padding=False`) and padded later with :meth:`pad` in a data collator.

    Args:
        feature_size (`int`):
            Number of features per frame.
        sampling_rate (`int`, *optional*, defaults to 16000):
            Sampling rate the audio must have, in Hz. Resampling is the data pipeline's job: a clip at another rate
            is an error, not silently reinterpreted.
        n_fft (`int`, *optional*, defaults to 400):
            Frame length in samples, and FFT size (25 ms at 16 kHz).
        win_length (`int`, *optional*):
            Window length in samples; defaults to `n_fft`.
        hop_length (`int`, *optional*, defaults to 160):
            Samples between frame starts (10 ms at 16 kHz).
        f_min (`float`, *optional*, defaults to 0.0):
            Lowest frequency of the mel filter bank, in Hz.
        f_max (`float`, *optional*):
            Highest frequency of the mel filter bank, in Hz; defaults to half the sampling rate.
        top_db (`float`, *optional*, defaults to 80.0):
            Log-power features are floored this many dB below the loudest frame of their clip, so digital silence
            does not produce arbitrarily low values. `None` disables the floor.
        normalization (`str`, *optional*, defaults to `"utterance"`):
            `"utterance"`: each feature is standardised to zero mean and unit variance over the clip's frames
            (cepstral mean and variance normalisation; this also removes the clip's loudness); `"none"`: features
            are returned as computed; `"global"`: standardised with the training set's `feature_mean` and
            `feature_std`; `"speaker"`: standardised with the statistics of the clip's speaker, passed as
            `speaker_statistics` (falling back to the global statistics without them); `"corpus"`: with the
            statistics of the clip's corpus, passed the same way.
        feature_mean, feature_std (`list[float]`, *optional*):
            The training set's per-feature statistics, for `"global"` and `"speaker"` (ser-hf training fits them).
        padding_value (`float`, *optional*, defaults to 0.0):
            Value of padded frames.
        return_attention_mask (`bool`, *optional*, defaults to `True`):
            Whether calls return the frame-level attention mask by default. The baselines need it to ignore padding.
    """

    model_input_names = ["input_features", "attention_mask"]

    def __init__(
        self,
        feature_size: int,
        sampling_rate: int = 16000,
        n_fft: int = 400,
        win_length: Optional[int] = None,
        hop_length: int = 160,
        f_min: float = 0.0,
        f_max: Optional[float] = None,
        top_db: Optional[float] = 80.0,
        normalization: str = "utterance",
        padding_value: float = 0.0,
        return_attention_mask: bool = True,
        feature_mean: Optional[list[float]] = None,
        feature_std: Optional[list[float]] = None,
        **kwargs,
    ):
        if kwargs.get("padding_side", "right") != "right":
            raise ValueError(f"{type(self).__name__} pads on the right only (frames are counted from the start).")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"Unknown normalization {normalization!r}; expected one of {', '.join(NORMALIZATIONS)}.")
        win_length = n_fft if win_length is None else win_length
        if not 0 < win_length <= n_fft:
            raise ValueError(f"win_length must be in (0, n_fft={n_fft}], got {win_length}.")
        if hop_length <= 0:
            raise ValueError(f"hop_length must be positive, got {hop_length}.")
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.f_min = f_min
        self.f_max = f_max
        self.top_db = top_db
        self.normalization = normalization
        self.feature_mean = feature_mean
        self.feature_std = feature_std

    def compute_features(self, waveforms: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Features `(batch, frames, feature_size)` of zero-padded `waveforms` `(batch, samples)`.

        `frame_mask` `(batch, frames)` marks each clip's real frames, for statistics taken per clip (the `top_db`
        floor). Implemented by subclasses.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement compute_features().")

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frames of a clip of `num_samples` samples: only whole frames count, and a clip shorter than one frame is
        zero-padded to one."""
        return 1 + torch.div(num_samples.clamp(min=self.n_fft) - self.n_fft, self.hop_length, rounding_mode="floor")

    def __call__(
        self,
        raw_speech: AudioInput,
        sampling_rate: Optional[int] = None,
        padding: Union[bool, str] = True,
        max_length: Optional[int] = None,
        truncation: bool = False,
        pad_to_multiple_of: Optional[int] = None,
        return_attention_mask: Optional[bool] = None,
        return_tensors: Optional[str] = None,
        device: Optional[Union[str, torch.device]] = None,
        speaker_statistics: Optional[Sequence[Optional[Statistics]]] = None,
        normalize: bool = True,
    ) -> BatchFeature:
        """Compute the features of one clip or a batch of clips.

        Args:
            raw_speech (`np.ndarray`, `torch.Tensor`, `list[float]`, `list[np.ndarray]` or `list[torch.Tensor]`):
                One mono clip (1-D), or a batch: a list of clips or a 2-D array of equal-length clips.
            sampling_rate (`int`, *optional*):
                Sampling rate of `raw_speech`; checked against the extractor's. Pass it: it catches unresampled audio.
            padding (`bool` or `str`, *optional*, defaults to `True`):
                `True` or `"longest"`: pad to the longest clip of the batch; `"max_length"`: pad to `max_length`
                samples; `False` or `"do_not_pad"`: return each clip's features unpadded, in a list.
            max_length (`int`, *optional*):
                Length in samples for `padding="max_length"` and `truncation`.
            truncation (`bool`, *optional*, defaults to `False`):
                Cut clips longer than `max_length` samples.
            pad_to_multiple_of (`int`, *optional*):
                Pad the batch to a multiple of this many samples.
            return_attention_mask (`bool`, *optional*):
                Whether to return the frame-level mask; defaults to the extractor's `return_attention_mask`.
            return_tensors (`str`, *optional*):
                `"pt"` for torch tensors (left on `device`), `"np"` for numpy arrays; lists of arrays otherwise.
            device (`str` or `torch.device`, *optional*, defaults to `"cpu"`):
                Where the features are computed: pass the model's device to compute them on its GPU.
            speaker_statistics (`list[tuple[np.ndarray, np.ndarray]]`, *optional*):
                With `normalization="speaker"`: the `(mean, std)` of each clip's speaker.
            normalize (`bool`, *optional*, defaults to `True`):
                `False` returns the features before normalisation (to compute statistics from).
        """
        self._check_sampling_rate(sampling_rate)
        clips = _as_clip_list(raw_speech)
        if truncation:
            if max_length is None:
                raise ValueError("truncation=True needs max_length (in samples).")
            clips = [clip[:max_length] for clip in clips]
        num_samples = torch.tensor([clip.shape[0] for clip in clips], dtype=torch.long)
        if int(num_samples.min()) == 0:
            raise ValueError("Cannot extract features from an empty clip.")

        target_length = int(num_samples.max())
        if padding == "max_length":
            if max_length is None:
                raise ValueError("padding='max_length' needs max_length (in samples).")
            if target_length > max_length:
                raise ValueError(
                    f"A clip has {target_length} samples, more than max_length={max_length}; pass truncation=True."
                )
            target_length = max_length
        elif padding not in (True, False, "longest", "do_not_pad"):
            raise ValueError(f"Unknown padding {padding!r}: use True, False, 'longest', 'max_length' or 'do_not_pad'.")
        if pad_to_multiple_of is not None:
            target_length = -(-target_length // pad_to_multiple_of) * pad_to_multiple_of
        target_length = max(target_length, self.n_fft)

        device = torch.device("cpu") if device is None else torch.device(device)
        waveforms = torch.zeros(len(clips), target_length, dtype=torch.float32)
        for row, clip in zip(waveforms, clips):
            row[: clip.shape[0]] = clip
        waveforms = waveforms.to(device)
        frames = self.num_frames(num_samples).to(device)
        total_frames = int(self.num_frames(torch.tensor(target_length)))
        frame_mask = torch.arange(total_frames, device=device)[None, :] < frames[:, None]

        with torch.no_grad():
            features = self.compute_features(waveforms, frame_mask)
            statistics = self.clip_statistics(len(clips), speaker_statistics) if normalize else None
            if normalize and self.normalization == "utterance":
                features = _standardize_over_frames(features, frame_mask)
            elif statistics is not None:
                mean, std = (torch.as_tensor(values, device=device).unsqueeze(1) for values in statistics)
                features = (features - mean) / std
            features = features.masked_fill(~frame_mask.unsqueeze(-1), self.padding_value)

        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        if padding in (False, "do_not_pad"):
            data = {"input_features": [f[:n] for f, n in zip(features, frames.tolist())]}
            if return_attention_mask:
                data["attention_mask"] = [torch.ones(n, dtype=torch.int32) for n in frames.tolist()]
        else:
            data = {"input_features": features}
            if return_attention_mask:
                data["attention_mask"] = frame_mask.to(torch.int32)
        if return_tensors != "pt":
            data = {key: _to_numpy(value) for key, value in data.items()}
        return BatchFeature(data, tensor_type=return_tensors)

    def _check_sampling_rate(self, sampling_rate: Optional[int]) -> None:
        if sampling_rate is None:
            logger.warning(
                "No sampling_rate was passed to %s: pass it to catch audio at the wrong rate (expected %d Hz).",
                type(self).__name__,
                self.sampling_rate,
            )
        elif sampling_rate != self.sampling_rate:
            raise ValueError(
                f"{type(self).__name__} expects audio at {self.sampling_rate} Hz but got {sampling_rate} Hz; "
                "resample it first."
            )


def _as_clip_list(raw_speech: AudioInput) -> list[torch.Tensor]:
    """Normalise the accepted input types into a list of 1-D float32 CPU tensors."""
    if isinstance(raw_speech, (np.ndarray, torch.Tensor)):
        array = _as_tensor(raw_speech)
        if array.dim() == 1:
            return [array.detach().to("cpu", torch.float32)]
        if array.dim() == 2:
            return [row.detach().to("cpu", torch.float32) for row in array]
        raise ValueError(f"Expected 1-D (a clip) or 2-D (a batch) mono audio, got shape {tuple(array.shape)}.")
    if isinstance(raw_speech, (list, tuple)):
        if len(raw_speech) == 0:
            raise ValueError("Got an empty batch of clips.")
        if isinstance(raw_speech[0], (np.ndarray, torch.Tensor, list, tuple)):
            clips = []
            for clip in raw_speech:
                clip = _as_tensor(clip)
                if clip.dim() != 1:
                    raise ValueError(f"Each clip must be mono (1-D), got shape {tuple(clip.shape)}.")
                clips.append(clip.detach().to("cpu", torch.float32))
            return clips
        return [torch.tensor(raw_speech, dtype=torch.float32)]
    raise TypeError(f"Unsupported audio input of type {type(raw_speech).__name__}.")


def _as_tensor(audio) -> torch.Tensor:
    # Numpy audio is copied: arrays read from a dataset or a buffer are often read-only, which a tensor cannot share
    # (torch warns "The given NumPy array is not writable"); the clip is copied into the padded batch anyway.
    return audio.detach() if isinstance(audio, torch.Tensor) else torch.tensor(np.asarray(audio))


def _standardize_over_frames(features: torch.Tensor, frame_mask: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean, unit variance per clip and feature over the real frames of `features` `(batch, frames, features)`."""
    mask = frame_mask.unsqueeze(-1).to(features.dtype)
    count = mask.sum(dim=1, keepdim=True)
    mean = (features * mask).sum(dim=1, keepdim=True) / count
    variance = (((features - mean) * mask) ** 2).sum(dim=1, keepdim=True) / count
    return (features - mean) / torch.sqrt(variance + eps)


def _to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return [_to_numpy(item) for item in value]


__all__ = ["FramedAudioFeatureExtractor"]
