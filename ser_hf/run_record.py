"""The typed form of what a run folder's JSON files hold: :class:`RunReport` is a finished split's ``metrics.json``
(written by :func:`ser_hf.training.train_stage.train_and_evaluate` and by ensembles), :class:`RunConfig` its
``run_config.json`` (the resolved recipe the run started with), :class:`FoldSummary` a k-fold run's ``summary.json``,
:class:`EvalReport` a ``ser-hf evaluate`` report's ``eval_report.json``. Readers use attributes
(``report.split.speakers``, ``report.evaluation["test"].unweighted_accuracy``) instead of string keys.

``from_dict``/``to_dict`` round-trip the JSON exactly: a key ser-hf does not know (a newer ser-hf's, or one a user
added) is kept in ``extra_fields`` and written back, a key a record lacks (an older ser-hf's report) stays absent, and
the keys keep their order; so old run folders and Hub repositories read, and what is written has the same shape as
before. A record built in code (not read) writes every field, except the ``None`` ones a writer leaves out (those
marked ``omit_none``: a split's per-corpus scores, an ensemble's members).

``from_dict`` validates what it reads, since a record may have been edited by hand before ``ser-hf compare``, a card or
a push reads it: a value of another type than its field's (a string for a number, a string for a section), a number
out of its range (a proportion outside [0, 1], a negative time or count), or a required key missing (a split's
unweighted accuracy) is a :class:`~ser_hf.errors.RunRecordError` naming the file, the key (a dotted path) and the
value. Unknown keys and missing optional keys are not errors (old and newer run folders read).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, NamedTuple, Optional, TypeVar, Union

from .errors import RunRecordError
from .metric_table import METRICS, Metric

RecordT = TypeVar("RecordT", bound="JsonRecord")


class Range(NamedTuple):
    """The values a number may take, and how an error names them."""

    description: str
    accepts: Callable[[float], bool]


PROPORTION = Range("a proportion in [0, 1]", lambda value: 0 <= value <= 1)
SECONDS = Range("a time in seconds, 0 or more", lambda value: value >= 0)
NON_NEGATIVE = Range("a number, 0 or more", lambda value: value >= 0)
COUNT = Range("a whole number, 0 or more", lambda value: value >= 0)
POSITIVE = Range("a number above 0", lambda value: value > 0)
#: Values longer than this are shortened in errors.
_SHOWN_VALUE = 80

#: The bookkeeping fields of every record, which are not JSON keys.
_BOOKKEEPING = ("extra_fields", "key_order")


def _optional(range_: Optional[Range] = None, **kwargs) -> Any:
    """A field a freshly built record leaves out of its JSON while it is `None` (its numbers in ``range_``)."""
    return field(default=None, metadata={"omit_none": True, "range": range_, **kwargs.pop("metadata", {})}, **kwargs)


def _number(range_: Range, *, required: bool = False, **kwargs) -> Any:
    """A number field whose values lie in ``range_`` (every number of a list field); ``required``: a key every
    record read must have."""
    kwargs.setdefault("default", None)
    return field(metadata={"range": range_, "required": required}, **kwargs)


def _record(record_type: type, *, mapping: bool = False, omit_none: bool = False, **kwargs) -> Any:
    """A field holding a nested record (``mapping``: a dict of them, by name)."""
    metadata = {"record": record_type, "mapping": mapping, "omit_none": omit_none}
    if "default" not in kwargs and "default_factory" not in kwargs:
        kwargs["default"] = None
    return field(metadata=metadata, **kwargs)


@dataclass(kw_only=True)
class JsonRecord:
    """A JSON object read into a dataclass, and back, without losing or reordering a key.

    Attributes:
        extra_fields (`dict`): the keys this ser-hf does not know, kept as they were.
        key_order (`tuple[str, ...]`, *optional*): the keys of the JSON it was read from, in order (`None` when the
            record was built in code).
    """

    extra_fields: dict[str, Any] = field(default_factory=dict, repr=False)
    key_order: Optional[tuple[str, ...]] = field(default=None, repr=False, compare=False)

    @classmethod
    def json_fields(cls) -> tuple[dataclasses.Field, ...]:
        """The fields that are JSON keys (the bookkeeping fields aside)."""
        return tuple(f for f in dataclasses.fields(cls) if f.name not in _BOOKKEEPING)

    #: Checks of keys inside the record's mapping fields (``"per_speaker.*.unweighted_accuracy"``, ``*`` for any
    #: key): the type each must have where present, and the range of its numbers.
    nested_keys: ClassVar[dict[str, tuple[Any, Optional[Range]]]] = {}

    @classmethod
    def from_dict(cls: type[RecordT], data: Mapping[str, Any] | RecordT, where: str = "", key: str = "") -> RecordT:
        """The record of a JSON object (a record is returned as it is), validated (see the module docstring):
        ``where`` (the file) and ``key`` (the record's dotted path in it) are named in errors."""
        if isinstance(data, cls):
            return data
        where = where or cls.__name__
        if not isinstance(data, Mapping):
            if not key:
                raise RunRecordError(f"{where}: the file holds {_shown(data)}, not a JSON object.")
            raise _invalid(where, key, data, "a mapping (a JSON object)")
        known = {f.name: f for f in cls.json_fields()}
        hints = _type_hints(cls)
        values, extra = {}, {}
        for name, value in data.items():
            path = f"{key}.{name}" if key else name
            if name in known:
                values[name] = _load(known[name], hints[name], value, where, path)
            else:
                extra[name] = value
        for name, f in known.items():
            if f.metadata.get("required") and name not in data:
                path = f"{key}.{name}" if key else name
                raise RunRecordError(
                    f"{where}: {path} is missing: every ser-hf run writes it (the file was edited or damaged: "
                    "restore it, or train the run again)."
                )
        for pattern, (hint, range_) in cls.nested_keys.items():
            for path, value in _matching(values, pattern.split("."), key):
                _check(value, hint, range_, where, path)
        return cls(**values, extra_fields=extra, key_order=tuple(data))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the keys it was read with, in their order, or every field of a record built in code."""
        fields = {f.name: f for f in self.json_fields()}
        if self.key_order is not None:
            names = list(self.key_order)
            # A field set after reading (not at its default) is written too.
            names += [name for name, f in fields.items() if name not in names and getattr(self, name) != _default(f)]
            names += [name for name in self.extra_fields if name not in names]
        else:
            names = [
                name
                for name, f in fields.items()
                if getattr(self, name) is not None or not f.metadata.get("omit_none", False)
            ]
            names += list(self.extra_fields)
        result = {}
        for name in names:
            if name in fields:
                result[name] = _dump(fields[name], getattr(self, name))
            elif name in self.extra_fields:
                result[name] = self.extra_fields[name]
        return result

    def unknown_keys(self, prefix: str = "") -> list[str]:
        """Every key of this record and its nested ones that is not a field (``evaluation.test.new_metric``)."""
        found = [f"{prefix}{key}" for key in self.extra_fields]
        for f in self.json_fields():
            value = getattr(self, f.name)
            nested = value.values() if isinstance(value, dict) and f.metadata.get("mapping") else [value]
            names = value.keys() if isinstance(value, dict) and f.metadata.get("mapping") else [None]
            for name, item in zip(names, nested):
                if isinstance(item, JsonRecord):
                    where = f"{prefix}{f.name}." + (f"{name}." if name is not None else "")
                    found += item.unknown_keys(where)
        return found


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _load(f: dataclasses.Field, hint: Any, value: Any, where: str, key: str) -> Any:
    record_type = f.metadata.get("record")
    if record_type is None:
        _check(value, hint, f.metadata.get("range"), where, key)
        return value
    if value is None:
        return value
    if f.metadata.get("mapping"):
        if not isinstance(value, Mapping):
            raise _invalid(where, key, value, "a mapping (a JSON object)")
        return {name: record_type.from_dict(item, where, f"{key}.{name}") for name, item in value.items()}
    return record_type.from_dict(value, where, key)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_VALUE else text[: _SHOWN_VALUE - 3] + "..."


def _invalid(where: str, key: str, value: Any, expected: str) -> RunRecordError:
    return RunRecordError(
        f"{where}: {key} is {_shown(value)}, not {expected} (the file was edited or damaged: restore the value the "
        "run wrote, or train the run again)."
    )


def _describe(hint: Any, range_: Optional[Range]) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        arms = [arm for arm in typing.get_args(hint) if arm is not type(None)]
        return " or ".join(_describe(arm, range_) for arm in arms)
    if hint in (int, float) and range_ is not None:
        return range_.description
    names = {float: "a number", int: "a whole number", str: "a string", bool: "true or false"}
    if hint in names:
        return names[hint]
    if origin in (list, tuple):
        return "a list"
    if origin in (dict, Mapping) or hint is dict:
        return "a mapping (a JSON object)"
    return getattr(hint, "__name__", str(hint))


def _check(value: Any, hint: Any, range_: Optional[Range], where: str, key: str) -> None:
    """Raise :class:`RunRecordError` naming ``key`` (or the item of it at fault) when ``value`` is not of type
    ``hint`` or a number of it lies outside ``range_``."""
    if hint is Any:
        return
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return
        arms = [arm for arm in args if arm is not type(None)]
        if len(arms) == 1:
            return _check(value, arms[0], range_, where, key)
        errors = []
        for arm in arms:
            try:
                _check(value, arm, range_, where, key)
                return
            except RunRecordError as error:
                errors.append((arm, error))
        # A list (or mapping) whose item is at fault: that item is named.
        for arm, error in errors:
            if isinstance(value, (list, Mapping)) and typing.get_origin(arm) in (list, tuple, dict, Mapping):
                raise error
        raise _invalid(where, key, value, _describe(hint, range_))
    if hint in (int, float):
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or (hint is int and not isinstance(value, int)):
            raise _invalid(where, key, value, _describe(hint, range_))
        if range_ is not None and (not math.isfinite(value) or not range_.accepts(value)):
            raise _invalid(where, key, value, range_.description)
        return
    if hint in (str, bool):
        if not isinstance(value, hint):
            raise _invalid(where, key, value, _describe(hint, range_))
        return
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise _invalid(where, key, value, "a list")
        item_hint = args[0] if args else Any
        for index, item in enumerate(value):
            _check(item, item_hint, range_, where, f"{key}[{index}]")
        return
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise _invalid(where, key, value, "a mapping (a JSON object)")
        item_hint = args[1] if len(args) == 2 else Any
        for name, item in value.items():
            _check(item, item_hint, range_, where, f"{key}.{name}")


def _matching(values: Mapping[str, Any], parts: list[str], key: str) -> list[tuple[str, Any]]:
    """``(dotted path, value)`` of every key of ``values`` the pattern ``parts`` (``*``: any key) names."""
    head, rest = parts[0], parts[1:]
    names = list(values) if head == "*" else [head] if head in values else []
    found = []
    for name in names:
        path = f"{key}.{name}" if key else name
        value = values[name]
        if not rest:
            found.append((path, value))
        elif isinstance(value, Mapping):
            found += _matching(value, rest, path)
    return found


def _dump(f: dataclasses.Field, value: Any) -> Any:
    if isinstance(value, JsonRecord):
        return value.to_dict()
    if isinstance(value, dict) and f.metadata.get("mapping"):
        return {name: item.to_dict() if isinstance(item, JsonRecord) else item for name, item in value.items()}
    return value


# --- metrics.json -------------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class SplitRecord(JsonRecord):
    """How the corpus was split: clips and speakers of each split, and the split's own settings (as the training
    split's ``ser_hf`` metadata records them)."""

    clips: dict[str, int] = field(default_factory=dict, metadata={"range": COUNT})
    speakers: dict[str, list[str]] = field(default_factory=dict)
    split_protocol: Optional[str] = _optional()
    seed: Optional[int] = _optional()
    speaker_lists: Optional[Any] = _optional()
    n_splits: Optional[int] = _optional(COUNT)
    test_speaker: Optional[str] = _optional()


def _metric_range(metric: Metric) -> Range:
    low, high = metric.bounds
    if (low, high) == (0, 1):
        return PROPORTION
    return Range(f"a number in [{low}, {high}]", lambda value: low <= value <= high)


def _with_metric_fields(cls: type) -> type:
    """``cls`` as a record with one number field per row of :data:`~ser_hf.metric_table.METRICS` (in its order, before
    the fields ``cls`` declares): its bounds, and whether every record must have it, come from the row."""
    for name, metric in METRICS.items():
        setattr(cls, name, _number(_metric_range(metric), required=metric.required))
    cls.__annotations__ = {**{name: "Optional[float]" for name in METRICS}, **cls.__annotations__}
    return dataclass(kw_only=True)(cls)


@_with_metric_fields
class SplitMetrics(JsonRecord):
    """Every metric of one evaluated split (:func:`ser_hf.evaluation.metrics.classification_metrics`), with the
    calibration before/after and each clip's prediction where the run recorded them. Its scalar metrics are the rows
    of :data:`~ser_hf.metric_table.METRICS`, one field each (``metrics.unweighted_accuracy``), so a metric added
    there is kept, validated and written back with no edit here."""

    clips: Optional[int] = _number(COUNT)
    label_names: list[str] = field(default_factory=list)
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    confusion_matrix: list[list[int]] = field(default_factory=list, metadata={"range": COUNT})
    confusion_matrix_normalized: list[list[float]] = field(default_factory=list)
    per_speaker: Optional[dict[str, Any]] = _optional()
    confidence_intervals: Optional[dict[str, Any]] = _optional()
    per_corpus: Optional[dict[str, Any]] = _optional()
    per_sex: Optional[dict[str, Any]] = _optional()
    calibration: Optional[dict[str, Any]] = _optional()
    clip_predictions: Optional[list[dict[str, Any]]] = _optional()

    nested_keys: ClassVar[dict[str, tuple[Any, Optional[Range]]]] = {
        **{f"per_class.*.{name}": (Optional[float], PROPORTION) for name in ("precision", "recall", "f1")},
        "per_class.*.support": (Optional[int], COUNT),
        **{
            f"{group}.*.{name}": (Optional[float], PROPORTION)
            for group in ("per_speaker", "per_corpus", "per_sex")
            for name in ("unweighted_accuracy", "accuracy")
        },
        **{f"{group}.*.clips": (Optional[int], COUNT) for group in ("per_speaker", "per_corpus", "per_sex")},
    }

    def metric(self, name: str) -> Any:
        """A metric by name (``unweighted_accuracy``), from the fields or the keys this ser-hf does not know."""
        if name in {f.name for f in self.json_fields()}:
            return getattr(self, name)
        return self.extra_fields.get(name)


@dataclass(kw_only=True)
class CalibrationRecord(JsonRecord):
    """What temperature scaling did (:class:`ser_hf.evaluation.calibration.TemperatureScaling`)."""

    method: Optional[str] = None
    temperature: Optional[float] = _number(POSITIVE)
    fitted_on: Optional[str] = None
    nll_before: Optional[float] = _number(NON_NEGATIVE)
    nll_after: Optional[float] = _number(NON_NEGATIVE)
    note: Optional[str] = None


@dataclass(kw_only=True)
class ValidationChoices(JsonRecord):
    """What the validation speakers chose: the best epoch, when to stop, the calibration temperature."""

    best_epoch: bool = False
    early_stopping: bool = False
    temperature: bool = False


@dataclass(kw_only=True)
class TrainingRecord(JsonRecord):
    """How training went: Trainer's own ``train_*`` metrics, then ser-hf's timings, steps and checkpoints (an
    ensemble records only its members' total ``wall_seconds``)."""

    train_runtime: Optional[float] = _optional(SECONDS)
    train_samples_per_second: Optional[float] = _optional(NON_NEGATIVE)
    train_steps_per_second: Optional[float] = _optional(NON_NEGATIVE)
    total_flos: Optional[float] = _optional(NON_NEGATIVE)
    train_loss: Optional[float] = _optional()
    epoch: Optional[float] = _optional(NON_NEGATIVE)
    wall_seconds: Optional[float] = _number(SECONDS)
    global_step: Optional[int] = _optional(COUNT)
    epochs: Optional[float] = _optional(NON_NEGATIVE)
    best_checkpoint: Optional[str] = None
    best_metric: Optional[float] = None
    resumed_from: Optional[str] = None
    parameters: Optional[dict[str, int]] = _optional(COUNT)
    #: Test clips each self-training round added with their predicted labels (``self_training_rounds``).
    self_training_clips: Optional[list[int]] = _optional(COUNT)


@dataclass(kw_only=True)
class EnsembleRecord(JsonRecord):
    """An ensemble's members (their run folders), their weights and each one's test UA."""

    members: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list, metadata={"range": NON_NEGATIVE})
    member_test_ua: list[Optional[float]] = field(default_factory=list, metadata={"range": PROPORTION})


@dataclass(kw_only=True)
class RunReport(JsonRecord):
    """A finished split's report, ``metrics.json``.

    Attributes:
        protocol (`str`): the split protocol (``speaker``, ``kfold``, ``loso``, ``random``).
        fold (`int`, *optional*): the fold of a k-fold or leave-one-speaker-out run.
        split (`SplitRecord`): each split's clips and speakers, and the split's settings.
        leakage_audit (`dict`, *optional*): :meth:`ser_hf.data.audit.LeakageReport.to_dict`.
        normalization (`dict`, *optional*): :meth:`ser_hf.inputs.speaker_normalization.NormalizationPlan.to_dict`.
        training_corpora (`list[str]`): the corpora the model trained on (every figure is on held-out speakers of
            these).
        labels (`list[str]`): the class names, by class id.
        evaluation (`dict[str, SplitMetrics]`): the metrics of each evaluated split (``validation``, ``test``).
        calibration (`CalibrationRecord`, *optional*): the run's temperature scaling.
        validation_choices (`ValidationChoices`, *optional*): what the validation speakers chose; `None` without a
            validation split (or in a report from before ser-hf recorded it).
        training (`TrainingRecord`): timings, steps, checkpoints, parameters.
        ensemble (`EnsembleRecord`, *optional*): an ensemble's members.
    """

    protocol: Optional[str] = None
    fold: Optional[int] = _number(COUNT)
    split: SplitRecord = _record(SplitRecord, default_factory=SplitRecord)
    leakage_audit: Optional[dict[str, Any]] = None
    normalization: Optional[dict[str, Any]] = None
    training_corpora: Optional[list[str]] = None
    labels: list[str] = field(default_factory=list)
    evaluation: dict[str, SplitMetrics] = _record(SplitMetrics, mapping=True, default_factory=dict)
    calibration: Optional[CalibrationRecord] = _record(CalibrationRecord, omit_none=True)
    validation_choices: Optional[ValidationChoices] = _record(ValidationChoices)
    training: Optional[TrainingRecord] = _record(TrainingRecord, omit_none=True)
    ensemble: Optional[EnsembleRecord] = _record(EnsembleRecord, omit_none=True)

    @property
    def evaluated_splits(self) -> list[str]:
        """The splits the report has metrics of, in its order."""
        return list(self.evaluation)


# --- summary.json -------------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class FoldSummary(JsonRecord):
    """A k-fold or leave-one-speaker-out run's ``summary.json`` (:func:`ser_hf.evaluation.report.write_fold_summary`):
    every metric's mean and sample standard deviation over the folds on one split, each fold's metrics, and all folds'
    test speakers pooled (``confidence_intervals``).

    Attributes:
        folds (`int`): how many folds.
        mean, std (`dict[str, float]`): each metric's mean and sample standard deviation over the folds.
        per_fold (`list[dict]`): each fold's metrics, in fold order.
        split (`str`): the split summarised (``test``, or ``validation`` for a run without test speakers).
        fold_ids (`list[int]`), test_speakers (`list[list[str]]`): each fold's number and test speakers.
        leakage_audits_passed (`bool`, *optional*): whether every fold's leakage audit passed.
    """

    folds: Optional[int] = _number(COUNT)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    per_fold: list[dict[str, Any]] = field(default_factory=list)
    confidence_intervals: Optional[dict[str, Any]] = _optional()
    split: Optional[str] = None
    protocol: Optional[str] = None
    fold_ids: list[Optional[int]] = field(default_factory=list)
    test_speakers: list[list[str]] = field(default_factory=list)
    leakage_audits_passed: Optional[bool] = None


# --- eval_report.json ---------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class EvalSplitRecord(JsonRecord):
    """The clips a ``ser-hf evaluate`` report scored: the split's name (``test``, ``all``, ...), and the clips and
    speakers of each evaluated corpus (keyed as the report's ``evaluation``)."""

    name: Optional[str] = None
    clips: dict[str, int] = field(default_factory=dict, metadata={"range": COUNT})
    speakers: dict[str, list[str]] = field(default_factory=dict)


@dataclass(kw_only=True)
class EvalReport(JsonRecord):
    """A ``ser-hf evaluate`` report, ``eval_report.json`` (written by
    :func:`ser_hf.evaluation.eval_report.write_eval_report`, in a run's ``reports/`` or a folder of its own), as the
    card and the reports table read it.

    Attributes:
        model (`str`): the model evaluated (a run folder or a Hub id).
        corpus, corpus_name (`str`): the corpus evaluated on (its loader, and the name it goes by).
        training_corpora (`list[str]`, *optional*): the corpora the model trained on.
        corpus_relation (`str`, *optional*): ``in-corpus``, ``cross-corpus`` or ``unknown`` (a report from before it
            said so: see ``cross_corpus``).
        split (`EvalSplitRecord`): the split scored, its clips and speakers.
        labels (`list[str]`): the labels scored (those the model and the corpus share).
        dropped_clips (`dict[str, int]`, *optional*): the clips left out for their label, by label.
        unknown_label_clips (`dict[str, int]`, *optional*): of them, the clips of labels the model does not know, by
            label (left unscored; absent from a report written before it was recorded).
        normalization (`dict`, *optional*): how the speakers were normalised (``transductive`` when on their own
            clips).
        evaluation (`dict[str, SplitMetrics]`): the metrics, by evaluated corpus.
    """

    protocol: Optional[str] = None
    fold: Optional[int] = _number(COUNT)
    model: Optional[str] = None
    model_labels: Optional[list[str]] = None
    corpus: Optional[str] = None
    corpus_name: Optional[str] = None
    training_corpora: Optional[list[str]] = None
    corpus_relation: Optional[str] = None
    data_dir: Optional[str] = None
    split: EvalSplitRecord = _record(EvalSplitRecord, default_factory=EvalSplitRecord)
    labels: list[str] = field(default_factory=list)
    restricted_to_shared_labels: Optional[bool] = None
    dropped_clips: Optional[dict[str, Any]] = None
    unknown_label_clips: Optional[dict[str, Any]] = None
    unscored_clips: Optional[list[Any]] = None
    cross_corpus: Optional[bool] = None
    training_overlap: Optional[dict[str, Any]] = None
    speaker_independent: Optional[bool] = None
    run_validation_choices: Optional[dict[str, Any]] = None
    normalization: Optional[dict[str, Any]] = None
    setup_shift: Optional[dict[str, Any]] = None
    evaluation: dict[str, SplitMetrics] = _record(SplitMetrics, mapping=True, default_factory=dict)
    #: ``ser-hf evaluate --conditions``: the clean figures and each condition's, with its change against clean.
    recording_conditions: Optional[dict[str, Any]] = None


# --- run_config.json ----------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class RunConfig(JsonRecord):
    """A run's ``run_config.json``: its recipe's four sections as resolved values (``dataclasses.asdict`` of the
    model, data and augmentation arguments, ``TrainingArguments.to_dict`` with the token masked), the form a resumed
    run is compared against and a card reads. An ensemble's ``model`` section names its members instead."""

    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    augmentation: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    #: The keys that cards, ``ser-hf compare`` and ``ser-hf evaluate`` read from the sections, checked where present.
    nested_keys: ClassVar[dict[str, tuple[Any, Optional[Range]]]] = {
        "model.model_type": (Optional[str], None),
        "model.model_name_or_path": (Optional[str], None),
        "model.pooling_mode": (Optional[str], None),
        "model.use_lora": (Optional[bool], None),
        "model.use_weighted_layer_sum": (Optional[bool], None),
        "model.member_names": (Optional[list[str]], None),
        "data.corpus": (Optional[Union[str, list[str]]], None),
        "data.labels": (Optional[list[str]], None),
        "data.label_map": (Optional[dict[str, Any]], None),
        "data.sampling_rate": (Optional[int], POSITIVE),
        "data.split_protocol": (Optional[str], None),
        "data.split_seed": (Optional[int], None),
        "data.num_folds": (Optional[int], POSITIVE),
        "training.metric_for_best_model": (Optional[str], None),
        "training.learning_rate": (Optional[float], NON_NEGATIVE),
        "training.num_train_epochs": (Optional[float], None),
        "training.seed": (Optional[int], None),
        **{
            f"augmentation.{name}": (Optional[float], PROPORTION)
            for name in (
                "noise_prob",
                "gain_prob",
                "speed_prob",
                "pitch_prob",
                "reverb_prob",
                "lowpass_prob",
                "telephone_prob",
                "codec_prob",
                "mask_time_prob",
                "mask_feature_prob",
            )
        },
        "augmentation.mixup_alpha": (Optional[float], NON_NEGATIVE),
        "augmentation.num_time_masks": (Optional[int], COUNT),
        "augmentation.num_freq_masks": (Optional[int], COUNT),
    }

    @property
    def model_type(self) -> Optional[str]:
        return self.model.get("model_type")

    @property
    def corpora(self) -> list[str]:
        """The recipe's corpora (``data.corpus``: one name or a list)."""
        corpus = self.data.get("corpus") or []
        return [corpus] if isinstance(corpus, str) else list(corpus)


# --- An adapted model's record (read before anything heavy is imported: ser-hf adapt, the card, push) --------

#: Written by ``ser-hf adapt`` into the adapted model's folder: what it was adapted from, on how many labelled (and
#: pseudo-labelled) clips, and what the cross-validation kept with its estimate; the model card reads it.
ADAPTATION_FILE = "adaptation.json"

#: What ``adaptation.json``'s ``selection`` must hold for the card, the labelling page and the command to read it.
SELECTION_KEYS = {"chosen": str, "unchanged": bool, "estimate": dict, "estimate_line": str}


def read_adaptation_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The ``adaptation.json`` of an adapted model's folder (`None` where there is none), checked: a file that is not
    JSON, not a mapping, or whose ``selection`` is not a mapping holding :data:`SELECTION_KEYS` of their types is a
    :class:`~ser_hf.errors.RunRecordError` in one line naming the file and the key (damaged, or edited by hand)."""
    path = Path(folder).expanduser() / ADAPTATION_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunRecordError(f"{path}: cannot be read as JSON ({error}).") from None
    if not isinstance(record, dict):
        raise RunRecordError(f"{path}: not a mapping of the adaptation's record but {type(record).__name__}.")
    selection = record.get("selection")
    if not isinstance(selection, dict):
        raise RunRecordError(
            f"{path}: 'selection' is {type(selection).__name__}, not the mapping ser-hf adapt writes (what the "
            "cross-validation kept); adapt the model again to rewrite it."
        )
    for key, kind in SELECTION_KEYS.items():
        if not isinstance(selection.get(key), kind):
            raise RunRecordError(
                f"{path}: selection.{key} is {selection.get(key)!r}, not a {kind.__name__} as ser-hf adapt writes it; "
                "adapt the model again to rewrite it."
            )
    fitted = record.get("fitted_clips", [])
    if not isinstance(fitted, list) or not all(isinstance(digest, str) for digest in fitted):
        raise RunRecordError(f"{path}: fitted_clips is not a list of clip digests.")
    return record


__all__ = [
    "ADAPTATION_FILE",
    "COUNT",
    "NON_NEGATIVE",
    "POSITIVE",
    "PROPORTION",
    "SECONDS",
    "CalibrationRecord",
    "EnsembleRecord",
    "EvalReport",
    "EvalSplitRecord",
    "FoldSummary",
    "JsonRecord",
    "Range",
    "RunConfig",
    "RunReport",
    "SplitMetrics",
    "SplitRecord",
    "TrainingRecord",
    "ValidationChoices",
    "read_adaptation_record",
]
