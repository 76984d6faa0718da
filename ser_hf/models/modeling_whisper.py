"""Whisper's encoder as a speech emotion classifier, pooling only the frames each clip covers.

`WhisperFeatureExtractor` pads every clip with silence to the encoder's whole window (30 s for OpenAI's checkpoints)
and transformers' `WhisperForAudioClassification` averages every frame of it: a 3-s clip is then one tenth speech and
nine tenths padding. :class:`SerWhisperForAudioClassification` reads the feature extractor's `attention_mask` (one
value per mel frame; two mel frames make one encoder frame) and pools the clip's own frames only, with any
`pooling_mode`. Every clip is padded to the same window, so a clip's logits do not depend on the batch it is in.

The pooled encoder states can be standardised with statistics the feature extractor passes as `state_mean` and
`state_std` (see `ser_hf.models.SerWhisperFeatureExtractor`, `normalization="global"` or `"speaker"`): each layer's
frames are standardised before the weighted layer sum, which for mean pooling equals standardising the clip's mean
states, as FAST mode caches them. This file is copied next to saved models (``register_for_auto_class``): it imports
nothing from ser-hf.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import torch
from torch import nn
from transformers import WhisperForAudioClassification
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput
from transformers.models.whisper.modeling_whisper import WhisperEncoder, WhisperPreTrainedModel

from .configuration_whisper import SerWhisperConfig
from .pooling import TemporalPooling, masked_mean_and_std

logger = logging.getLogger(__name__)

# Forwarded to the encoder; every other keyword argument is a loss argument (such as `num_items_in_batch`).
_ENCODER_OUTPUT_FLAGS = ("output_attentions", "output_hidden_states")


class SerWhisperForAudioClassification(WhisperForAudioClassification):
    """Whisper's encoder, an optional learned weighted sum of its layers, a projector, a pooling of the clip's own
    frames (`config.pooling_mode`) and a linear classifier; or, with `pooling_mode="layer_statistics"`, each layer's
    mean and standard deviation over the clip's own frames, concatenated, projected and classified. Logits are divided
    by `config.calibration_temperature` when the config has one (temperature scaling fitted after training)."""

    config_class = SerWhisperConfig

    @property
    def is_gradient_checkpointing(self) -> bool:
        # peft (0.21) reads this alias, deprecated by transformers 5 (a FutureWarning at every LoRA wrap), when it
        # wraps the model in adapters: answered with the current name.
        return self.is_activation_checkpointing

    def __init__(self, config: SerWhisperConfig):
        # Skips the parent's __init__, which would build a mean-pooling classifier only to replace it.
        WhisperPreTrainedModel.__init__(self, config)
        self.encoder = WhisperEncoder(config)
        num_layers = config.num_hidden_layers + 1 if config.use_weighted_layer_sum else 1  # + the input embeddings
        self.layer_selection = None
        if config.pools_layer_statistics:
            # Each layer's mean and standard deviation over the clip's frames, concatenated: the projector weighs
            # the layers itself, so no layer weights are learned.
            if config.pooled_layers is not None:
                self.layer_selection = PooledLayerSelection(config.pooled_layers, num_layers)
            self.projector = nn.Linear(2 * config.pooled_layer_count * config.hidden_size, config.classifier_proj_size)
            self.pooler = None
            pooled_size = config.classifier_proj_size
        else:
            if config.use_weighted_layer_sum:
                self.layer_weights = nn.Parameter(torch.ones(num_layers) / num_layers)
            self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
            self.pooler = TemporalPooling(
                config.classifier_proj_size, config.pooling_mode, config.pooling_attention_size
            )
            pooled_size = self.pooler.output_size
        self.head_dropout = nn.Dropout(config.head_dropout)
        self.classifier = nn.Linear(pooled_size, config.num_labels)
        self._unmasked_said = False
        self.post_init()

    @property
    def base_model(self) -> WhisperEncoder:
        """The encoder (Whisper's `base_model_prefix` names the encoder-decoder model, which is not built here)."""
        return self.encoder

    # The names every ser-hf encoder family answers to (wav2vec 2.0's), so training regimes treat them alike.
    def freeze_feature_encoder(self) -> None:
        """Freeze the two convolutions that turn log-mel frames into the encoder's input (the positional embeddings
        are never trained)."""
        self.encoder.conv1.requires_grad_(False)
        self.encoder.conv2.requires_grad_(False)

    def freeze_base_model(self) -> None:
        """Freeze the whole encoder: only the head (and the layer weights) train."""
        self.encoder._freeze_parameters()

    def frame_mask(self, attention_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
        """`(batch, num_frames)` booleans, true on the encoder frames a clip covers, from the feature extractor's
        mel-frame `attention_mask` (the encoder's second convolution has stride 2), cut to the first `num_frames`
        (fewer than the window's with `config.trim_window`), on the encoder's device (the feature extractor returns
        the mask on the CPU)."""
        stride = self.encoder.conv1.stride[0] * self.encoder.conv2.stride[0]
        window = self.config.max_source_positions * stride
        if attention_mask.shape[-1] != window:
            raise ValueError(
                f"attention_mask has {attention_mask.shape[-1]} mel frames, but the encoder's window takes "
                f"{window}: pass the mask this model's feature extractor returns."
            )
        return attention_mask[:, ::stride][:, :num_frames].bool().to(self.encoder.conv1.weight.device)

    def encoder_layers(self, input_features: torch.Tensor, attention_mask: Optional[torch.Tensor] = None, **flags):
        """The encoder's outputs and the hidden states the head reads: every layer (the input embeddings first)
        with `use_weighted_layer_sum`, the last one otherwise. With `config.trim_window` (and an `attention_mask`)
        only the batch's longest clip's frames are encoded (see :meth:`trimmed_encoder_states`)."""
        if self.config.trim_window and attention_mask is not None:
            frame_mask = self.frame_mask(attention_mask, self.config.max_source_positions)
            embeddings, frame_mask = self.trimmed_embeddings(input_features, frame_mask)
            states = self.run_encoder_layers(embeddings, frame_mask, start=0)
            layers = self.head_layers(states)
            outputs = BaseModelOutput(last_hidden_state=states[-1], hidden_states=tuple(states))
            return outputs, layers
        if self.config.use_weighted_layer_sum:
            flags["output_hidden_states"] = True
        outputs = self.encoder(input_features, **flags)
        layers = outputs.hidden_states if self.config.use_weighted_layer_sum else (outputs.last_hidden_state,)
        return outputs, layers

    def trimmed_embeddings(
        self, input_features: torch.Tensor, frame_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's input embeddings (convolutions and positional embeddings) of the frames up to the batch's
        longest clip, `(batch, frames, hidden)`, and the frame mask cut to them. The window's remaining padding is
        never computed; the frames kept are exactly those the whole window would give (the convolutions see the
        same mel frames around them)."""
        frames = max(int(frame_mask.sum(dim=1).max()), 1)
        stride = self.encoder.conv1.stride[0] * self.encoder.conv2.stride[0]
        # One mel frame past the last one kept: the second convolution (kernel 3, stride 2) reads it.
        mel = input_features[..., : min(frames * stride + 1, input_features.shape[-1])]
        hidden = nn.functional.gelu(self.encoder.conv1(mel))
        hidden = nn.functional.gelu(self.encoder.conv2(hidden))[..., :frames].permute(0, 2, 1)
        hidden = hidden + self.encoder.embed_positions.weight[:frames].to(hidden.dtype)
        return hidden, frame_mask[:, :frames]

    def run_encoder_layers(self, hidden: torch.Tensor, frame_mask: torch.Tensor, start: int) -> list[torch.Tensor]:
        """Run the encoder's layers from `start` on `hidden` (the input of layer `start`), each clip's padded frames
        masked out of attention; returns `hidden` and every layer's output, the last after the encoder's layer norm
        (as Whisper's `hidden_states`)."""
        mask = torch.zeros(frame_mask.shape, dtype=hidden.dtype, device=hidden.device)
        mask = mask.masked_fill(~frame_mask.bool(), torch.finfo(hidden.dtype).min)[:, None, None, :]
        states = [hidden]
        layers = self.encoder.layers
        for index in range(start, len(layers)):
            hidden = layers[index](hidden, mask)
            states.append(hidden)
        states[-1] = self.encoder.layer_norm(states[-1])
        return states

    def standardize_states(
        self, layers: torch.Tensor, state_mean: Optional[torch.Tensor], state_std: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """Standardise `layers` `(batch, num_layers, ..., hidden)` with per-clip statistics `(batch, num_layers *
        hidden)` (or `(batch, hidden)` for the last layer alone); unchanged without them."""
        if state_mean is None and state_std is None:
            return layers
        if state_mean is None or state_std is None:
            raise ValueError("Pass both state_mean and state_std, or neither.")
        shape = (layers.shape[0], layers.shape[1]) + (1,) * (layers.dim() - 3) + (layers.shape[-1],)
        expected = layers.shape[1] * layers.shape[-1]
        if state_mean.shape[-1] != expected or state_std.shape[-1] != expected:
            raise ValueError(
                f"state_mean and state_std must hold {expected} values per clip ({layers.shape[1]} layer(s) of "
                f"{layers.shape[-1]}), got {state_mean.shape[-1]} and {state_std.shape[-1]}: they come from a "
                "feature extractor fitted for another encoder or layer choice."
            )
        mean = state_mean.to(layers.dtype).reshape(shape)
        std = state_std.to(layers.dtype).reshape(shape)
        return (layers - mean) / std

    def combine_layers(self, layers: torch.Tensor) -> torch.Tensor:
        """`(batch, num_layers, ..., hidden)` -> `(batch, ..., hidden)`: the softmax-weighted layer sum, or the one
        layer."""
        if not self.config.use_weighted_layer_sum:
            return layers[:, 0]
        weights = nn.functional.softmax(self.layer_weights, dim=-1).to(layers.dtype)
        return (layers * weights.view((1, -1) + (1,) * (layers.dim() - 2))).sum(dim=1)

    def forward(
        self,
        input_features: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        state_mean: Optional[torch.Tensor] = None,
        state_std: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, num_mel_bins, window_frames)`):
            Log-mel spectrograms of the whole window, as the model's feature extractor returns them.
        attention_mask (`torch.LongTensor` of shape `(batch_size, window_frames)`, *optional*):
            1 on the mel frames the clip covers, 0 on the window's padding. Without it every frame is pooled, the
            padding included (transformers' `WhisperForAudioClassification` behaviour), with a warning.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices for the classification loss.
        state_mean, state_std (`torch.FloatTensor` of shape `(batch_size, layers * hidden_size)`, *optional*):
            Statistics to standardise each layer's states with (from the feature extractor's `normalization`).
        """
        return_dict = kwargs.pop("return_dict", None)
        encoder_flags = {name: kwargs.pop(name) for name in _ENCODER_OUTPUT_FLAGS if name in kwargs}
        wants_hidden_states = bool(encoder_flags.get("output_hidden_states", self.config.output_hidden_states))
        outputs, layers = self.encoder_layers(input_features, attention_mask, **encoder_flags)
        frame_mask = self._frame_mask_or_warn(attention_mask, layers[0].shape[1])
        if self.config.pools_layer_statistics:
            pooled = self.standardize_pooled_states(
                pool_layer_statistics(layers, frame_mask).flatten(1), state_mean, state_std
            )
            if self.config.center_frames:
                pooled = centred_layer_statistics(pooled, len(layers))
            logits = self.classify_pooled_states(pooled)
        else:
            hidden_states = self.combine_layers(
                self.standardize_states(torch.stack(layers, dim=1), state_mean, state_std)
            )
            pooled = self.pooler(self.projector(hidden_states), frame_mask)
            logits = self.classifier(self.head_dropout(pooled))
        logits = logits / getattr(self.config, "calibration_temperature", 1.0)

        loss = self.loss_function(labels, logits, self.config, **kwargs) if labels is not None else None
        output = SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states if wants_hidden_states else None,
            attentions=outputs.attentions,
        )
        return output if return_dict is not False else output.to_tuple()

    def _frame_mask_or_warn(self, attention_mask: Optional[torch.Tensor], num_frames: int) -> Optional[torch.Tensor]:
        if attention_mask is not None:
            return self.frame_mask(attention_mask, num_frames)
        if not self._unmasked_said:
            logger.warning(
                "No attention_mask: pooling every frame of the %g-s window, the padding included. Pass the "
                "attention_mask the model's feature extractor returns to pool only the clip's own frames.",
                self.config.window_seconds,
            )
            self._unmasked_said = True
        return None

    def standardize_pooled_states(
        self, pooled: torch.Tensor, state_mean: Optional[torch.Tensor], state_std: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """Standardise pooled states `(batch, features)` (flattened as cached) with per-clip statistics of the same
        width; unchanged without them."""
        if state_mean is None and state_std is None:
            return pooled
        if state_mean is None or state_std is None:
            raise ValueError("Pass both state_mean and state_std, or neither.")
        if state_mean.shape[-1] != pooled.shape[-1] or state_std.shape[-1] != pooled.shape[-1]:
            raise ValueError(
                f"state_mean and state_std must hold {pooled.shape[-1]} values per clip, got {state_mean.shape[-1]} "
                f"and {state_std.shape[-1]}: they come from a feature extractor fitted for another encoder, layer "
                "choice or pooling."
            )
        return (pooled - state_mean.to(pooled.dtype)) / state_std.to(pooled.dtype)

    def classify_pooled_states(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits of `"layer_statistics"` pooling from the standardised, flattened layer statistics `(batch, 2 *
        layers * hidden)` of every layer: the head FAST mode trains on the cached statistics (only the layers
        `config.pooled_layers` lists, when set)."""
        if self.layer_selection is not None:
            pooled = self.layer_selection(pooled)
        return self.classifier(self.head_dropout(self.projector(self.head_dropout(pooled))))

    @torch.no_grad()
    def pooled_encoder_states(self, input_features: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """What FAST mode caches of each clip, from its own frames only: with `"mean"` pooling each layer's mean
        states, `(batch, num_layers, hidden)` with `use_weighted_layer_sum` (the input embeddings first), `(batch,
        hidden)` otherwise (with the head's mean pooling the logits follow from these alone); with
        `"layer_statistics"` each layer's mean and standard deviation, `(batch, num_layers, 2 * hidden)`."""
        _, layers = self.encoder_layers(input_features, attention_mask)
        return self.pool_encoder_layers(layers, attention_mask)

    def pool_encoder_layers(self, layers: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> torch.Tensor:
        """:meth:`pooled_encoder_states` from the layers the head reads (as :meth:`encoder_layers` returns them): an
        ONNX export computes them beside the logits, from the same encoder pass."""
        mask = self.frame_mask(attention_mask, layers[0].shape[1])
        if self.config.pools_layer_statistics:
            return pool_layer_statistics(layers, mask)
        means = pool_layer_statistics(layers, mask, with_std=False)
        return means if self.config.use_weighted_layer_sum else means[:, 0]

    def head_layers(self, hidden_states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The layers the head reads, out of every hidden state the encoder returns (`output_hidden_states`, the
        input embeddings first): all of them with `use_weighted_layer_sum`, the last one otherwise."""
        return tuple(hidden_states) if self.config.use_weighted_layer_sum else (hidden_states[-1],)


class PooledLayerSelection(nn.Module):
    """The statistics of some layers (`config.pooled_layers`) out of flattened layer statistics `(batch, num_layers *
    width)`: `(batch, len(layers) * width)`, in the order `layers` lists them."""

    def __init__(self, layers: Sequence[int], num_layers: int):
        super().__init__()
        # A list, not a buffer: nothing to save, and no weight loading can leave it uninitialised.
        self.num_layers, self.layers = num_layers, list(layers)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        if pooled.shape[-1] % self.num_layers:
            raise ValueError(
                f"Expected the statistics of {self.num_layers} layers, flattened; got {pooled.shape[-1]} values."
            )
        index = torch.tensor(self.layers, device=pooled.device)
        return pooled.reshape(pooled.shape[0], self.num_layers, -1).index_select(1, index).flatten(1)


def centred_layer_statistics(pooled: torch.Tensor, num_layers: int) -> torch.Tensor:
    """Flattened layer statistics `(batch, num_layers * 2 * hidden)` (each layer's means, then its standard
    deviations) as they are when every layer's frames are first centred on the clip's own mean (`center_frames`): the
    means zero, the standard deviations unchanged."""
    statistics = pooled.reshape(pooled.shape[0], num_layers, 2, -1)
    return torch.cat([torch.zeros_like(statistics[:, :, :1]), statistics[:, :, 1:]], dim=2).reshape(pooled.shape)


def pool_layer_statistics(
    layers: Sequence[torch.Tensor], frame_mask: Optional[torch.Tensor], with_std: bool = True
) -> torch.Tensor:
    """Each layer's mean (and population standard deviation, with the floor of `masked_mean_and_std`) over the
    frames `frame_mask` marks (every frame without it), in float32: `(batch, num_layers, 2 * hidden)` (means, then
    standard deviations), or `(batch, num_layers, hidden)` with `with_std=False`."""
    first = layers[0]
    if frame_mask is None:
        frame_mask = torch.ones(first.shape[:2], dtype=torch.bool, device=first.device)
    if with_std:
        return torch.stack([torch.cat(masked_mean_and_std(layer.float(), frame_mask), dim=-1) for layer in layers], 1)
    mask = frame_mask.unsqueeze(-1)
    counts = mask.sum(dim=1).clamp(min=1).to(torch.float32)
    # `where`, not a product with the mask: padded frames never reach the sum.
    return torch.stack([torch.where(mask, layer.float(), 0.0).sum(dim=1) / counts for layer in layers], dim=1)


__all__ = [
    "PooledLayerSelection",
    "SerWhisperForAudioClassification",
    "centred_layer_statistics",
    "pool_layer_statistics",
]
