"""``ser-hf export MODEL --format onnx OUT``: a trained model as an ONNX graph, checked against torch on real clips.

The graph is the model from its inputs to its logits, exported with ``torch.onnx.export`` (the dynamo exporter, with
dynamic batch and length axes; TorchScript's exporter where dynamo cannot trace the model, said in the manifest). The
feature extraction stays in Python, in the saved feature extractor (``preprocessor_config.json``), for every model
kind: the SSL encoders' waveform normalisation and padding, the baselines' log-mel and MFCC front ends (their per-clip
dB floor and standardisation over the real frames of each clip), openSMILE functionals (which no ONNX operator
computes) and the statistics of speaker normalisation. ``onnx_export.json`` says so beside the graph.

A Whisper classifier whose encoder states are standardised with statistics (``normalization`` global, corpus, speaker
or utterance: every general recipe, every adapted model) keeps them where the torch model keeps them, in the saved
feature extractor, which gives them per clip as ``state_mean`` and ``state_std``: the graph takes them as inputs, so
that one graph serves the stored statistics (a single clip) and each speaker's or corpus' own, computed at prediction
time. Its second output, ``pooled_encoder_states``, gives what those are computed over, from the same encoder pass.
Whisper's inputs always span its window: only the batch axis varies. A model that encodes each batch only up to its
longest clip (``trim_window``) is traced on a clip as long as the window, so that the graph encodes the whole window
and masks what a clip does not cover, for clips of any length.

A LoRA model (a ``peft.PeftModel``, or a folder of adapters) is merged first, as training does when it saves one.

Before anything is written to ``OUT``, onnxruntime runs the graph on real clips (each alone, and all of them in one
padded batch) and its logits are compared with torch's: the largest absolute difference must stay within the
tolerance and every clip's top label must be the same, or the export fails and ``OUT`` is left as it was.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..atomic_files import atomic_directory
from ..models.runtime.onnx_runtime import (
    INSTALL_HINT,
    LOGITS,
    MANIFEST_FILE,
    ONNX_FILE,
    POOLED_STATES,
    STATE_INPUTS,
    OnnxExportError,
    OnnxModelForAudioClassification,
    import_onnxruntime,
    is_onnx_export,
)
from ..run_folder import METRICS_FILE, RUN_CONFIG_FILE

logger = logging.getLogger(__name__)

#: The ONNX opset the graph is written in (onnxruntime 1.17 and later run it).
DEFAULT_OPSET = 18
#: The largest absolute difference between onnxruntime's and torch's logits an export may show on the parity clips.
DEFAULT_TOLERANCE = 1e-3
#: Clips the parity check runs (spread over the audio given).
PARITY_CLIPS = 8
#: Exporters: dynamo (``torch.export``), TorchScript (``torch.jit`` tracing), or dynamo falling back to TorchScript.
EXPORTERS = ("auto", "dynamo", "torchscript")
#: Graphs with more weights than this keep them in a file beside model.onnx (a protobuf holds at most 2 GB).
EXTERNAL_DATA_BYTES = 1 << 30
#: Files of the model's run copied into the export, so that ``ser-hf evaluate --split test`` finds its test speakers.
RUN_FILES = (METRICS_FILE, RUN_CONFIG_FILE)
#: The model type of ``ser-hf ensemble``'s models, which are not exported (see :func:`refuse_ensemble`).
ENSEMBLE_MODEL_TYPE = "ser_ensemble"


@dataclass
class ParityReport:
    """onnxruntime's logits against torch's on the same inputs.

    Attributes:
        clips (`int`): clips compared, each alone and all in one padded batch.
        audio (`str`): where they came from.
        max_abs_logit_difference (`float`): the largest absolute difference of any logit.
        argmax_identical (`bool`): whether every clip's top label is the same in both.
        tolerance (`float`): the largest difference allowed.
        max_abs_state_difference (`float`, *optional*): for a graph whose states are standardised with statistics
            given as inputs, the largest absolute difference of its ``pooled_encoder_states``; its logits were then
            also compared with the clips' own mean (as ``ser-hf predict`` takes a speaker's) for the stored one.
        state_scale (`float`, *optional*): the largest absolute pooled state: the states' difference may be
            ``tolerance`` times this (or times 1, when smaller), since deep layers' states run far above one.
    """

    clips: int
    audio: str
    max_abs_logit_difference: float
    argmax_identical: bool
    tolerance: float
    max_abs_state_difference: Optional[float] = None
    state_scale: Optional[float] = None

    @property
    def state_tolerance(self) -> float:
        """The largest pooled-state difference allowed: the tolerance, times the largest state when above one."""
        return self.tolerance * max(1.0, self.state_scale or 0.0)

    @property
    def passed(self) -> bool:
        states_match = self.max_abs_state_difference is None or self.max_abs_state_difference <= self.state_tolerance
        return self.argmax_identical and self.max_abs_logit_difference <= self.tolerance and states_match

    def summary(self) -> str:
        summary = (
            f"parity on {self.clips} clip(s) of {self.audio}: max |logit difference| "
            f"{self.max_abs_logit_difference:.2e} (tolerance {self.tolerance:.0e}), argmax "
            f"{'identical' if self.argmax_identical else 'DIFFERENT'}"
        )
        if self.max_abs_state_difference is not None:
            summary += (
                f", with the stored statistics and the clips' own mean; max |pooled state difference| "
                f"{self.max_abs_state_difference:.2e} (tolerance {self.state_tolerance:.1e})"
            )
        return summary

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class OnnxExport:
    """An export written: its folder, its manifest (``onnx_export.json``) and the parity check it passed."""

    path: Path
    manifest: dict[str, Any]
    parity: ParityReport


# --- Loading ------------------------------------------------------------------------------------------------------


def load_model_for_export(
    name_or_path: str | os.PathLike, *, revision: Optional[str] = None, trust_remote_code: bool = False
):
    """``(model, feature_extractor)`` of a trained model folder, Hub id or folder of LoRA adapters (merged), loaded by
    :func:`~ser_hf.models.runtime.loading.load_model`; an ONNX export is refused (export the model it came from)."""
    from ..models.runtime.loading import load_model

    return load_model(
        name_or_path, revision=revision, trust_remote_code=trust_remote_code, allow_onnx=False, purpose="an export"
    )


def model_config(name_or_path: str | os.PathLike, *, revision: Optional[str] = None, trust_remote_code: bool = False):
    """The config of a model folder or Hub id (its ``config.json`` alone, no weights), or `None` for a folder of LoRA
    adapters."""
    from transformers import AutoConfig

    from ..models.runtime.loading import is_lora_adapter
    from ..models.runtime.location import check_model_location, check_model_type
    from ..models.runtime.registry import register_auto_classes

    register_auto_classes()  # a ser-hf config is then read without trust_remote_code

    check_model_location(name_or_path, revision=revision)
    if is_lora_adapter(name_or_path):
        return None
    check_model_type(name_or_path)  # an edited model_type: named, where AutoConfig would ask for remote code
    return AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)


def refuse_ensemble(config, source: str, output_dir: str | os.PathLike) -> None:
    """Raise :class:`OnnxExportError` for an ensemble (``ser-hf ensemble``'s EnsembleForAudioClassification), naming
    the export of each member instead. Its graph would take every member's inputs (``member0_input_features``,
    ``member1_input_values`` ...), each made by the member's own feature extractor, while an export runs one feature
    extractor before one graph; the ensemble's weighted mean of probabilities would also need carrying over."""
    if getattr(config, "model_type", None) != ENSEMBLE_MODEL_TYPE:
        return
    names = list(getattr(config, "member_names", None) or [])
    members = names
    try:  # the members' folders as `ser-hf ensemble` was given them (its run_config.json), when they are known
        recorded = json.loads((Path(source) / "run_config.json").read_text(encoding="utf-8"))["model"]["members"]
        if isinstance(recorded, list) and len(recorded) == len(names):
            members = [str(member) for member in recorded]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    commands = "; ".join(
        f"ser-hf export {member} --format onnx {Path(output_dir) / name}" for member, name in zip(members, names)
    )
    raise OnnxExportError(
        f"{source} is an ensemble of {len(names)} models ({', '.join(names)}): ensembles are not exportable to ONNX "
        "yet, since each member has its own inputs (member0_..., member1_..., each made by the member's own feature "
        "extractor) and an export runs one feature extractor before one graph. Export each member instead "
        f"({commands}), and run the ensemble itself in torch: ser-hf predict and ser-hf evaluate take {source}."
    )


def merged(model) -> nn.Module:
    """The model with its LoRA adapters folded in (a copy: the model given keeps them), or the model itself."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        from ..models.runtime.ssl import merge_lora

        return merge_lora(copy.deepcopy(model))
    return model


# --- The graph ----------------------------------------------------------------------------------------------------


class _Logits(nn.Module):
    """The model from its main input to its logits (what the graph computes)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model(**{self.model.main_input_name: features}, return_dict=True).logits


class _MaskedLogits(_Logits):
    """... with the attention mask of its padded batch."""

    def forward(self, features: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(
            **{self.model.main_input_name: features}, attention_mask=attention_mask, return_dict=True
        ).logits


class _StandardizedLogits(_Logits):
    """... of a Whisper classifier whose encoder states are standardised with the statistics given per clip, with the
    pooled states those statistics are taken over (:meth:`pool_encoder_layers`), from the same encoder pass."""

    def forward(
        self, features: torch.Tensor, attention_mask: torch.Tensor, state_mean: torch.Tensor, state_std: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.model(
            input_features=features,
            attention_mask=attention_mask,
            state_mean=state_mean,
            state_std=state_std,
            output_hidden_states=True,
            return_dict=True,
        )
        layers = self.model.head_layers(output.hidden_states)
        return output.logits, self.model.pool_encoder_layers(layers, attention_mask)


class _MeanOverFrequency(nn.Module):
    """``nn.AdaptiveAvgPool2d((1, None))`` as the mean over the frequency axis, which TorchScript's exporter writes
    for inputs of any length (it cannot write adaptive pooling whose output size depends on the input)."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states.mean(dim=-2, keepdim=True)


def traceable(model: nn.Module) -> nn.Module:
    """The model with the modules TorchScript's exporter cannot write for every input length replaced by equivalent
    ones (a copy, when there are any)."""
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.AdaptiveAvgPool2d) and tuple(module.output_size) == (1, None)
    ]
    if names:
        model = copy.deepcopy(model)
        for name in names:
            model.set_submodule(name, _MeanOverFrequency())
    return model


@contextlib.contextmanager
def _without_attention_fast_path():
    """``nn.MultiheadAttention``'s fused inference kernel has no ONNX form: the exporter traces the plain path."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def graph_input_names(model: nn.Module, batch) -> list[str]:
    """The inputs the graph takes: the model's main input, the attention mask when the feature extractor gives one
    and the model's ``forward`` takes it, and the statistics its states are standardised with (``state_mean``,
    ``state_std``) likewise."""
    names = [model.main_input_name]
    parameters = inspect.signature(model.forward).parameters
    for name in ("attention_mask", *STATE_INPUTS):
        if name in batch and name in parameters:
            names.append(name)
    return names


def takes_state_statistics(names: Sequence[str]) -> bool:
    """Whether a graph of these inputs standardises its states with statistics given per clip (and so also outputs the
    pooled states they are taken over)."""
    return all(name in names for name in STATE_INPUTS)


def _has_length_axis(name: str, names: Sequence[str], fixed_length: bool = False) -> bool:
    # A padded batch (waveforms, or frames with their mask) varies in length; openSMILE's one vector per clip, the
    # state statistics and Whisper's window (`fixed_length`: its extractor pads every clip to it) do not.
    if fixed_length or name in STATE_INPUTS:
        return False
    return name == "input_values" or "attention_mask" in names


def graph_output_names(names: Sequence[str]) -> list[str]:
    """The outputs of a graph of these inputs: the logits, and the pooled states where it takes state statistics."""
    return [LOGITS, POOLED_STATES] if takes_state_statistics(names) else [LOGITS]


def _as_graph_input(name: str, value: torch.Tensor) -> torch.Tensor:
    # The graph takes what the feature extractor gives (the attention mask as int32, as every transformers audio
    # extractor pads it), so that an InferenceSession runs on the saved extractor's output as it comes; features
    # are float32, the weights' type.
    return value if name == "attention_mask" else value.float()


def export_graph(
    model: nn.Module,
    example: dict[str, torch.Tensor],
    path: Path,
    *,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    fixed_length: bool = False,
) -> tuple[str, Optional[str]]:
    """Write ``model`` from ``example``'s inputs (a padded batch of two clips or more) to logits as an ONNX graph with
    dynamic batch and length axes (the batch axis only with ``fixed_length``: inputs that always span the encoder's
    window); ``(exporter used, why dynamo was not)``. A graph that takes state statistics also outputs the pooled
    states (:func:`graph_output_names`).

    ``auto`` tries the dynamo exporter (``torch.export``, translated by onnxscript) and, when it cannot trace the
    model, TorchScript's (``torch.jit`` tracing); the parity check then decides whether the graph is right.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}.")
    names = list(example)
    if takes_state_statistics(names):
        if names != [model.main_input_name, "attention_mask", *STATE_INPUTS]:
            raise ValueError(f"A graph with state statistics takes the features, mask and statistics, got {names}.")
        kind = _StandardizedLogits
    else:
        kind = _MaskedLogits if "attention_mask" in names else _Logits
    wrapper = kind(model).eval()
    args = tuple(example.values())
    outputs = graph_output_names(names)
    external_data = sum(p.numel() * p.element_size() for p in model.parameters()) > EXTERNAL_DATA_BYTES
    common = dict(args=args, f=str(path), input_names=names, output_names=outputs, opset_version=opset)
    dynamo_error = None
    if exporter in ("auto", "dynamo"):
        from torch.export import Dim

        parameters = list(inspect.signature(wrapper.forward).parameters)
        dynamic_shapes = {
            parameter: {0: Dim.DYNAMIC, **({1: Dim.DYNAMIC} if _has_length_axis(name, names, fixed_length) else {})}
            for parameter, name in zip(parameters, names)
        }
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # torch.export's notes on transformers internals
                torch.onnx.export(
                    wrapper,
                    **common,
                    dynamo=True,
                    dynamic_shapes=dynamic_shapes,
                    external_data=external_data,
                    verbose=False,
                )
            return "dynamo", None
        except Exception as error:  # noqa: BLE001 - torch.export raises many kinds; TorchScript may still do
            if exporter == "dynamo":
                raise OnnxExportError(f"The dynamo exporter cannot export {type(model).__name__}: {error}") from None
            dynamo_error = _first_line(error)
            logger.warning(
                "The dynamo exporter cannot export %s (%s); trying TorchScript's exporter.",
                type(model).__name__,
                dynamo_error,
            )
            # Only what the failed export itself may have written: the graph and its external-data file.
            for leftover in (path, path.with_name(f"{path.name}.data")):
                leftover.unlink(missing_ok=True)
    dynamic_axes = {
        name: {0: "batch", **({1: "length"} if _has_length_axis(name, names, fixed_length) else {})} for name in names
    } | {output: {0: "batch"} for output in outputs}
    wrapper = kind(traceable(model)).eval()
    with warnings.catch_warnings(), torch.no_grad(), _without_attention_fast_path(), _native_warnings_logged():
        warnings.simplefilter("ignore")  # TracerWarnings: the parity check tests what they warn about
        torch.onnx.export(wrapper, **common, dynamo=False, dynamic_axes=dynamic_axes)
    return "torchscript", dynamo_error


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(error: BaseException) -> str:
    """``Type: first line`` of the error that stopped torch.export (the cause torch.onnx wraps in a page of advice)."""
    cause = error.__cause__ or error
    text = _ANSI_ESCAPE.sub("", str(cause)).strip()
    return f"{type(cause).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


@contextlib.contextmanager
def _native_warnings_logged():
    """torch's C++ warnings written straight to file descriptor 2 during TorchScript's export, past Python's
    ``warnings`` (shape inference of packed sequences, which the parity check tests), logged at DEBUG instead."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 (an embedding host): nothing to redirect
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode(errors="replace").splitlines():
                if line.strip():
                    logger.debug("TorchScript exporter: %s", line.strip())


# --- Parity -------------------------------------------------------------------------------------------------------


def parity_clips(
    audio: Sequence[str | os.PathLike],
    sampling_rate: int,
    count: int = PARITY_CLIPS,
    max_samples: Optional[int] = None,
) -> tuple[list[np.ndarray], str]:
    """Up to ``count`` clips, spread over the audio files found under ``audio`` (files or folders), and a description
    of where they came from; without ``audio``, three seconds-long clips of seeded noise. With ``max_samples`` (an
    encoder's fixed window), each clip is its first window, as ``ser-hf predict`` reads a longer recording."""
    if not audio:
        generator = np.random.default_rng(0)
        lengths = (1.0, 1.7, 2.5)
        clips = [(0.1 * generator.standard_normal(int(s * sampling_rate))).astype(np.float32) for s in lengths]
        described = "generated noise (no --parity-audio given)"
    else:
        from ..data.decode import decode_waveform
        from .audio_inputs import find_audio_inputs

        files = find_audio_inputs(audio)
        chosen = [files[i] for i in np.linspace(0, len(files) - 1, min(count, len(files))).round().astype(int)]
        clips = [decode_waveform(path, sampling_rate) for path in dict.fromkeys(chosen)]
        described = ", ".join(map(str, audio))
    return [clip[:max_samples] for clip in clips], described


def _run_both(model: nn.Module, onnx_model: OnnxModelForAudioClassification, inputs: dict, clips) -> tuple:
    """torch's and onnxruntime's logits on the same inputs."""
    with torch.no_grad():
        expected = model(**inputs, return_dict=True).logits.float().numpy()
    try:
        got = onnx_model.logits(**inputs)
    except Exception as error:  # noqa: BLE001 - onnxruntime's errors are its own classes
        raise OnnxExportError(
            f"onnxruntime cannot run the exported graph on {len(clips)} clip(s) of up to "
            f"{max(map(len, clips))} samples ({type(error).__name__}: {str(error).strip()[:300]}): the "
            "exporter fixed a shape that varies. Nothing was written."
        ) from None
    return expected, got


def _own_statistics_parity(
    model: nn.Module, onnx_model: OnnxModelForAudioClassification, extractor, clips: Sequence[np.ndarray]
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """For a graph that takes state statistics: the largest difference of the pooled states (and the largest state,
    its scale), and torch's and onnxruntime's logits of ``clips`` standardised with their own mean (taken over torch's
    pooled states, as ``ser-hf predict`` takes a speaker's) and the stored deviations: statistics other than the stored
    ones reach the graph as inputs. Not their own deviations: those of a few clips may be far below one and magnify
    the least difference of the states (the model's conditioning, not the export's; the states are compared
    themselves)."""
    features = extractor(
        list(clips), sampling_rate=extractor.sampling_rate, return_tensors="pt", return_state_statistics=False
    )
    inputs = {name: _as_graph_input(name, features[name]) for name in (model.main_input_name, "attention_mask")}
    with torch.no_grad():
        expected_states = model.pooled_encoder_states(*inputs.values()).float()
    got_states = onnx_model.pooled_encoder_states(*inputs.values())
    difference = float((expected_states - got_states).abs().max())
    mean = expected_states.reshape(len(clips), -1).mean(dim=0)
    _, std = extractor.global_statistics()
    own = dict(zip(STATE_INPUTS, (mean.expand(len(clips), -1), torch.from_numpy(np.tile(std, (len(clips), 1))))))
    with torch.no_grad():
        expected = model(**inputs, **own, return_dict=True).logits.float().numpy()
    scale = float(expected_states.abs().max())
    return difference, scale, expected, onnx_model.logits(**inputs, **own)


def check_parity(
    model: nn.Module,
    onnx_model: OnnxModelForAudioClassification,
    feature_extractor,
    clips: Sequence[np.ndarray],
    audio: str,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityReport:
    """Run torch and onnxruntime on the same features of ``clips`` (each alone, then all in one padded batch); for a
    graph that takes state statistics, with the stored ones, then (two clips or more) with the clips' own mean, and
    compare the pooled states it outputs (:func:`_own_statistics_parity`)."""
    extractor = copy.copy(feature_extractor)
    extractor._fallback_said = True  # speaker normalisation without speakers: the global statistics, said elsewhere
    worst, same = 0.0, True
    batches = [[clip] for clip in clips] + ([list(clips)] if len(clips) > 1 else [])
    for batch in batches:
        features = extractor(batch, sampling_rate=extractor.sampling_rate, padding=True, return_tensors="pt")
        inputs = {name: _as_graph_input(name, features[name]) for name in onnx_model.inputs if name in features}
        expected, got = _run_both(model, onnx_model, inputs, batch)
        worst = max(worst, float(np.abs(expected - got).max()))
        same = same and bool((expected.argmax(-1) == got.argmax(-1)).all())
    state_difference = state_scale = None
    if takes_state_statistics(list(onnx_model.inputs)) and len(clips) > 1:
        state_difference, state_scale, expected, got = _own_statistics_parity(model, onnx_model, extractor, clips)
        worst = max(worst, float(np.abs(expected - got).max()))
        same = same and bool((expected.argmax(-1) == got.argmax(-1)).all())
    return ParityReport(len(clips), audio, worst, same, tolerance, state_difference, state_scale)


# --- The export ---------------------------------------------------------------------------------------------------


def _check_output_dir(output_dir: Path) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise OnnxExportError(f"{output_dir} is a file: give a folder to export into.")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not is_onnx_export(output_dir):
        raise OnnxExportError(
            f"{output_dir} already holds files and is not an ONNX export (no {MANIFEST_FILE}): export into a new "
            "folder (an earlier export is replaced)."
        )


def _ser_hf_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ser-hf")
    except PackageNotFoundError:
        from .. import __version__

        return __version__


def export_onnx(
    model,
    output_dir: str | os.PathLike,
    *,
    feature_extractor=None,
    parity_audio: Sequence[str | os.PathLike] = (),
    tolerance: float = DEFAULT_TOLERANCE,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    revision: Optional[str] = None,
    trust_remote_code: bool = False,
) -> OnnxExport:
    """Export a trained model to ``output_dir/model.onnx`` with its config, feature extractor and
    ``onnx_export.json``, after checking onnxruntime against torch on ``parity_audio`` (see the module docstring).

    Args:
        model (`str`, `PreTrainedModel` or `peft.PeftModel`): a trained model folder or Hub id, or a loaded model
            (then ``feature_extractor`` is needed). LoRA adapters are merged first.
        output_dir: a new folder, or an earlier export to replace.
        parity_audio: audio files or folders for the parity check (default: generated noise).
        tolerance (`float`): the largest absolute logit difference accepted.
        opset (`int`): the ONNX opset.
        exporter (`str`): ``auto`` (dynamo, else TorchScript), ``dynamo`` or ``torchscript``.

    Raises:
        `OnnxExportError`: the model is an ensemble (export each member), the output folder holds something else, the
            parity check failed (nothing is written), or onnx / onnxscript / onnxruntime are not installed.
    """
    source = str(model) if isinstance(model, (str, os.PathLike)) else getattr(model, "name_or_path", "") or ""
    if isinstance(model, (str, os.PathLike)):
        config = model_config(model, revision=revision, trust_remote_code=trust_remote_code)
    else:
        config = getattr(model, "config", None)
    refuse_ensemble(config, source, output_dir)  # before anything is loaded, exported or written
    for package in ("onnx", "onnxscript"):
        try:
            __import__(package)
        except ImportError:
            raise OnnxExportError(f"Exporting to ONNX needs {package}, which is not installed: {INSTALL_HINT}.")
    import_onnxruntime()
    output_dir = Path(output_dir)
    _check_output_dir(output_dir)
    if isinstance(model, (str, os.PathLike)):
        model, loaded_extractor = load_model_for_export(model, revision=revision, trust_remote_code=trust_remote_code)
        feature_extractor = feature_extractor or loaded_extractor
    if feature_extractor is None:
        raise ValueError("Pass the model's feature_extractor with a loaded model.")
    from ..models.feature_extraction_whisper import SerWhisperFeatureExtractor

    model = merged(model).eval().to("cpu")
    # Whisper's extractor pads every clip to the encoder's window: its inputs have one shape, and clips are cut to it.
    window = feature_extractor.n_samples if isinstance(feature_extractor, SerWhisperFeatureExtractor) else None
    clips, audio = parity_clips(parity_audio, feature_extractor.sampling_rate, max_samples=window)
    extractor = copy.copy(feature_extractor)
    extractor._fallback_said = True
    longest = sorted(clips, key=len)[-2:] if len(clips) > 1 else clips * 2
    if window is not None and getattr(model.config, "trim_window", False):
        # Encoded up to the batch's longest clip: traced on a whole window (seeded noise, nothing for trim_silence_db
        # to cut), so that the graph encodes every frame of the window and masks what a clip does not cover.
        longest = [(0.1 * np.random.default_rng(0).standard_normal(window)).astype(np.float32), longest[-1]]
    batch = extractor(longest, sampling_rate=extractor.sampling_rate, padding=True, return_tensors="pt")
    example = {name: _as_graph_input(name, batch[name]) for name in graph_input_names(model, batch)}

    created = not output_dir.exists()
    try:
        with atomic_directory(output_dir) as staging:
            used, dynamo_error = export_graph(
                model, example, staging / ONNX_FILE, opset=opset, exporter=exporter, fixed_length=window is not None
            )
            model.config.save_pretrained(staging)
            feature_extractor.save_pretrained(staging)
            if source and Path(source).is_dir():
                for name in RUN_FILES:
                    if (Path(source) / name).is_file():
                        shutil.copyfile(Path(source) / name, staging / name)
            manifest = _manifest(
                model, feature_extractor, example, source, used, dynamo_error, opset, fixed_length=window is not None
            )
            (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            parity = check_parity(
                model, OnnxModelForAudioClassification(staging), feature_extractor, clips, audio, tolerance
            )
            logger.debug("%s: %s", output_dir, parity.summary())  # the command prints it
            if not parity.passed:
                raise OnnxExportError(
                    f"The ONNX graph of {source or type(model).__name__} does not match torch ({parity.summary()}); "
                    f"nothing was written to {output_dir}."
                )
            manifest["parity"] = parity.to_dict()
            (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        if created and output_dir.is_dir() and not any(output_dir.iterdir()):
            output_dir.rmdir()
        raise
    return OnnxExport(output_dir, manifest, parity)


def _manifest(
    model,
    feature_extractor,
    example: dict[str, torch.Tensor],
    source: str,
    exporter: str,
    dynamo_error,
    opset: int,
    fixed_length: bool = False,
) -> dict[str, Any]:
    names = list(example)
    axes = {"input_values": ["batch", "samples"], "input_features": ["batch", "frames", "features"]}
    inputs = []
    for name, value in example.items():
        if name == "attention_mask" and not fixed_length:
            shape = ["batch", "samples" if names[0] == "input_values" else "frames"]
        elif _has_length_axis(name, names, fixed_length):
            shape = axes.get(name, ["batch", "length"])[: value.dim()]
        else:
            shape = ["batch", *value.shape[1:]]
        shape = [dim if isinstance(dim, str) or i == 0 else int(dim) for i, dim in enumerate(shape)]
        if name == "input_features" and value.dim() == 3:
            shape[2] = int(value.shape[2])
        inputs.append({"name": name, "dtype": str(value.dtype).removeprefix("torch."), "shape": shape})
    id2label = model.config.id2label
    outputs = [{"name": LOGITS, "dtype": "float32", "shape": ["batch", len(id2label)]}]
    manifest = {
        "format": "onnx",
        "onnx_file": ONNX_FILE,
        "opset": opset,
        "exporter": f"torch.onnx.export ({exporter})",
        "dynamo_error": dynamo_error,
        "torch_version": torch.__version__,
        "ser_hf_version": _ser_hf_version(),
        "source_model": source,
        "model_type": model.config.model_type,
        "inputs": inputs,
        "outputs": outputs,
        "labels": [id2label[i] for i in range(len(id2label))],
        "feature_extractor": {
            "runs_before_graph": True,
            "where": "Python: the saved feature extractor (preprocessor_config.json) turns audio into the inputs",
            "class": type(feature_extractor).__name__,
            "sampling_rate": feature_extractor.sampling_rate,
            "normalization": getattr(feature_extractor, "normalization", None),
        },
    }
    if takes_state_statistics(names):
        with torch.no_grad():
            states = model.pooled_encoder_states(example[names[0]], example["attention_mask"])
        outputs.append({"name": POOLED_STATES, "dtype": "float32", "shape": ["batch", *map(int, states.shape[1:])]})
        manifest["state_statistics"] = _state_statistics_note(feature_extractor)
    return manifest


def _state_statistics_note(feature_extractor) -> dict[str, Any]:
    """What ``onnx_export.json`` says of the ``state_mean`` and ``state_std`` inputs, for a runtime other than
    ser-hf's."""
    from ..models.feature_normalization import GROUP_NORMALIZATIONS
    from .speakers import MIN_STATISTICS_ROWS

    mode = feature_extractor.normalization
    note = {
        "inputs": list(STATE_INPUTS),
        "normalization": mode,
        "stored": "feature_mean and feature_std of preprocessor_config.json (the training clips' statistics): one "
        "row per clip, what the saved feature extractor gives without a speaker's statistics",
    }
    if mode in GROUP_NORMALIZATIONS:
        note["own"] = (
            f"each {mode}'s own: over the {POOLED_STATES} output of its clips (each clip's flattened to one row), "
            "the mean and sqrt(variance + variance_floor); what ser-hf predict and evaluate compute for a folder "
            f"with speakers (ser-hf predict: a group of fewer than {MIN_STATISTICS_ROWS} rows gets the stored "
            "statistics)"
        )
        note["variance_floor"] = feature_extractor.variance_floor
    if getattr(feature_extractor, "speaker_statistics_check", False):
        note["speaker_statistics_check"] = (
            "not exported: the check of speaker statistics runs the PyTorch model's head (ser_hf.evaluation."
            "speaker_check); the export standardises each speaker with their own statistics"
        )
    return note


__all__ = [
    "DEFAULT_OPSET",
    "ENSEMBLE_MODEL_TYPE",
    "DEFAULT_TOLERANCE",
    "EXPORTERS",
    "OnnxExport",
    "ParityReport",
    "check_parity",
    "export_graph",
    "export_onnx",
    "graph_input_names",
    "graph_output_names",
    "load_model_for_export",
    "model_config",
    "parity_clips",
    "refuse_ensemble",
    "takes_state_statistics",
]
