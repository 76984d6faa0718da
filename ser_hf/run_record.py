"""The typed form of what a run folder's JSON files hold: :class:`RunReport` is a finished split's ``metrics.json``
(written by :func:`ser_hf.training.stages.train_and_evaluate` and by ensembles), :class:`RunConfig` its
``run_config.json`` (the resolved recipe the run started with). Readers use attributes (``report.split.speakers``,
``report.evaluation["test"].unweighted_accuracy``) instead of string keys.

``from_dict``/``to_dict`` round-trip the JSON exactly: a key ser-hf does not know (a newer ser-hf's, or one a user
added) is kept in ``extra_fields`` and written back, a key a record lacks (an older ser-hf's report) stays absent, and
the keys keep their order; so old run folders and Hub repositories read, and what is written has the same shape as
before. A record built in code (not read) writes every field, except the ``None`` ones a writer leaves out (those
marked ``omit_none``: a split's per-corpus scores, an ensemble's members).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, TypeVar

RecordT = TypeVar("RecordT", bound="JsonRecord")

#: The bookkeeping fields of every record, which are not JSON keys.
_BOOKKEEPING = ("extra_fields", "key_order")


def _optional(**kwargs) -> Any:
    """A field a freshly built record leaves out of its JSON while it is `None`."""
    return field(default=None, metadata={"omit_none": True, **kwargs.pop("metadata", {})}, **kwargs)


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

    @classmethod
    def from_dict(cls: type[RecordT], data: Mapping[str, Any] | RecordT, where: str = "") -> RecordT:
        """The record of a JSON object (a record is returned as it is); ``where`` (the file) is named in errors."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"{where or cls.__name__}: expected a JSON object, got {type(data).__name__}.")
        known = {f.name: f for f in cls.json_fields()}
        values, extra = {}, {}
        for key, value in data.items():
            if key in known:
                values[key] = _load(known[key], value, f"{where}.{key}" if where else key)
            else:
                extra[key] = value
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


def _load(f: dataclasses.Field, value: Any, where: str) -> Any:
    record_type = f.metadata.get("record")
    if record_type is None or value is None:
        return value
    if f.metadata.get("mapping"):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a JSON object, got {type(value).__name__}.")
        return {name: record_type.from_dict(item, f"{where}.{name}") for name, item in value.items()}
    return record_type.from_dict(value, where)


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

    clips: dict[str, int] = field(default_factory=dict)
    speakers: dict[str, list[str]] = field(default_factory=dict)
    split_protocol: Optional[str] = _optional()
    seed: Optional[int] = _optional()
    speaker_lists: Optional[Any] = _optional()
    n_splits: Optional[int] = _optional()
    test_speaker: Optional[str] = _optional()


@dataclass(kw_only=True)
class SplitMetrics(JsonRecord):
    """Every metric of one evaluated split (:func:`ser_hf.evaluation.metrics.classification_metrics`), with the
    calibration before/after and each clip's prediction where the run recorded them."""

    unweighted_accuracy: Optional[float] = None
    accuracy: Optional[float] = None
    macro_f1: Optional[float] = None
    weighted_f1: Optional[float] = None
    expected_calibration_error: Optional[float] = None
    clips: Optional[int] = None
    label_names: list[str] = field(default_factory=list)
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    confusion_matrix: list[list[int]] = field(default_factory=list)
    confusion_matrix_normalized: list[list[float]] = field(default_factory=list)
    per_speaker: Optional[dict[str, Any]] = _optional()
    confidence_intervals: Optional[dict[str, Any]] = _optional()
    per_corpus: Optional[dict[str, Any]] = _optional()
    per_sex: Optional[dict[str, Any]] = _optional()
    calibration: Optional[dict[str, Any]] = _optional()
    clip_predictions: Optional[list[dict[str, Any]]] = _optional()

    def metric(self, name: str) -> Any:
        """A metric by name (``unweighted_accuracy``), from the fields or the keys this ser-hf does not know."""
        if name in {f.name for f in self.json_fields()}:
            return getattr(self, name)
        return self.extra_fields.get(name)


@dataclass(kw_only=True)
class CalibrationRecord(JsonRecord):
    """What temperature scaling did (:class:`ser_hf.evaluation.calibration.TemperatureScaling`)."""

    method: Optional[str] = None
    temperature: Optional[float] = None
    fitted_on: Optional[str] = None
    nll_before: Optional[float] = None
    nll_after: Optional[float] = None
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

    train_runtime: Optional[float] = _optional()
    train_samples_per_second: Optional[float] = _optional()
    train_steps_per_second: Optional[float] = _optional()
    total_flos: Optional[float] = _optional()
    train_loss: Optional[float] = _optional()
    epoch: Optional[float] = _optional()
    wall_seconds: Optional[float] = None
    global_step: Optional[int] = _optional()
    epochs: Optional[float] = _optional()
    best_checkpoint: Optional[str] = None
    best_metric: Optional[float] = None
    resumed_from: Optional[str] = None
    parameters: Optional[dict[str, int]] = _optional()


@dataclass(kw_only=True)
class EnsembleRecord(JsonRecord):
    """An ensemble's members (their run folders), their weights and each one's test UA."""

    members: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    member_test_ua: list[Optional[float]] = field(default_factory=list)


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
    fold: Optional[int] = None
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

    @property
    def model_type(self) -> Optional[str]:
        return self.model.get("model_type")

    @property
    def corpora(self) -> list[str]:
        """The recipe's corpora (``data.corpus``: one name or a list)."""
        corpus = self.data.get("corpus") or []
        return [corpus] if isinstance(corpus, str) else list(corpus)


__all__ = [
    "CalibrationRecord",
    "EnsembleRecord",
    "JsonRecord",
    "RunConfig",
    "RunReport",
    "SplitMetrics",
    "SplitRecord",
    "TrainingRecord",
    "ValidationChoices",
]
