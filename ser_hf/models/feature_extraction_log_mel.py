"""Log-mel spectrogram feature extractor, the front end of the CNN2D and CRNN baselines."""

from __future__ import annotations

from typing import Optional

import torch
import torchaudio

from .feature_extraction_framed import FramedAudioFeatureExtractor


class LogMelFeatureExtractor(FramedAudioFeatureExtractor):
    r"""Turns 16 kHz mono audio into log-mel spectrograms `input_features` `(batch, frames, n_mels)` in dB.

    Args:
        n_mels (`int`, *optional*, defaults to 64):
            Number of mel bands.
        mel_scale (`str`, *optional*, defaults to `"slaney"`):
            `"slaney"` (librosa's default) or `"htk"`.
        sampling_rate, n_fft, win_length, hop_length, f_min, f_max, top_db, normalization, padding_value,
        return_attention_mask:
            See [`FramedAudioFeatureExtractor`].

    Example:

    ```python
    >>> import numpy as np
    >>> from ser_hf.models import LogMelFeatureExtractor
    >>> extractor = LogMelFeatureExtractor(n_mels=64)
    >>> batch = extractor([np.zeros(16000), np.zeros(8000)], sampling_rate=16000, return_tensors="pt")
    >>> batch["input_features"].shape, batch["attention_mask"].sum(-1).tolist()
    (torch.Size([2, 98, 64]), [98, 48])
    ```
    """

    def __init__(self, n_mels: int = 64, mel_scale: str = "slaney", **kwargs):
        feature_size = kwargs.pop("feature_size", n_mels)
        if feature_size != n_mels:
            raise ValueError(f"feature_size ({feature_size}) must equal n_mels ({n_mels}) for log-mel features.")
        if mel_scale not in ("slaney", "htk"):
            raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {mel_scale!r}.")
        super().__init__(feature_size=n_mels, **kwargs)
        self.n_mels = n_mels
        self.mel_scale = mel_scale

    def compute_features(self, waveforms: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        spectrogram = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.sampling_rate,
            n_fft=self.n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            f_min=self.f_min,
            f_max=self.f_max,
            n_mels=self.n_mels,
            center=False,
            power=2.0,
            norm="slaney" if self.mel_scale == "slaney" else None,
            mel_scale=self.mel_scale,
        ).to(waveforms.device)
        log_mel = power_to_db(spectrogram(waveforms), frame_mask, self.top_db)
        return log_mel.transpose(1, 2)


def power_to_db(power: torch.Tensor, frame_mask: torch.Tensor, top_db: Optional[float]) -> torch.Tensor:
    """Power `(batch, bins, frames)` to dB, floored `top_db` below the loudest real frame of each clip.

    torchaudio's `AmplitudeToDB(top_db=...)` takes the maximum over the whole batch (and its padding) for 3-D input;
    the floor here is per clip, so a clip's features do not depend on its batch.
    """
    decibels = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=None)(power)
    if top_db is None:
        return decibels
    peak = decibels.masked_fill(~frame_mask.unsqueeze(1), float("-inf")).amax(dim=(1, 2), keepdim=True)
    return torch.maximum(decibels, peak - top_db)


__all__ = ["LogMelFeatureExtractor", "power_to_db"]
