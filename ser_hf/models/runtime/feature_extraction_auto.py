"""Loading a saved model's feature extractor through `AutoFeatureExtractor`, with an error that names the folder (or
repository) and the missing ``preprocessor_config.json`` and says how to add it, where transformers says only "Can't
load feature extractor" and suggests a name clash with a Hub repository."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from transformers import AutoFeatureExtractor
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.utils import FEATURE_EXTRACTOR_NAME, PROCESSOR_NAME

from .location import check_model_location

# transformers' message when neither preprocessor_config.json nor a processor_config.json holding a feature extractor
# is found, in a folder or a repository (feature_extraction_utils.get_feature_extractor_dict).
_TRANSFORMERS_MISSING_MESSAGE = "Can't load feature extractor for"


class MissingFeatureExtractorError(FileNotFoundError):
    """A model folder or Hub repository without its feature extractor (``preprocessor_config.json``), which turns
    audio into the model's inputs (sampling rate, normalisation, spectrogram settings)."""

    def __init__(self, name_or_path: Union[str, os.PathLike], revision: Optional[str] = None):
        self.name_or_path = str(name_or_path)
        if Path(name_or_path).is_dir():
            where, fix = (f"The model folder {self.name_or_path}", f".save_pretrained({self.name_or_path!r})")
        else:
            at = f" (revision {revision})" if revision not in (None, "main") else ""
            where, fix = f"The Hub repository {self.name_or_path}{at}", f".push_to_hub({self.name_or_path!r})"
        super().__init__(
            f"{where} has no feature extractor: {FEATURE_EXTRACTOR_NAME} is missing. Add the one the model was "
            f'trained with, e.g. AutoFeatureExtractor.from_pretrained("facebook/wav2vec2-base"){fix} for a '
            "model fine-tuned from wav2vec2-base (ser-hf's own runs save it beside the weights)."
        )


def load_feature_extractor(
    name_or_path: Union[str, os.PathLike], *, check_location: bool = True, **from_pretrained_kwargs
) -> SequenceFeatureExtractor:
    """`AutoFeatureExtractor.from_pretrained`, raising :class:`MissingFeatureExtractorError` when the folder or
    repository has no feature extractor (a folder is checked before anything is read). A name that is neither a folder
    nor a Hub repository raises :class:`~ser_hf.model_location.ModelNotFoundError` at once (see
    :func:`~ser_hf.models.runtime.location.check_model_location`); ``check_location=False`` skips that check for a
    caller that has just made it (it asks the Hub once for a repository not in the cache)."""
    if check_location:
        check_model_location(
            name_or_path, revision=from_pretrained_kwargs.get("revision"), token=from_pretrained_kwargs.get("token")
        )
    folder = Path(name_or_path) / from_pretrained_kwargs.get("subfolder", "")
    if folder.is_dir() and not any((folder / name).is_file() for name in (FEATURE_EXTRACTOR_NAME, PROCESSOR_NAME)):
        raise MissingFeatureExtractorError(name_or_path)
    try:
        return AutoFeatureExtractor.from_pretrained(name_or_path, **from_pretrained_kwargs)
    except OSError as error:
        if _TRANSFORMERS_MISSING_MESSAGE not in str(error):
            raise  # another problem (no such repository, no network): transformers' own error says which
        raise MissingFeatureExtractorError(name_or_path, from_pretrained_kwargs.get("revision")) from error


__all__ = ["MissingFeatureExtractorError", "load_feature_extractor"]
