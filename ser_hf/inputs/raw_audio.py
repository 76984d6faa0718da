"""Raw audio: the model reads each batch's waveforms through its own feature extractor, run by the collator at every
step (random crops, waveform augmentation and SpecAugment for training). The baselines' mode, and an SSL model's
where its frozen feature encoder's outputs cannot be cached (:mod:`ser_hf.inputs.feature_encoder_cache`)."""

from __future__ import annotations

import dataclasses
import logging

from datasets import DatasetDict
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..data.decode import WAVEFORM_COLUMN
from ..models.feature_extraction_whisper import SerWhisperFeatureExtractor
from .augment import spec_augment, waveform_augmentation
from .base import InputMode
from .collators import AudioClassificationCollator, padding_multiple

logger = logging.getLogger(__name__)


class RawAudioMode(InputMode):
    """The decoded waveforms, batched by :class:`~ser_hf.inputs.collators.AudioClassificationCollator`."""

    name = "raw audio"
    columns = (WAVEFORM_COLUMN,)

    def fold_training_args(self, training_args, feature_extractor: SequenceFeatureExtractor, inputs: DatasetDict):
        # ser-hf's Whisper extractor returns the mask whatever its return_attention_mask says (OpenAI's checkpoints
        # say false): a clip's scores never depend on its batch.
        if (
            self.model_args.is_baseline
            or getattr(feature_extractor, "return_attention_mask", True)
            or isinstance(feature_extractor, SerWhisperFeatureExtractor)
        ):
            return training_args
        # Group-norm encoders (wav2vec2-base, hubert-base) see no attention mask on raw audio, so padding changes
        # their output: evaluate clip by clip, as pipeline() will run the exported model.
        logger.info("%s takes no attention mask: evaluating one clip per batch.", self.model_args.model_type)
        return dataclasses.replace(training_args, per_device_eval_batch_size=1)

    def collators(self, feature_extractor, inputs, training_args, normalization=None, extra_columns=()):
        train_collator = AudioClassificationCollator(
            feature_extractor,
            max_duration_seconds=self.data_args.max_duration_seconds,
            seed=training_args.seed,
            augmentation=waveform_augmentation(self.augmentation_args, feature_extractor.sampling_rate),
            spec_augment=spec_augment(self.augmentation_args),
            extra_columns=extra_columns,
            normalization=normalization,
        )
        # Evaluation batches only: in training, dropout draws its masks over the padded shape, so padding more would
        # change the random stream and the trained weights (against the feature-encoder cache's path, for one).
        eval_collator = AudioClassificationCollator(
            feature_extractor, normalization=normalization, pad_to_multiple_of=padding_multiple(feature_extractor)
        )
        return train_collator, eval_collator


__all__ = ["RawAudioMode"]
