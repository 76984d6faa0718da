"""What ``ser-hf adapt`` reads of a trained model before anything heavy is imported, and its constants (the record
an adaptation writes, ``adaptation.json``, is a run record: :func:`ser_hf.run_record.read_adaptation_record`).

:func:`trained_model_facts` reads the trained model's folder (its ``config.json`` and ``preprocessor_config.json``,
as JSON: nothing heavy is imported, so a wrong folder is answered at once) and refuses, naming the file and key, a
folder that is not a trained ser-hf classifier on a pretrained encoder. The adaptation itself
(:mod:`ser_hf.adaptation`) chooses among candidate classifiers by cross-validation on the user's labelled speakers;
``bench/adapt.py`` measures it as a learning curve (docs/results/adapt/).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import AdaptationError

#: The encoder families whose trained classifiers can be adapted: FAST mode caches their frozen encoder's states, so
#: only the head trains (a test keeps this list equal to the registry's encoder families).
ADAPTABLE_FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper")

#: The feature extractors' ``normalization`` values that standardise with stored statistics (an adapted model keeps
#: its own): ``ser_hf.models.feature_normalization.STATISTICS_NORMALIZATIONS``, which imports torch (a test keeps the
#: two equal).
STORED_STATISTICS = ("global", "corpus", "speaker")

#: What a self-training round of an adaptation keeps of the unlabelled recordings: the share of the clips predicted as
#: each emotion with the highest probability (``self_training_share``).
ADAPTATION_SELF_TRAINING_SHARE = 0.3


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AdaptationError(
            f"{path.parent} is not a trained ser-hf model: it has no {path.name} ({what})."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AdaptationError(f"{path}: cannot be read as JSON ({error}).") from None


def trained_model_facts(model_dir: str | os.PathLike) -> dict[str, Any]:
    """What an adaptation needs of a trained model folder, read from its JSON files: ``family`` (the recipe's
    ``model_type``), ``labels``, the head's ``pooling_mode``, ``use_weighted_layer_sum`` and Whisper's
    ``encoder_window_seconds``, and the feature extractor's ``normalization``. Refuses, naming the file and key, a
    folder that is not a trained ser-hf classifier on a pretrained encoder."""
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise AdaptationError(f"No such model folder: {folder} (give the output_dir of a ser-hf training run).")
    config = _read_json(folder / "config.json", "the model's configuration")
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        raise AdaptationError(f"{folder / 'config.json'}: no model_type; is this a transformers model folder?")
    family = model_type.removeprefix("ser_").replace("_", "-")
    if family not in ADAPTABLE_FAMILIES:
        raise AdaptationError(
            f"{folder / 'config.json'}: model_type {model_type!r} cannot be adapted: ser-hf adapt trains the head of "
            f"a classifier on a pretrained speech encoder ({', '.join(ADAPTABLE_FAMILIES)}); train a baseline anew "
            "with ser-hf train."
        )
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise AdaptationError(f"{folder / 'config.json'}: no id2label, so the model's labels are unknown.")
    try:
        labels = [str(id2label[key]) for key in sorted(id2label, key=int)]
    except ValueError:
        raise AdaptationError(
            f"{folder / 'config.json'}: id2label keys must be class numbers, got {sorted(id2label)}."
        )
    if labels == [f"LABEL_{i}" for i in range(len(labels))]:
        raise AdaptationError(
            f"{folder / 'config.json'}: id2label holds only transformers' placeholder labels (LABEL_0 to "
            f"LABEL_{len(labels) - 1}): {folder} is a bare encoder, not a trained emotion classifier; train one with "
            "ser-hf train first."
        )
    if len(set(labels)) != len(labels):
        raise AdaptationError(f"{folder / 'config.json'}: id2label names a label twice: {labels}.")
    if not (folder / "model.safetensors").is_file():
        raise AdaptationError(
            f"{folder} has no model.safetensors: ser-hf adapt starts from a model saved in safetensors."
        )
    extractor = _read_json(folder / "preprocessor_config.json", "the model's feature extractor")
    facts = {
        "family": family,
        "labels": labels,
        "pooling_mode": config.get("pooling_mode", "mean"),
        "use_weighted_layer_sum": bool(config.get("use_weighted_layer_sum", False)),
        "normalization": extractor.get("normalization"),
    }
    if family == "whisper" and config.get("max_source_positions"):
        facts["encoder_window_seconds"] = int(config["max_source_positions"]) // 50  # 50 encoder frames a second
    return facts


__all__ = [
    "ADAPTABLE_FAMILIES",
    "ADAPTATION_SELF_TRAINING_SHARE",
    "STORED_STATISTICS",
    "trained_model_facts",
]
