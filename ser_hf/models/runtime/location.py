"""Where a model comes from, decided before anything is downloaded: a local folder, or a Hub repository.

transformers takes any name that is not an existing folder for a Hub repository id, so a typo in a local path
(``outputs/dmeo``) goes to the Hub, where an unreachable Hub means a minute of retries and then advice about pushing
a feature extractor. :func:`check_model_location` answers such a name at once: a name that is written as a path, is
not a valid repository id, lies in a folder that exists here, or is asked for with ``HF_HUB_OFFLINE`` set (and is not
in the Hub cache) is a missing folder; any other name is looked up on the Hub once, without retries, so that a missing
repository or an unreachable Hub is one line too.

A local model folder's weights are checked the same way before they are loaded (:func:`check_model_weights`): pickled
weights only (``pytorch_model.bin``), a ``model.safetensors`` whose header cannot be read, or a tensor whose shape is
not the one its ``config.json`` describes are each one error naming the file (and the tensor), where transformers
gives an ``UnpicklingError``, a ``SafetensorError`` or a size-mismatch report and a ``RuntimeError`` naming neither.
A folder whose classification head was never trained (a pretrained encoder's: its ``config.json`` describes no audio
classifier, or its weights hold no ``classifier.*`` tensors) is refused too (:class:`UntrainedHeadError`), where
transformers would fill the head with random weights and every prediction would be a guess.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Union

from huggingface_hub import constants, try_to_load_from_cache
from huggingface_hub.errors import RepositoryNotFoundError
from transformers import CONFIG_NAME

from ...hub_timeouts import transport_errors
from ...model_location import ModelNotFoundError, check_local_model_path

logger = logging.getLogger(__name__)

#: transformers' names for pickled weights (``torch.save``) and for safetensors weights, one file or sharded.
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*-of-*.bin")
SAFETENSORS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors")
#: The index of sharded weights (``weight_map``: tensor name -> shard file, which transformers reads relative to the
#: model's folder), of safetensors and of pickled weights.
SAFETENSORS_INDEX, PICKLED_INDEX = "model.safetensors.index.json", "pytorch_model.bin.index.json"
#: Tensors of a mismatch named in full; the others are counted.
SHOWN_MISMATCHES = 3
#: How the architectures of a trained audio classifier end (``SerWhisperForAudioClassification``,
#: ``Wav2Vec2ForSequenceClassification``), and the prefix of ser-hf's own model types.
CLASSIFIER_ARCHITECTURES = ("ForAudioClassification", "ForSequenceClassification")
SER_MODEL_TYPE_PREFIX = "ser_"
#: The module holding a classifier's output layer, in ser-hf's models and transformers' alike.
HEAD_MODULE = "classifier"


class HubUnreachableError(ConnectionError):
    """A model that is not in a local folder nor in the Hub cache, while the Hub does not answer."""


class ModelWeightsError(ValueError):
    """A local model folder whose weights ser-hf will not or cannot load: pickled weights only, a damaged
    ``model.safetensors``, or tensors of other shapes than the model its ``config.json`` describes."""


class ModelLabelsError(ValueError):
    """A model folder whose ``config.json`` does not name each of its outputs once (``id2label`` or ``label2id``
    removed or edited): transformers would fill in ``LABEL_0``... or give two outputs one name, and predictions would
    be named wrongly without a word."""


class UnknownModelTypeError(ValueError):
    """A model folder whose ``config.json`` names a ``model_type`` that neither ser-hf nor transformers defines (or
    none, where its ``auto_map`` names ser-hf's own code): an edited config, where transformers would ask for
    ``trust_remote_code`` or to upgrade."""


class UntrainedHeadError(ModelWeightsError):
    """A local model folder without a trained classification head: a pretrained encoder (its ``config.json``
    describes no audio classifier, or its weights hold no ``classifier.*`` tensors), which would classify at
    random."""


def _is_cached(repo_id: str, revision: Optional[str]) -> bool:
    return isinstance(try_to_load_from_cache(repo_id, CONFIG_NAME, revision=revision), str)


def check_model_location(
    name_or_path: Union[str, os.PathLike], *, revision: Optional[str] = None, token: Union[str, bool, None] = None
) -> None:
    """Raise at once for a model that cannot be loaded from where its name points.

    Raises:
        `ModelNotFoundError`: ``name_or_path`` is a file, or no folder of that name exists and it is not taken for a
            Hub repository (see the module docstring), or the Hub has no such repository.
        `HubUnreachableError`: it is a Hub repository id, not in the Hub cache, and the Hub did not answer.
    """
    name = os.fspath(name_or_path)
    if Path(name).expanduser().is_dir():
        return
    check_local_model_path(name)  # a file, or a missing folder: from the name alone
    if _is_cached(name, revision):
        return  # transformers reads it from the cache (and checks for a newer version itself when online)
    if constants.is_offline_mode():
        raise ModelNotFoundError(
            f"No such folder: {name}, and {name} is not in the Hub cache "
            f"({constants.HF_HUB_CACHE}); HF_HUB_OFFLINE is set, so the Hub was not asked."
        )
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        # One request, no retries: a missing repository or an unreachable Hub is answered here.
        api.model_info(name, revision=revision, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except RepositoryNotFoundError:
        raise ModelNotFoundError(
            f"No such folder: {name}, and no Hub repository {name} (or it is private and your "
            "token cannot read it: `hf auth login`)."
        ) from None
    except transport_errors() as error:
        raise HubUnreachableError(
            f"No such folder: {name}, and the Hub at {api.endpoint} could not be reached to "
            f"download it ({type(error).__name__}: {error}). Check the connection, or pass the "
            "folder of a model saved locally."
        ) from None


def _files(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    return sorted({path for pattern in patterns for path in folder.glob(pattern) if path.is_file()})


def check_model_weights(folder: Union[str, os.PathLike]) -> None:
    """Raise :class:`ModelWeightsError` before a local model folder (one with ``config.json``) is loaded when its
    weights would fail to load, naming the file and what to do: pickled weights only (ser-hf loads safetensors only,
    since unpickling can run code: transformers would unpickle them, or torch's ``weights_only`` refuse them with an
    ``UnpicklingError``), a ``*.safetensors`` file whose header cannot be read (truncated, or not safetensors), or
    tensors whose shape differs from what the model built from ``config.json`` expects (each named, with both
    shapes). A Hub id, a folder without ``config.json`` and a config ser-hf cannot build without remote code pass."""
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        return
    indexed_shards = _indexed_shards(folder)
    safetensors_files = _files(folder, SAFETENSORS_WEIGHTS)
    pickled = _files(folder, PICKLED_WEIGHTS)
    if pickled and not safetensors_files:
        names = ", ".join(path.name for path in pickled)
        target = folder / SAFETENSORS_WEIGHTS[0]
        if len(pickled) == 1:
            how = (
                'python -c "import torch; from safetensors.torch import save_file; state = torch.load('
                f"'{pickled[0]}', weights_only=False); save_file({{k: v.contiguous().clone() for k, v in "
                f"state.items() if isinstance(v, torch.Tensor)}}, '{target}', metadata={{'format': 'pt'}})\""
            )
        else:
            how = "load each shard with torch.load(..., weights_only=False) and write it with safetensors' save_file"
        raise ModelWeightsError(
            f"{folder} ({names}): pickled weights refused: ser-hf loads safetensors only (unpickling a file can run "
            f"any code it holds), and there is no {target.name}. Convert the checkpoint, if you trust where it "
            f"came from: {how}"
        )
    weights_files = sorted({*(path for path in safetensors_files if path.suffix == ".safetensors"), *indexed_shards})
    shapes = _safetensors_shapes(weights_files)
    not_a_classifier = _not_a_classifier(folder)
    expected = _expected_shapes(folder)
    head = sorted(name for name in expected if HEAD_MODULE in name.split(".")[:-1])
    missing_head = [name for name in head if name not in shapes] if shapes else []
    if not_a_classifier or missing_head:
        reasons = [not_a_classifier] if not_a_classifier else []
        if missing_head:
            files = ", ".join(path.name for path in weights_files)
            if len(missing_head) == len(head):
                reasons.append(f"{files} holds no {HEAD_MODULE}.* weights")
            else:
                reasons.append(f"{files} lacks {', '.join(missing_head)}")
        raise UntrainedHeadError(
            f"{folder} holds a pretrained encoder without a trained classification head ({'; '.join(reasons)}), "
            f"so its predictions would be random: train one with `ser-hf train RECIPE` (model_name_or_path: "
            f"{folder}) and pass the run's output folder instead."
        )
    if not expected:
        return
    mismatched = [
        (name, file, shape, expected[name])
        for name, (file, shape) in shapes.items()
        if name in expected and shape != expected[name]
    ]
    if mismatched and "id2label" not in _config_keys(folder):
        head_outputs = [shape[0] for name, _, shape, _ in mismatched if name in head and name.endswith(".weight")]
        if head_outputs:
            raise ModelLabelsError(
                f"{folder / CONFIG_NAME}: id2label is missing: {_NAMELESS}, and transformers would take the model for "
                f"one of 2 labels, while its weights give {head_outputs[0]} outputs; restore the config.json saved "
                "with the model (or save the model again with save_pretrained)."
            )
    if mismatched:
        shown = "; ".join(
            f"{name} is {list(shape)} in {file.name}, the model needs {list(needed)}"
            for name, file, shape, needed in mismatched[:SHOWN_MISMATCHES]
        )
        more = f" (and {len(mismatched) - SHOWN_MISMATCHES} more)" if len(mismatched) > SHOWN_MISMATCHES else ""
        raise ModelWeightsError(
            f"{folder}: the weights do not fit the model its config.json describes: {shown}{more}. The weights and "
            "config.json come from different models (or config.json was edited): keep the config.json saved with "
            "these weights, or save the model again with save_pretrained."
        )


def check_model_type(folder: Union[str, os.PathLike]) -> None:
    """Raise :class:`UnknownModelTypeError` naming ``folder/config.json`` when its ``model_type`` is not one ser-hf
    defines while its ``auto_map`` names only ser-hf's own classes (as every ser-hf model saved with
    ``save_pretrained`` does), or when there is no ``auto_map`` and transformers does not define that model type
    either: config.json was edited, and transformers would advise ``--trust-remote-code`` or an upgrade. A config
    whose ``auto_map`` names code that is not ser-hf's is left to the remote-code refusal."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    from .registry import ser_model_types

    path = Path(folder) / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(config, dict):
        return
    model_type, auto_map = config.get("model_type"), config.get("auto_map")
    config_classes = {
        f"{config_class.__module__.rsplit('.', 1)[-1]}.{config_class.__name__}": config_class
        for config_class, _, _ in ser_model_types()
    }
    ser_code = {
        f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}" for classes in ser_model_types() for cls in classes
    }
    known = sorted(config_class.model_type for config_class in config_classes.values())
    if model_type in known:
        return
    where = f"{path}: {model_type!r} is not a ser-hf model type" if model_type else f"{path} names no model_type"
    known_line = f"(known: {', '.join(known)})"
    if isinstance(auto_map, dict) and auto_map:
        named = [str(value).split("--")[-1] for value in auto_map.values()]
        if not all(name in ser_code for name in named):
            return  # code of its own: refused, naming --trust-remote-code, when it is loaded
        expected = config_classes.get(str(auto_map.get("AutoConfig", "")).split("--")[-1])
        restore = (
            f"its auto_map names ser-hf's {expected.__name__}, whose model_type is {expected.model_type!r}"
            if (expected is not None)
            else "its auto_map names ser-hf's own code"
        )
        raise UnknownModelTypeError(
            f"{where} {known_line}, though {restore}: config.json was edited; restore the config.json saved with "
            "the model (or save the model again with save_pretrained)."
        )
    if model_type and model_type not in CONFIG_MAPPING_NAMES:
        raise UnknownModelTypeError(
            f"{where} {known_line}, nor one this transformers ({_transformers_version()}) defines: restore the "
            "config.json saved with the model, or, for a model type of a newer transformers, upgrade it."
        )


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def check_model_labels(folder: Union[str, os.PathLike]) -> None:
    """Raise :class:`ModelLabelsError` naming ``folder/config.json`` and the key, before any weight is read, when
    the labels of a classifier's config are missing or edited: ``id2label`` gone while ``label2id`` or
    ``num_labels`` remain (transformers would name the outputs ``LABEL_0``...), ids that are not ``0..n-1``, a name
    given twice (two outputs would share one score), a ``label2id`` that does not invert ``id2label``, or a
    ``num_labels`` that differs from the count of ``id2label``. A config with no labels at all is what
    ``save_pretrained`` writes for transformers' default two labels: :func:`check_model_weights` refuses it when the
    head has another number of outputs. A config that describes no classifier (a pretrained encoder's, answered by
    :func:`check_model_weights`) or cannot be read (transformers names it) passes."""
    path = Path(folder) / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(config, dict) or _not_a_classifier(Path(folder)):
        return
    restore = "restore the config.json saved with the model (or save the model again with save_pretrained)"
    id2label, label2id, num_labels = config.get("id2label"), config.get("label2id"), config.get("num_labels")
    if id2label is None:
        if label2id is None and num_labels is None:
            return  # transformers' default labels; the head's size is checked against them with the weights
        raise ModelLabelsError(f"{path}: id2label is missing: {_NAMELESS}; {restore}.")
    if not isinstance(id2label, dict) or not id2label:
        raise ModelLabelsError(f"{path}: id2label is {str(id2label)[:60]!r}, not a map of labels; {restore}.")
    ids = sorted(id2label, key=lambda index: (len(str(index)), str(index)))
    if [str(index) for index in ids] != [str(index) for index in range(len(id2label))]:
        raise ModelLabelsError(f"{path}: id2label's ids must be 0..{len(id2label) - 1}, got {ids}; {restore}.")
    names = [str(id2label[index]) for index in ids]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        shared = "; ".join(
            f"{name!r} is given to ids {', '.join(str(i) for i in ids if str(id2label[i]) == name)}"
            for name in repeated
        )
        raise ModelLabelsError(
            f"{path}: id2label names a label twice ({shared}): each output of the model needs a name of its own, or "
            f"their scores would be merged under one; {restore}."
        )
    if label2id is not None and (
        not isinstance(label2id, dict)
        or {str(name): str(index) for name, index in label2id.items()} != {names[int(i)]: str(i) for i in ids}
    ):
        raise ModelLabelsError(f"{path}: label2id does not invert id2label; {restore}.")
    if num_labels is not None and num_labels != len(id2label):
        raise ModelLabelsError(
            f"{path}: num_labels is {num_labels!r}, but id2label names {len(id2label)} labels; {restore}."
        )


#: Why a classifier's config.json without id2label is refused.
_NAMELESS = "without it the model's outputs have no names (transformers would call them LABEL_0, LABEL_1, ...)"


def _config_keys(folder: Path) -> set:
    try:
        config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return set(config) if isinstance(config, dict) else set()


def _not_a_classifier(folder: Path) -> Optional[str]:
    """Why ``folder/config.json`` describes no trained audio classifier (a plain encoder's config, such as Whisper's
    ``WhisperForConditionalGeneration``), or `None`: a ser-hf model type, a ``*ForAudioClassification`` or
    ``*ForSequenceClassification`` architecture, a config naming code of its own (refused on its own terms) or one
    that names no architecture pass."""
    try:
        config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # transformers names a config.json it cannot read
    if not isinstance(config, dict) or config.get("auto_map"):
        return None
    model_type, architectures = config.get("model_type"), config.get("architectures")
    if isinstance(model_type, str) and model_type.startswith(SER_MODEL_TYPE_PREFIX):
        return None
    if not isinstance(architectures, list) or not architectures:
        return None
    if any(isinstance(name, str) and name.endswith(CLASSIFIER_ARCHITECTURES) for name in architectures):
        return None
    return f"its config.json describes {', '.join(map(str, architectures))}, not an audio classifier"


def check_weights_readable(folder: Union[str, os.PathLike]) -> None:
    """Raise :class:`ModelWeightsError` naming a ``*.safetensors`` file of a local folder that cannot be read (cut
    short by an interrupted copy or download, or not safetensors), before ``from_pretrained`` meets it: what training
    checks of the pretrained encoder it starts from (a trained classifier gets :func:`check_model_weights`)."""
    folder = Path(folder).expanduser()
    if folder.is_dir():
        indexed_shards = _indexed_shards(folder)
        files = [path for path in _files(folder, SAFETENSORS_WEIGHTS) if path.suffix == ".safetensors"]
        _safetensors_shapes(sorted({*files, *indexed_shards}))


@contextmanager
def pickled_weights_refused(name_or_path: Union[str, os.PathLike]) -> Iterator[None]:
    """Turn an ``UnpicklingError`` raised while loading the model at ``name_or_path`` (torch's ``weights_only``
    refusing a pickle that holds more than tensors: a file the checks above could not see, such as a LoRA adapter's
    ``adapter_model.bin``) into the one-line :class:`ModelWeightsError` "pickled weights refused"."""
    try:
        yield
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelWeightsError(
            f"{name_or_path}: pickled weights refused: ser-hf loads safetensors only (unpickling a file can run any "
            f"code it holds), and torch would not unpickle one of its files ({reason}). Convert the weights to "
            "safetensors, if you trust where they came from, or save the model again with save_pretrained."
        ) from None


def _indexed_shards(folder: Path) -> list[Path]:
    """The shard files that the weight index of ``folder`` (``model.safetensors.index.json``, or the pickled
    weights' ``pytorch_model.bin.index.json``) names, once each; raise :class:`ModelWeightsError` naming the index
    and the shard when one lies outside the folder (an absolute path, or one climbing out with ``..``: transformers
    would read it, wherever it is), or when the safetensors index names a file that is not safetensors (a pickled
    ``pytorch_model.bin`` that transformers would unpickle). An index that cannot be read is named too."""
    shards = []
    for index_name in (SAFETENSORS_INDEX, PICKLED_INDEX):
        index = folder / index_name
        if not index.is_file():
            continue
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ModelWeightsError(
                f"{index} cannot be read as a weight index ({type(error).__name__}: {error}): copy or save the "
                "model again with save_pretrained."
            ) from None
        for name in names:
            relative = os.path.normpath(name) if isinstance(name, str) and name else ""
            if not relative or os.path.isabs(relative) or relative.split(os.sep)[0] == os.pardir:
                raise ModelWeightsError(
                    f"{index}: weight_map names the shard {name!r}, which is not inside {folder}: ser-hf reads a "
                    "model's weights from its own folder only. Copy the shard into the folder and name it by its file "
                    "name there, or save the model again with save_pretrained."
                )
            if index_name == SAFETENSORS_INDEX and not relative.endswith(".safetensors"):
                raise ModelWeightsError(
                    f"{index}: weight_map names the shard {name!r}, which is not a safetensors file: pickled weights "
                    "refused: ser-hf loads safetensors only (unpickling a file can run any code it holds). Convert "
                    "the shard to safetensors, if you trust where it came from, or save the model again with "
                    "save_pretrained."
                )
            if not (folder / relative).is_file():
                raise ModelWeightsError(
                    f"{index}: weight_map names the shard {name!r}, which is missing from {folder}: copy the whole "
                    "model folder again, or save the model again with save_pretrained."
                )
            if index_name == SAFETENSORS_INDEX:
                shards.append(folder / relative)
    return shards


def _safetensors_shapes(files: list[Path]) -> dict[str, tuple[Path, tuple[int, ...]]]:
    """``{tensor name: (file, shape)}`` read from the headers of ``files``; a header that cannot be read is an
    error naming its file."""
    from safetensors import safe_open

    shapes = {}
    for path in files:
        try:
            with safe_open(path, framework="pt") as weights:
                for name in weights.keys():
                    shapes[name] = (path, tuple(weights.get_slice(name).get_shape()))
        except Exception as error:  # noqa: BLE001 - safetensors raises SafetensorError, OSError or ValueError
            raise ModelWeightsError(
                f"{path} is damaged and cannot be loaded ({type(error).__name__}: {error}): it was cut short or is "
                "not a safetensors file. Copy or save the model again."
            ) from None
    return shapes


def _expected_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """The shape of each tensor of the model that ``folder/config.json`` describes, built on the meta device (no
    memory, no weights read); empty when ser-hf cannot build it (a config of remote code, a model type it lacks:
    transformers' own loading then reports the problem)."""
    import torch
    from transformers import AutoConfig, AutoModelForAudioClassification

    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)  # never prompts, never runs code
        with torch.device("meta"):
            model = AutoModelForAudioClassification.from_config(config)
    except Exception as error:  # noqa: BLE001 - the check is a courtesy; loading reports any real problem
        logger.debug("Not checking the shapes of %s's weights: %s: %s", folder, type(error).__name__, error)
        return {}
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


__all__ = [
    "HubUnreachableError",
    "ModelLabelsError",
    "ModelWeightsError",
    "UnknownModelTypeError",
    "UntrainedHeadError",
    "check_model_labels",
    "check_model_location",
    "check_model_type",
    "check_model_weights",
    "check_weights_readable",
    "pickled_weights_refused",
]
