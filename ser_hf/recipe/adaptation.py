"""The recipe of ``ser-hf adapt``: a trained ser-hf model adapted to a user's recordings with a few labelled clips.

:func:`adaptation_values` reads the trained model's folder (its ``config.json`` and ``preprocessor_config.json``, as
JSON: nothing heavy is imported, so a wrong folder is answered at once) and returns the values of an ordinary recipe
that trains it further on a folder corpus: the model's encoder frozen and its clips encoded once (FAST), its head,
labels and statistics kept (``match_head_labels``: a row per label of the user's, the model's own where it has one),
and the adaptation settings of :data:`ADAPTATION_SETTINGS`. The adapted model is then an ordinary run: report, card,
push, ``pipeline``, predict, app. ``bench/adapt.py`` measures these settings as a learning curve (docs/results/adapt/).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..errors import RecipeError

#: The encoder families whose trained classifiers can be adapted: FAST mode caches their frozen encoder's states, so
#: only the head trains (a test keeps this list equal to the registry's encoder families).
ADAPTABLE_FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper")

#: How the head is trained on the user's clips, the same for every corpus (chosen once, on RAVDESS left out, by
#: ``bench/adapt.py --choose``; docs/results/adapt/ holds the choice and the learning curve). L2-SP
#: (``starting_point_weight``) holds the head near the trained one instead of weight decay's pull towards zero, so
#: that a few clips move it as far as they can tell, and no further; the kept head is the average of 5 such
#: adaptations with different seeds (``soup_size``, :mod:`ser_hf.training.soup`), steadier than any one of them.
ADAPTATION_SETTINGS: dict[str, Any] = {
    "num_train_epochs": 60,
    "learning_rate": 1.0e-3,
    "lr_scheduler_type": "constant",
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "starting_point_weight": 1.0e-2,
    "soup_size": 5,
    "per_device_train_batch_size": 16,
    "class_weights": "balanced",
    "load_best_model_at_end": False,
    "eval_strategy": "no",
    "save_strategy": "no",
    "logging_steps": 10,
}

#: The statistics an adapted model standardises the encoder's states with: each speaker's own, from their clips
#: (labels unread), whatever the trained model used (chosen with :data:`ADAPTATION_SETTINGS`); a model that
#: standardises nothing keeps doing so.
ADAPTATION_NORMALIZATION: Optional[str] = "speaker"
#: Whether a Whisper model adapted with speaker statistics checks them (``speaker_statistics_check``): the speaker
#: general model lost no UA with the check where every speaker is heard in every emotion and kept the corpus
#: statistics' where each is heard in one (docs/results/crosscorpus/speaker_check-loco4.md).
ADAPTATION_SPEAKER_CHECK = True

#: Written by ``ser-hf adapt --unlabelled_dir`` beside the adapted model: what it was adapted from and on how many
#: labelled and pseudo-labelled clips (which its report cannot tell apart); the model card reads it.
ADAPTATION_FILE = "adaptation.json"

#: The feature extractors' ``normalization`` values that standardise with stored statistics (those an adaptation
#: may switch to :data:`ADAPTATION_NORMALIZATION`): ``ser_hf.models.feature_normalization.STATISTICS_NORMALIZATIONS``,
#: which imports torch (a test keeps the two equal).
STORED_STATISTICS = ("global", "corpus", "speaker")

#: What a self-training round of an adaptation keeps of the unlabelled recordings: the share of the clips predicted as
#: each emotion with the highest probability (``self_training_share``).
ADAPTATION_SELF_TRAINING_SHARE = 0.3


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RecipeError(f"{path.parent} is not a trained ser-hf model: it has no {path.name} ({what}).") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecipeError(f"{path}: cannot be read as JSON ({error}).") from None


def trained_model_facts(model_dir: str | os.PathLike) -> dict[str, Any]:
    """What an adaptation needs of a trained model folder, read from its JSON files: ``family`` (the recipe's
    ``model_type``), ``labels``, the head's ``pooling_mode``, ``use_weighted_layer_sum`` and Whisper's
    ``encoder_window_seconds``, and the feature extractor's ``normalization``. Refuses, naming the file and key, a
    folder that is not a trained ser-hf classifier on a pretrained encoder."""
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise RecipeError(f"No such model folder: {folder} (give the output_dir of a ser-hf training run).")
    config = _read_json(folder / "config.json", "the model's configuration")
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        raise RecipeError(f"{folder / 'config.json'}: no model_type; is this a transformers model folder?")
    family = model_type.removeprefix("ser_").replace("_", "-")
    if family not in ADAPTABLE_FAMILIES:
        raise RecipeError(
            f"{folder / 'config.json'}: model_type {model_type!r} cannot be adapted: ser-hf adapt trains the head of "
            f"a classifier on a pretrained speech encoder ({', '.join(ADAPTABLE_FAMILIES)}); train a baseline anew "
            "with ser-hf train."
        )
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise RecipeError(f"{folder / 'config.json'}: no id2label, so the model's labels are unknown.")
    try:
        labels = [str(id2label[key]) for key in sorted(id2label, key=int)]
    except ValueError:
        raise RecipeError(f"{folder / 'config.json'}: id2label keys must be class numbers, got {sorted(id2label)}.")
    if labels == [f"LABEL_{i}" for i in range(len(labels))]:
        raise RecipeError(
            f"{folder / 'config.json'}: id2label holds only transformers' placeholder labels (LABEL_0 to "
            f"LABEL_{len(labels) - 1}): {folder} is a bare encoder, not a trained emotion classifier; train one with "
            "ser-hf train first."
        )
    if len(set(labels)) != len(labels):
        raise RecipeError(f"{folder / 'config.json'}: id2label names a label twice: {labels}.")
    if not (folder / "model.safetensors").is_file():
        raise RecipeError(f"{folder} has no model.safetensors: ser-hf adapt starts from a model saved in safetensors.")
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


def adaptation_values(
    model_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    corpus: str = "folder",
    corpus_options: Optional[Mapping[str, Any]] = None,
    test_speakers: Sequence[str] = (),
    labels: Optional[Sequence[str]] = None,
    seed: int = 42,
) -> dict[str, Any]:
    """The recipe values that adapt the trained model in `model_dir` to the labelled clips of `data_dir` (a
    `corpus`, a folder corpus by default, read with `corpus_options`), saving the adapted model in `output_dir`.
    Every speaker trains but `test_speakers`, on whom the adapted model is scored; `labels` keeps only those of the
    corpus' emotions (the model's choice is always among the labels it trains on)."""
    facts = trained_model_facts(model_dir)
    values: dict[str, Any] = {
        # Model: the trained model's encoder (frozen, its states cached) and head, with its statistics' kind.
        "model_type": facts["family"],
        "model_name_or_path": str(Path(model_dir).expanduser()),
        "match_head_labels": True,
        "freeze_base_model": True,
        "cache_encoder_outputs": True,
        "pooling_mode": facts["pooling_mode"],
        "use_weighted_layer_sum": facts["use_weighted_layer_sum"],
        # Data: every speaker of the user's folder trains, but those named for testing.
        "corpus": [corpus],
        "data_dir": [str(data_dir)],
        "split_protocol": "speaker",
        "test_speakers": list(test_speakers),
        "validation_speakers": [],
        # Training.
        **ADAPTATION_SETTINGS,
        "seed": seed,
        "output_dir": str(output_dir),
    }
    if "encoder_window_seconds" in facts:
        values["encoder_window_seconds"] = facts["encoder_window_seconds"]
    # A model standardised with stored statistics (global, corpus or speaker) is adapted with the adaptation's kind;
    # one that standardises nothing, or each clip by itself, keeps its own (its head was trained on those inputs).
    own = facts["normalization"]
    if own:
        normalization = ADAPTATION_NORMALIZATION if own in STORED_STATISTICS and ADAPTATION_NORMALIZATION else own
        values["feature_extractor_config"] = {"normalization": normalization}
        if normalization == "speaker" and facts["family"] == "whisper":
            # Speakers heard in few emotions fall back to the statistics of all the clips classified together
            # (ser_hf.evaluation.speaker_check): what the adapted model's scores and later predictions use.
            values["feature_extractor_config"]["speaker_statistics_check"] = ADAPTATION_SPEAKER_CHECK
    if corpus_options:
        values["corpus_options"] = dict(corpus_options)
    if labels:
        values["labels"] = list(labels)
    return values


__all__ = [
    "ADAPTABLE_FAMILIES",
    "ADAPTATION_FILE",
    "ADAPTATION_NORMALIZATION",
    "ADAPTATION_SELF_TRAINING_SHARE",
    "ADAPTATION_SETTINGS",
    "ADAPTATION_SPEAKER_CHECK",
    "adaptation_values",
    "trained_model_facts",
]
