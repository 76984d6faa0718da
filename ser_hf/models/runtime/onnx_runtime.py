"""An exported ONNX folder run through ``onnxruntime`` behind the interface of the torch model it came from.

``ser-hf export MODEL --format onnx OUT`` writes ``OUT/model.onnx``, the model's ``config.json`` and feature extractor
(``preprocessor_config.json``), and ``OUT/onnx_export.json``, which says what the graph takes (its inputs, their
names, types and axes, and that the saved feature extractor must run first), its labels, opset, exporter, ser-hf
version and the source model. :class:`OnnxModelForAudioClassification` loads such a folder and, called with the
feature extractor's tensors, returns a ``SequenceClassifierOutput`` as the torch model does, so that
``pipeline("audio-classification")`` (:class:`~ser_hf.deploy.pipelines.OnnxAudioClassificationPipeline`),
``ser-hf predict`` and ``ser-hf evaluate`` run it unchanged (:func:`~ser_hf.models.runtime.loading.load_model` loads
it as it loads a trained model folder). Speaker normalisation (``normalization: speaker``) stays in the Python feature
extractor, with its statistics.

A Whisper classifier whose encoder states are standardised with statistics (``normalization`` global, corpus, speaker
or utterance) is exported with those statistics as inputs, ``state_mean`` and ``state_std``, which the saved feature
extractor gives (its stored ``feature_mean`` and ``feature_std``, or the speaker's or corpus' own), and with a second
output, ``pooled_encoder_states``, the pooled states a speaker's or corpus' statistics are taken over:
:meth:`OnnxModelForAudioClassification.pooled_encoder_states` runs it as the torch model's method of that name runs,
so that ``ser-hf predict`` and ``ser-hf evaluate`` compute each speaker's statistics through the export.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ...extras import install_hint

#: The file that marks a folder as an ONNX export and describes its graph.
MANIFEST_FILE = "onnx_export.json"
#: The graph, beside the model's ``config.json`` and ``preprocessor_config.json``.
ONNX_FILE = "model.onnx"
#: How to get the optional dependencies of the export and the runtime.
INSTALL_HINT = install_hint("onnx")
#: The output of every exported graph.
LOGITS = "logits"
#: The second output of a graph whose encoder states are standardised with statistics given as inputs: each clip's
#: pooled encoder states before standardisation, what a group's statistics are taken over.
POOLED_STATES = "pooled_encoder_states"
#: The inputs of such a graph: the statistics (`(batch, width)`, one row per clip) its states are standardised with.
STATE_INPUTS = ("state_mean", "state_std")

_NUMPY_TYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32, "bool": np.bool_}


class OnnxExportError(ValueError):
    """A folder that is not a usable ONNX export (or not a model at all), a parity check that failed, or ``onnx`` /
    ``onnxruntime`` missing: an error of input, reported in one line by the command line."""


def import_onnxruntime():
    """``onnxruntime``, or an :class:`OnnxExportError` saying how to install it (an optional dependency)."""
    try:
        import onnxruntime
    except ImportError:
        raise OnnxExportError(
            f"Running an ONNX export needs onnxruntime, which is not installed: {INSTALL_HINT}."
        ) from None
    return onnxruntime


def is_onnx_export(name_or_path: str | os.PathLike) -> bool:
    """Whether ``name_or_path`` is a local folder written by ``ser-hf export --format onnx`` (it has
    ``onnx_export.json``)."""
    return (Path(name_or_path) / MANIFEST_FILE).is_file()


def check_model_folder(name_or_path: str | os.PathLike) -> None:
    """For a local folder, raise :class:`OnnxExportError` naming the file it lacks when it is neither a trained model
    (``config.json``) nor an ONNX export (``onnx_export.json`` with ``model.onnx``), and
    :class:`~ser_hf.models.runtime.location.ModelWeightsError` when a trained model's weights would not load (pickled
    weights only, a damaged ``model.safetensors``, a tensor of another shape than its config's), and
    :class:`~ser_hf.models.runtime.location.ModelLabelsError` when the labels in its ``config.json`` are missing or
    edited, or :class:`~ser_hf.models.runtime.location.UnknownModelTypeError` when its ``model_type`` is one no library
    defines (both checked first, from the JSON alone); a Hub id passes."""
    from .location import check_model_labels, check_model_type, check_model_weights

    folder = Path(name_or_path)
    if not folder.is_dir():
        return
    if is_onnx_export(folder):
        read_manifest(folder)
        check_model_type(folder)
        check_model_labels(folder)
        return
    if (folder / "config.json").is_file():
        check_model_type(folder)
        check_model_labels(folder)
        check_model_weights(folder)
        return
    if (folder / ONNX_FILE).is_file():
        raise OnnxExportError(
            f"{folder} holds {ONNX_FILE} but no {MANIFEST_FILE}, which says what the graph takes: export the "
            f"model with `ser-hf export MODEL --format onnx {folder}`."
        )
    raise OnnxExportError(
        f"{folder} is neither a trained model (no config.json) nor an ONNX export (no {MANIFEST_FILE}): pass the "
        "output folder of a training run, or of `ser-hf export`."
    )


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The export's ``onnx_export.json``; an error names a damaged manifest, or a graph file it names that is
    missing."""
    path = Path(folder) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise OnnxExportError(f"{path} cannot be read as JSON ({error}): export the model again.") from None
    if not isinstance(manifest, dict) or "inputs" not in manifest:
        raise OnnxExportError(f"{path} lists no inputs: it was not written by `ser-hf export`; export again.")
    graph = Path(folder) / manifest.get("onnx_file", ONNX_FILE)
    if not graph.is_file():
        raise OnnxExportError(f"{graph} is missing: {path} describes a graph that is not there; export again.")
    return manifest


def export_again(folder: Path, manifest: dict[str, Any]) -> str:
    """The command that writes ``folder`` anew from the model it was exported from."""
    return f"ser-hf export {manifest.get('source_model') or 'MODEL'} --format onnx {folder}"


def check_graph_labels(folder: Path, config, session, manifest: dict[str, Any]) -> None:
    """Raise :class:`OnnxExportError` when ``config.json``'s labels do not match the graph: as many labels as the
    graph has logits, and the labels it was exported with (``onnx_export.json``). A config.json edited or copied from
    another model would otherwise name the wrong emotions, or fail on a class id it lacks (``KeyError: 4``)."""
    labels = [config.id2label[i] for i in sorted(config.id2label)]
    outputs = {output.name: output.shape for output in session.get_outputs()}
    width = (outputs.get(LOGITS) or [None])[-1]
    if isinstance(width, int) and width != len(labels):
        raise OnnxExportError(
            f"{folder}: config.json has {len(labels)} labels, the graph outputs {width}: config.json is not the one "
            f"exported with {manifest.get('onnx_file', ONNX_FILE)} (edited, or copied from another model). Put back "
            f"the exported config.json (its labels: {manifest.get('labels') or 'see onnx_export.json'}), or export "
            f"again: {export_again(folder, manifest)}."
        )
    exported = manifest.get("labels")
    if exported is not None and list(exported) != labels:
        raise OnnxExportError(
            f"{folder}: config.json's labels {labels} are not those the graph was exported with ({MANIFEST_FILE}: "
            f"{list(exported)}): the scores would be given to the wrong emotions. Put back the exported "
            f"config.json, or export again: {export_again(folder, manifest)}."
        )


class OnnxModelForAudioClassification:
    """An exported folder's graph in an ``onnxruntime.InferenceSession``, with the model's config, called like the
    torch model it was exported from: ``model(input_values=..., attention_mask=...)`` (or ``input_features``)
    returns a ``SequenceClassifierOutput`` whose logits are a CPU torch tensor. Inputs the graph does not take
    (``labels``) are ignored; an attention mask the graph needs but was not given is all ones.

    Args:
        folder (`str` or `os.PathLike`): the output of ``ser-hf export --format onnx``.
        providers (`Sequence[str]`, *optional*): onnxruntime execution providers (default: CPU).
        intra_op_num_threads (`int`, *optional*): threads per operator (default: onnxruntime's, all cores).
        trust_remote_code (`bool`): passed to ``AutoConfig`` for a config ser-hf does not define.
    """

    input_modalities = ("audio",)
    hf_device_map = None
    #: Called, while set, with each batch's pooled states standardised as the graph standardised them (`(batch,
    #: width)`, a graph with :data:`POOLED_STATES` only): what a torch Whisper classifier's head reads, which
    #: ``ser_hf.evaluation.setup_shift.standardized_states`` measures a recording set-up's shift on.
    standardized_states_listener = None

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        providers: Optional[Sequence[str]] = None,
        intra_op_num_threads: Optional[int] = None,
        trust_remote_code: bool = False,
    ):
        from transformers import AutoConfig

        from .registry import register_auto_classes

        register_auto_classes()  # a ser-hf config is then read without trust_remote_code
        ort = import_onnxruntime()
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.config = AutoConfig.from_pretrained(self.folder, trust_remote_code=trust_remote_code)
        self.name_or_path = str(folder)
        options = ort.SessionOptions()
        if intra_op_num_threads is not None:
            options.intra_op_num_threads = intra_op_num_threads
        graph = self.folder / self.manifest.get("onnx_file", ONNX_FILE)
        try:
            self.session = ort.InferenceSession(
                str(graph), sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own InvalidProtobuf, Fail, ... (no base)
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise OnnxExportError(
                f"{graph} cannot be loaded by onnxruntime: it is truncated or corrupt ({reason}). Export the model "
                f"again: {export_again(self.folder, self.manifest)}."
            ) from None
        check_graph_labels(self.folder, self.config, self.session, self.manifest)
        self.inputs = {item["name"]: item for item in self.manifest["inputs"]}
        self.main_input_name = self.manifest["inputs"][0]["name"]
        self.outputs = [output.name for output in self.session.get_outputs()]

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **kwargs) -> "OnnxModelForAudioClassification":
        return cls(folder, **kwargs)

    @property
    def device(self):
        import torch

        return torch.device("cpu")

    @property
    def dtype(self):
        import torch

        return torch.float32

    def to(self, *args, **kwargs) -> "OnnxModelForAudioClassification":
        """The graph runs on the session's execution providers; inputs and outputs stay on the CPU."""
        return self

    def eval(self) -> "OnnxModelForAudioClassification":
        return self

    def can_generate(self) -> bool:
        return False

    def feeds(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """The graph's inputs from the feature extractor's tensors (torch or numpy), in the types it was exported
        with."""
        feeds = {}
        for name, spec in self.inputs.items():
            value = inputs.get(name)
            if value is None and name == "attention_mask":
                main = np.asarray(feeds[self.main_input_name])
                value = np.ones(main.shape[:2], dtype=np.int64)
            if value is None:
                raise ValueError(
                    f"The ONNX graph of {self.folder} takes {name}, which was not given (given: {', '.join(inputs)})."
                )
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            feeds[name] = np.ascontiguousarray(value, dtype=_NUMPY_TYPES[spec["dtype"]])
        return feeds

    def logits(self, **inputs) -> np.ndarray:
        """The graph's logits `(batch, num_labels)` as a numpy array."""
        return self.session.run([LOGITS], self.feeds(inputs))[0]

    def pooled_encoder_states(self, input_features, attention_mask):
        """Each clip's pooled encoder states before standardisation, as the torch Whisper classifier's method of this
        name returns them (a CPU torch tensor): what a speaker's or corpus' statistics are computed over. For a graph
        with the :data:`POOLED_STATES` output (a Whisper classifier whose states are standardised with statistics);
        the statistics it is run with here (zero mean, unit deviation) change its logits only, never these states."""
        import torch

        if POOLED_STATES not in self.outputs:
            raise ValueError(
                f"The ONNX graph of {self.folder} has no {POOLED_STATES} output: only a Whisper classifier whose "
                "states are standardised with statistics (normalization global, corpus, speaker or utterance) is "
                "exported with it."
            )
        inputs = {self.main_input_name: input_features, "attention_mask": attention_mask}
        batch = int(np.shape(input_features)[0])
        for name, value in zip(STATE_INPUTS, (0.0, 1.0)):
            width = self.inputs[name]["shape"][-1]
            inputs[name] = np.full((batch, width), value, dtype=np.float32)
        (states,) = self.session.run([POOLED_STATES], self.feeds(inputs))
        return torch.from_numpy(states)

    def __call__(self, **inputs):
        import torch
        from transformers.modeling_outputs import SequenceClassifierOutput

        listener = self.standardized_states_listener
        if listener is None or POOLED_STATES not in self.outputs:
            return SequenceClassifierOutput(logits=torch.from_numpy(self.logits(**inputs)))
        feeds = self.feeds(inputs)
        logits, states = self.session.run([LOGITS, POOLED_STATES], feeds)
        mean, std = (feeds[name] for name in STATE_INPUTS)
        listener((states.reshape(len(states), -1) - mean) / std)
        return SequenceClassifierOutput(logits=torch.from_numpy(logits))

    forward = __call__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.folder}, providers={self.session.get_providers()})"


__all__ = [
    "INSTALL_HINT",
    "MANIFEST_FILE",
    "ONNX_FILE",
    "OnnxExportError",
    "OnnxModelForAudioClassification",
    "POOLED_STATES",
    "STATE_INPUTS",
    "check_graph_labels",
    "check_model_folder",
    "import_onnxruntime",
    "is_onnx_export",
    "read_manifest",
]
