"""MFCC and engineered frame features, the front end of the MFCC baseline.

Per frame: `n_mfcc` MFCCs, then zero-crossing rate, RMS energy, spectral centroid, spectral bandwidth and spectral
roll-off, the frame features of the classic SER feature sets (librosa's definitions, computed in torch).
"""

from __future__ import annotations

import torch
import torchaudio

from .feature_extraction_framed import FramedAudioFeatureExtractor
from .feature_extraction_log_mel import power_to_db

#: Names of the engineered features appended after the MFCCs, in order.
FRAME_FEATURE_NAMES = ("zero_crossing_rate", "rms", "spectral_centroid", "spectral_bandwidth", "spectral_rolloff")


class MFCCFeatureExtractor(FramedAudioFeatureExtractor):
    r"""Turns 16 kHz mono audio into `input_features` `(batch, frames, n_mfcc + 5)`: MFCCs and five frame features.

    Spectral centroid, bandwidth and roll-off are in Hz, so the features have very different scales; the default
    `normalization="none"` leaves them as computed, since the MFCC model's input batch norm standardises each
    feature with statistics learned over the training set, where per-clip standardisation would erase the per-clip
    means that the model aggregates.

    Args:
        n_mfcc (`int`, *optional*, defaults to 40):
            Number of cepstral coefficients.
        n_mels (`int`, *optional*, defaults to 64):
            Mel bands the cepstrum is computed from.
        roll_percent (`float`, *optional*, defaults to 0.85):
            Share of the spectral magnitude below the roll-off frequency.
        normalization (`str`, *optional*, defaults to `"none"`):
            See [`FramedAudioFeatureExtractor`].
        sampling_rate, n_fft, win_length, hop_length, f_min, f_max, top_db, padding_value, return_attention_mask:
            See [`FramedAudioFeatureExtractor`].
    """

    def __init__(
        self, n_mfcc: int = 40, n_mels: int = 64, roll_percent: float = 0.85, normalization: str = "none", **kwargs
    ):
        feature_size = kwargs.pop("feature_size", n_mfcc + len(FRAME_FEATURE_NAMES))
        if feature_size != n_mfcc + len(FRAME_FEATURE_NAMES):
            raise ValueError(f"feature_size ({feature_size}) must equal n_mfcc + {len(FRAME_FEATURE_NAMES)}.")
        if not 0 < n_mfcc <= n_mels:
            raise ValueError(f"n_mfcc must be in (0, n_mels={n_mels}], got {n_mfcc}.")
        if not 0.0 < roll_percent < 1.0:
            raise ValueError(f"roll_percent must be in (0, 1), got {roll_percent}.")
        super().__init__(feature_size=feature_size, normalization=normalization, **kwargs)
        self.n_mfcc = n_mfcc
        self.n_mels = n_mels
        self.roll_percent = roll_percent

    @property
    def feature_names(self) -> list[str]:
        """Name of each feature column of `input_features`."""
        return [f"mfcc_{index}" for index in range(self.n_mfcc)] + list(FRAME_FEATURE_NAMES)

    def compute_features(self, waveforms: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        device = waveforms.device
        power = torchaudio.transforms.Spectrogram(
            n_fft=self.n_fft, win_length=self.win_length, hop_length=self.hop_length, center=False, power=2.0
        ).to(device)(waveforms)
        mel_power = torchaudio.transforms.MelScale(
            n_mels=self.n_mels,
            sample_rate=self.sampling_rate,
            f_min=self.f_min,
            f_max=self.f_max,
            n_stft=self.n_fft // 2 + 1,
            norm="slaney",
            mel_scale="slaney",
        ).to(device)(power)
        dct = torchaudio.functional.create_dct(self.n_mfcc, self.n_mels, norm="ortho").to(device)
        mfcc = power_to_db(mel_power, frame_mask, self.top_db).transpose(1, 2) @ dct

        # The same frames as the STFT above: `center=False` starts frame t at sample t * hop_length.
        frames = waveforms.unfold(-1, self.n_fft, self.hop_length)
        sign_changes = torch.signbit(frames[..., 1:]) != torch.signbit(frames[..., :-1])
        zero_crossing_rate = sign_changes.sum(dim=-1).to(waveforms.dtype) / self.n_fft
        rms = frames.pow(2).mean(dim=-1).sqrt()

        magnitude = power.sqrt()
        frequencies = torch.linspace(0, self.sampling_rate / 2, magnitude.shape[1], device=device)[None, :, None]
        total = magnitude.sum(dim=1, keepdim=True)
        distribution = magnitude / total.clamp(min=torch.finfo(magnitude.dtype).tiny)
        centroid = (frequencies * distribution).sum(dim=1, keepdim=True)
        bandwidth = ((frequencies - centroid).pow(2) * distribution).sum(dim=1).sqrt()
        below = magnitude.cumsum(dim=1) < self.roll_percent * total
        rolloff_bin = below.sum(dim=1).clamp(max=magnitude.shape[1] - 1)
        rolloff = frequencies.view(-1)[rolloff_bin]

        frame_features = torch.stack([zero_crossing_rate, rms, centroid.squeeze(1), bandwidth, rolloff], dim=-1)
        return torch.cat([mfcc, frame_features], dim=-1)


__all__ = ["FRAME_FEATURE_NAMES", "MFCCFeatureExtractor"]
