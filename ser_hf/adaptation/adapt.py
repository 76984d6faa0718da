"""``ser_hf.adaptation.adapt(model, data_dir, output_dir, ...)``: a trained ser-hf model adapted to a user's
recordings with a few labelled clips (and, with `unlabelled_dir`, one self-training round on their unlabelled
recordings).

The model's frozen encoder encodes the labelled clips once (FAST mode's cache) and the adaptation is chosen by
cross-validation over the user's labelled speakers among the unchanged model, its classifier refitted with a pull
towards the trained one at a few strengths, class prototypes, and the two mixed (:mod:`.selection`, :mod:`.fitting`):
never worse, on the held-out speakers, than the model it starts from, with an estimate of how good it is on new
speakers (``adaptation.json``, the report, the card, and the command's last line). `unlabelled_dir` adds one
self-training round: the adapted model classifies the unlabelled recordings, the surest share of each predicted
emotion joins the labelled clips with the predicted labels (they train, the estimate never scores them), and the
adaptation is chosen again from MODEL on both. The output folder is an ordinary ser-hf model (card, push,
``pipeline``, predict, app). ``ser-hf adapt`` is a thin shell over :func:`adapt`, and the learning curve calls it
too, so that what is measured is what users run.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from ..atomic_files import refuse_output_among, write_text_atomic
from ..run_record import ADAPTATION_FILE, read_adaptation_record
from .errors import AdaptationError
from .trained_model import trained_model_facts

if TYPE_CHECKING:
    from ..run_record import RunReport

logger = logging.getLogger(__name__)

#: Beside ``output_dir`` when `unlabelled_dir` adds a self-training round (``OUT.self-training``): the first
#: adaptation's run (on the labelled clips alone) and the corpus the round trains on.
SELF_TRAINING_SUFFIX = ".self-training"
LABELLED_ONLY_FOLDER = "labelled-only"
#: With `labels_csv`: the sheet's rows answered with an emotion, beside the output folder (``OUT.labels.csv``), the
#: folder corpus the adaptation reads.
LABELS_SUFFIX = ".labels.csv"
SELF_TRAINING_CORPUS_FOLDER = "clips"
#: The corpus the self-training round trains on: the labelled clips and the picked unlabelled ones, with their labels.
SELF_TRAINING_CSV = "self_training_clips.csv"
#: What the report and the card say when the test speakers' own unlabelled clips were self-trained on.
TRANSDUCTIVE_NOTE = (
    "Self-trained on the test speakers' own unlabelled clips (transductive): the test figures are of a model adapted "
    "to the very recordings it is scored on, with labels it predicted itself."
)


@dataclass
class AdaptationPlan:
    """What an adaptation will run on, every input checked (:func:`check_adaptation`) before a clip is encoded.

    Attributes:
        model_dir (`Path`): the trained model's folder (a Hub id's snapshot in the Hub cache).
        model (`str`): the model as the user named it (a folder or a Hub id), which the card names.
        data_dir (`Path`), output_dir (`Path`): the labelled recordings and where the adapted model is saved.
        corpus_options (`dict`): the folder-corpus options the labelled (and unlabelled) recordings are read with.
        labels (`list[str]`, *optional*): the emotions of the folder kept.
        test_speakers (`list[str]`): speakers kept out of the adaptation and scored.
        unlabelled (`dict[str, str]`): each unlabelled recording self-training may use -> its speaker.
        statistics_recordings, self_train, fitted_digests: see the fields' comments.
        record (`dict`): the adaptation's record (``adaptation.json``), so far.
        labelled_paths (`list[Path]`): every clip of the labelled folder (the test speakers' included).
    """

    model_dir: Path
    model: str
    data_dir: Path
    output_dir: Path
    corpus_options: dict[str, Any]
    labels: Optional[list[str]] = None
    test_speakers: list[str] = field(default_factory=list)
    unlabelled_dir: Optional[Path] = None
    unlabelled: dict[str, str] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    labelled_paths: list[Path] = field(default_factory=list)
    #: Each recording that gives its speaker's statistics only (the sheet's clips answered with no emotion, and the
    #: unlabelled recordings) -> its speaker.
    statistics_recordings: dict[str, str] = field(default_factory=dict)
    #: Whether the unlabelled recordings are also self-trained on (one round), or give statistics only.
    self_train: bool = True
    #: The digests of the clips the model was already fitted on (its own ``adaptation.json``).
    fitted_digests: set[str] = field(default_factory=set)

    @property
    def transductive(self) -> bool:
        """Whether self-training reads test speakers' own unlabelled clips."""
        return bool(self.record.get("self_trained_on_test_speakers"))


def adapt(
    model: str | os.PathLike,
    data_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    label_regex: Optional[str] = None,
    speaker_regex: Optional[str] = None,
    corpus_options: Optional[Mapping[str, Any]] = None,
    labels: Optional[Sequence[str]] = None,
    test_speakers: Sequence[str] = (),
    unlabelled_dir: Optional[str | os.PathLike] = None,
    self_train_on_test_speakers: bool = False,
    seed: int = 42,
    revision: Optional[str] = None,
    labels_csv: Optional[str | os.PathLike] = None,
    self_train: bool = True,
) -> RunReport:
    """Adapt the trained model `model` (a run's folder or a Hub id) to the labelled recordings in `data_dir`, saving
    the adapted model in `output_dir`; returns the adapted run's report (``report.evaluation["test"]`` when
    `test_speakers` are set aside).

    Args:
        label_regex (`str`, *optional*): read each file's emotion from its path (default: ``FOLDER/<emotion>/...``).
        speaker_regex (`str`, *optional*): read each file's speaker from its path (needed unless `corpus_options`
            gives a CSV ``speaker_column``).
        corpus_options (`Mapping`, *optional*): other folder-corpus options (``csv_path``, ``label_column``, ...).
        labels (`Sequence[str]`, *optional*): keep only these emotions of the folder.
        test_speakers (`Sequence[str]`): speakers kept out of the adaptation and scored.
        unlabelled_dir (`str`, *optional*): unlabelled recordings of the same set-up: each labelled speaker's give
            that speaker's statistics (as at inference, with the labelled clips; no label read), and with
            `self_train` one self-training round reads them all. Recordings that are clips of `data_dir` (the same
            bytes) are left out of it, and counted.
        self_train (`bool`, defaults to `True`): self-train on `unlabelled_dir` (else it gives statistics only).
        self_train_on_test_speakers (`bool`): allow `unlabelled_dir` to hold test speakers' recordings (refused
            otherwise); the report and the card then say the evaluation is transductive.
        revision (`str`, *optional*): the branch, tag or commit of a Hub model.
        labels_csv (`str`, *optional*): a labelling sheet (``ser-hf suggest``, :mod:`.sheet`) whose paths are relative
            to `data_dir`: the adaptation reads the rows answered with an emotion (each row's label and speaker; skip,
            not speech and unanswered rows are left out) instead of reading labels from the files' paths.
    """
    plan = check_adaptation(
        model,
        data_dir,
        output_dir,
        label_regex=label_regex,
        speaker_regex=speaker_regex,
        corpus_options=corpus_options,
        labels=labels,
        test_speakers=test_speakers,
        unlabelled_dir=unlabelled_dir,
        self_train_on_test_speakers=self_train_on_test_speakers,
        revision=revision,
        labels_csv=labels_csv,
        self_train=self_train,
    )
    return run_plan(plan, seed=seed)


def run_plan(plan: AdaptationPlan, *, seed: int = 42) -> RunReport:
    """Run a checked :class:`AdaptationPlan`: the adaptation (twice with a self-training round), then the record, the
    report and the card. Its last log line is the estimate (:func:`~.selection.estimate_line`)."""
    from ..evaluation.report import write_report
    from ..hub.card import write_model_card
    from ..run_folder import REPORT_MARKDOWN

    if plan.unlabelled and plan.self_train:
        work = plan.output_dir.parent / f"{plan.output_dir.name}{SELF_TRAINING_SUFFIX}"
        first_output = work / LABELLED_ONLY_FOLDER
        first, _ = run_adaptation(plan, plan.data_dir, plan.corpus_options, first_output, seed)
        write_report(first_output, first)
        labelled = {str(path.resolve()) for path in plan.labelled_paths}
        corpus, pseudo = self_training_corpus(plan, first_output, work / SELF_TRAINING_CORPUS_FOLDER)
        plan.record.update(pseudo)
        options = {"csv_path": str(corpus / SELF_TRAINING_CSV), "label_column": "label", "speaker_column": "speaker"}
        report, selection = run_adaptation(plan, corpus, options, plan.output_dir, seed, scored_paths=labelled)
    else:
        report, selection = run_adaptation(plan, plan.data_dir, plan.corpus_options, plan.output_dir, seed)
    plan.record["selection"] = selection.to_dict()
    # The clips this model is fitted on, by their bytes: adapting it again never scores them (its estimate would be
    # of clips it learnt).
    plan.record["fitted_clips"] = sorted(set(selection.fitted_clips) | plan.fitted_digests)
    write_text_atomic(plan.output_dir / ADAPTATION_FILE, json.dumps(plan.record, indent=2) + "\n")
    write_report(plan.output_dir, report)
    # The report opens with what the user must know first: what was kept, and how good it is expected to be.
    notes = [f"**{selection.estimate_line()}**"]
    unscored = selection.statistics.get("test_clips_left_unscored") or {}
    if unscored:
        notes.append(
            f"The test speakers' clips of emotions the adapted model does not choose among are left unscored: "
            f"{sum(unscored.values())} ({', '.join(f'{label} {count}' for label, count in unscored.items())})."
        )
    if plan.transductive:
        notes.insert(0, f"**{TRANSDUCTIVE_NOTE}**")
    report_file = plan.output_dir / REPORT_MARKDOWN
    write_text_atomic(report_file, "\n\n".join(notes) + "\n\n" + report_file.read_text())
    write_model_card(plan.output_dir)
    logger.warning("%s", selection.estimate_line())
    return report


def folder_corpus_options(
    label_regex: Optional[str] = None,
    speaker_regex: Optional[str] = None,
    corpus_options: Optional[Mapping[str, Any]] = None,
) -> dict[str, Any]:
    """The folder-corpus options of an adaptation; a speaker pattern (or a CSV speaker column) is needed, and the
    patterns must compile."""
    options = dict(corpus_options or {})
    if label_regex:
        options["label_regex"] = label_regex
    if speaker_regex:
        options["speaker_regex"] = speaker_regex
    if "speaker_regex" not in options and "speaker_column" not in options:
        raise AdaptationError(
            "speaker_regex is needed (the statistics and any test_speakers are per speaker): e.g. "
            "'^(?P<speaker>[A-Z]+\\d)_' for files named SPEAKER_..., or '(?P<speaker>[^/]+)$' for a speaker per file.",
            parameter="speaker_regex",
            mentions=("test_speakers",),
        )
    for key in ("label_regex", "speaker_regex"):
        if options.get(key) is not None:
            try:
                re.compile(options[key])
            except re.error as error:
                raise AdaptationError(
                    f"{key} {options[key]!r} is not a regular expression: {error}.", parameter=key
                ) from None
    return options


def resolve_model_folder(model: str | os.PathLike, revision: Optional[str] = None) -> Path:
    """The local folder of `model`: itself when it is a folder, else the Hub repository's snapshot (downloaded once,
    then read from the Hub cache), resolved as ``ser-hf predict`` resolves a model: a missing folder, a missing
    repository, ``HF_HUB_OFFLINE`` without a cached copy, or an unreachable Hub is one line naming it."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        return folder
    from huggingface_hub import snapshot_download

    from ..models.runtime.location import check_model_location

    check_model_location(str(model), revision=revision)
    # The files a trained ser-hf model is made of; never pickled weights (safetensors only).
    patterns = ["*.json", "*.safetensors", "*.md", "*.py"]
    return Path(snapshot_download(str(model), revision=revision, allow_patterns=patterns))


def check_adaptation(
    model: str | os.PathLike,
    data_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    label_regex: Optional[str] = None,
    speaker_regex: Optional[str] = None,
    corpus_options: Optional[Mapping[str, Any]] = None,
    labels: Optional[Sequence[str]] = None,
    test_speakers: Sequence[str] = (),
    unlabelled_dir: Optional[str | os.PathLike] = None,
    self_train_on_test_speakers: bool = False,
    revision: Optional[str] = None,
    labels_csv: Optional[str | os.PathLike] = None,
    self_train: bool = True,
) -> AdaptationPlan:
    """Every input of :func:`adapt` checked, file names only (nothing decoded; with `labels_csv`, only its labelled
    rows written beside the output, ``OUT.labels.csv``): one :class:`~.errors.AdaptationError` naming the parameter,
    folder, file or label at fault. Returns the plan."""
    model_dir = resolve_model_folder(model, revision)
    facts = trained_model_facts(model_dir)
    fitted = (read_adaptation_record(model_dir) or {}).get("fitted_clips", [])
    if labels_csv is not None:
        given = sorted({key for key in ("label_regex", "csv_path") if (corpus_options or {}).get(key)})
        given = sorted(set(given) | ({"label_regex"} if label_regex else set()))
        if given:
            raise AdaptationError(
                f"labels_csv gives each clip's label and speaker: drop {', '.join(given)}.",
                parameter="labels_csv",
                mentions=tuple(given),
            )
        corpus_options = {**(corpus_options or {}), "label_column": "label", "speaker_column": "speaker"}
    options = folder_corpus_options(label_regex, speaker_regex, corpus_options)
    data, output = check_folders(data_dir, output_dir, unlabelled_dir, model_dir)
    sheet_record, statistics_rows = {}, {}
    if labels_csv is not None:
        from .sheet import labelled_rows_csv, speech_rows

        labelled_csv = output.parent / f"{output.name}{LABELS_SUFFIX}"
        # The whole sheet is checked (the model's emotions, every file in the folder) before the file is written.
        labelled_csv.parent.mkdir(parents=True, exist_ok=True)
        counts = labelled_rows_csv(labels_csv, labelled_csv, labels=facts["labels"], data_dir=data)
        options["csv_path"] = str(labelled_csv)
        sheet_record = {"labels_csv": str(labels_csv), "sheet_answers": counts}
        statistics_rows = speech_rows(labels_csv, data)
    plan = AdaptationPlan(
        model_dir=model_dir,
        model=str(model),
        data_dir=data,
        output_dir=output,
        corpus_options=options,
        labels=list(labels) if labels else None,
        test_speakers=list(test_speakers),
        unlabelled_dir=Path(unlabelled_dir).expanduser() if unlabelled_dir is not None else None,
        statistics_recordings=statistics_rows,
        self_train=self_train,
        fitted_digests=set(fitted),
    )
    plan.record.update(sheet_record)
    try:
        plan.labelled_paths = check_labelled_clips(plan, facts["labels"])
        if plan.unlabelled_dir is not None:
            check_unlabelled_recordings(plan, plan.labelled_paths, self_train_on_test_speakers)
            plan.statistics_recordings.update(plan.unlabelled)
        if fitted:
            logger.warning(
                "%s was adapted before: the %d clips it was fitted on (its adaptation.json) never count in this "
                "adaptation's estimate.",
                model,
                len(fitted),
            )
    except AdaptationError:
        if labels_csv is not None:  # the file derived from the user's sheet goes with the refused adaptation
            Path(options["csv_path"]).unlink(missing_ok=True)
        raise
    return plan


def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def check_folders(
    data_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    unlabelled_dir: Optional[str | os.PathLike],
    model_dir: Path,
) -> tuple[Path, Path]:
    """The labelled and unlabelled folders exist; the output is neither the model's folder nor inside an audio folder
    (ser-hf never writes its outputs among audio files), nor an audio folder inside it."""
    folders = {"data_dir": data_dir, "unlabelled_dir": unlabelled_dir}
    for name, folder in folders.items():
        if folder is not None and not Path(folder).expanduser().is_dir():
            raise AdaptationError(f"{name} {folder}: no such folder.", parameter=name)
    refuse_output_among(output_dir, {"model": model_dir, **folders})
    return Path(data_dir).expanduser(), Path(output_dir).expanduser()


def check_labelled_clips(plan: AdaptationPlan, model_labels: Sequence[str]) -> list[Path]:
    """The labelled folder read (file names and folders only, nothing decoded) before the model loads: the test
    speakers exist, two emotions at least have clips of a speaker who adapts, and every emotion the adapted model
    will choose among has clips or a row of the model's own. Those are `labels` where given, else the model's labels
    and the folder's new ones: an emotion the user labelled no clip of keeps the model's classifier row (an adaptation
    never makes the model unable to name what it named). Fills the plan's record (the model's labels, the adapted
    model's, which are new, which dropped, which kept unlabelled) and sets ``plan.labels``. Returns the labelled
    clips' paths."""
    from collections import Counter

    from ..data.corpora import load_corpus
    from ..data.dataset_info import column_values

    labelled = load_corpus("folder", plan.data_dir, **plan.corpus_options)
    folder_names = labelled.features["label"].names
    speakers = column_values(labelled, "speaker_id")
    unknown = sorted(set(plan.test_speakers) - set(speakers))
    if unknown:
        raise AdaptationError(
            f"test_speakers {', '.join(unknown)}: not among {plan.data_dir}'s speakers {sorted(set(speakers))}.",
            parameter="test_speakers",
        )
    if set(speakers) <= set(plan.test_speakers):
        raise AdaptationError(
            f"test_speakers names every speaker of {plan.data_dir}: none is left to adapt on.",
            parameter="test_speakers",
        )
    counts = Counter(
        folder_names[label]
        for label, speaker in zip(column_values(labelled, "label"), speakers)
        if speaker not in plan.test_speakers
    )
    if plan.labels:
        names = list(plan.labels)
    else:
        names = list(model_labels) + [name for name in folder_names if name not in model_labels and counts[name]]
    impossible = [name for name in names if not counts[name] and name not in model_labels]
    if impossible:
        raise AdaptationError(
            f"{plan.data_dir}: no clip of {', '.join(impossible)} among the speakers who adapt (clips per label: "
            f"{dict(counts) or 'none'}), and the model has no such emotion: label at least one clip of it, or leave "
            "it out of labels.",
            parameter="data_dir",
            mentions=("labels",),
        )
    labelled_emotions = [name for name in names if counts[name]]
    if len(labelled_emotions) < 2:
        raise AdaptationError(
            f"{plan.data_dir}: clips of {len(labelled_emotions)} emotion(s) of {', '.join(names)} only "
            f"({', '.join(labelled_emotions) or 'none'}); label two emotions at least."
        )
    plan.labels = names
    plan.record.update(
        {
            "adapted_from": plan.model,
            "model_labels": list(model_labels),
            "labels": names,
            "new_labels": [name for name in names if name not in model_labels],
            "dropped_labels": [name for name in model_labels if name not in names],
            "unlabelled_labels": [name for name in names if not counts[name]],
            "labelled_clips": sum(counts[name] for name in names),
            "clips_per_label": {name: counts[name] for name in names},
        }
    )
    return [Path(path) for path in column_values(labelled, "path")]


def check_unlabelled_recordings(plan: AdaptationPlan, labelled: Sequence[Path], allow_test_speakers: bool) -> None:
    """The unlabelled recordings self-training may use, each with its speaker (read with the labelled folder's
    ``speaker_regex``): those of the labelled folder (the same bytes) are left out and counted; those of a test
    speaker are refused unless `allow_test_speakers`, and then recorded (transductive)."""
    from ..data.corpora.spec import find_audio_files

    recordings = [str(path) for path in find_audio_files(plan.unlabelled_dir)]  # links keep their own names
    speakers = unlabelled_speakers(recordings, plan.unlabelled_dir, plan.corpus_options)
    from ..data.file_digests import file_digests

    labelled_digests = set(file_digests(labelled))
    repeated = [
        recording for recording, digest in zip(recordings, file_digests(recordings)) if digest in labelled_digests
    ]
    if repeated:
        logger.warning(
            "unlabelled_dir: %d of %d recordings are clips of data_dir (the same bytes), left out of "
            "self-training: they are labelled already.",
            len(repeated),
            len(recordings),
        )
    usable = {recording: speakers[recording] for recording in recordings if recording not in set(repeated)}
    if not usable:
        raise AdaptationError(
            f"unlabelled_dir {plan.unlabelled_dir}: every recording in it is a clip of data_dir {plan.data_dir}, "
            "so self-training has nothing to read; give a folder of other, unlabelled recordings.",
            parameter="unlabelled_dir",
            mentions=("data_dir",),
        )
    heard = sorted({speaker for speaker in usable.values() if speaker in plan.test_speakers})
    if heard and not plan.self_train:  # statistics only: a test speaker's recordings give no labelled one's
        usable = {recording: speaker for recording, speaker in usable.items() if speaker not in plan.test_speakers}
        heard = []
    if heard and not allow_test_speakers:
        raise AdaptationError(
            f"unlabelled_dir {plan.unlabelled_dir} holds recordings of the test speakers {', '.join(heard)}: "
            "self-training on them would adapt the model to the very clips it is scored on. Leave them out of the "
            "folder, or set self_train_on_test_speakers to do so knowingly (the report and the card then say the "
            "evaluation is transductive).",
            parameter="unlabelled_dir",
            mentions=("self_train_on_test_speakers",),
        )
    if heard:
        logger.warning("Self-training reads the test speakers' own unlabelled clips (%s): transductive.", heard)
    plan.unlabelled = usable
    plan.record["unlabelled_clips_of_labelled_folder"] = len(repeated)
    if heard:
        plan.record["self_trained_on_test_speakers"] = heard


def run_adaptation(
    plan: AdaptationPlan,
    data_dir: str | os.PathLike,
    options: Mapping[str, Any],
    output_dir: Path,
    seed: int,
    scored_paths: Optional[set[str]] = None,
) -> tuple[RunReport, Any]:
    """One adaptation of the plan's model on the corpus in `data_dir`, saved in `output_dir`
    (:func:`~.fitting.fit_adaptation`); `scored_paths` (resolved) are the clips its cross-validation scores (default:
    all). Returns the report and the :class:`~.selection.Selection`."""
    from .fitting import fit_adaptation

    return fit_adaptation(
        plan.model_dir,
        data_dir,
        options,
        output_dir,
        labels=plan.labels,
        test_speakers=plan.test_speakers,
        seed=seed,
        scored_paths=scored_paths,
        statistics_recordings=plan.statistics_recordings,
        fitted_digests=plan.fitted_digests,
    )


def self_training_corpus(plan: AdaptationPlan, adapted: Path, corpus: Path) -> tuple[Path, dict[str, Any]]:
    """Classify the plan's unlabelled recordings with the adapted model in `adapted`, keep the surest share of each
    predicted emotion (:func:`~ser_hf.training.self_training.pick_pseudo_labels`) and make the corpus of the
    self-training round in the folder `corpus`: links to the labelled clips and to the kept recordings (with the
    predicted labels), listed in a CSV with their speakers. Returns the folder and the record of the adaptation's
    clips (:data:`~ser_hf.run_record.ADAPTATION_FILE`)."""
    import numpy as np

    from ..data.corpora import load_corpus
    from ..data.dataset_info import column_values
    from ..deploy.predict import predict_files
    from ..training.self_training import pick_pseudo_labels
    from .trained_model import ADAPTATION_SELF_TRAINING_SHARE

    labelled = load_corpus("folder", plan.data_dir, **plan.corpus_options)
    names = labelled.features["label"].names
    columns = (column_values(labelled, name) for name in ("path", "label", "speaker_id"))
    clips = [(Path(path), names[label], speaker) for path, label, speaker in zip(*columns)]
    clips = [clip for clip in clips if clip[1] in plan.labels]
    corpus.mkdir(parents=True, exist_ok=True)
    speakers_csv = corpus / "unlabelled_speakers.csv"
    write_text_atomic(speakers_csv, csv_text([("path", "speaker_id"), *plan.unlabelled.items()]))
    predictions = []
    predict_files(adapted, speakers_csv=speakers_csv, progress=False, on_prediction=predictions.append)
    scored = [prediction for prediction in predictions if prediction.scores]
    if not scored:
        raise AdaptationError(
            f"unlabelled_dir {plan.unlabelled_dir}: no recording in it could be classified.",
            parameter="unlabelled_dir",
        )
    labels = list(scored[0].scores)
    probabilities = np.array([[p.scores[label] for label in labels] for p in scored], dtype=np.float64)
    picked, predicted = pick_pseudo_labels(np.log(np.clip(probabilities, 1e-12, None)), ADAPTATION_SELF_TRAINING_SHARE)
    clips += [(Path(scored[i].file), labels[label], scored[i].speaker) for i, label in zip(picked, predicted)]
    rows = [("path", "label", "speaker")]
    for number, (path, label, speaker) in enumerate(clips):
        link = corpus / f"{number:05d}_{path.name}"
        if not link.is_symlink():
            link.symlink_to(path.resolve())
        rows.append((link.name, label, speaker))
    write_text_atomic(corpus / SELF_TRAINING_CSV, csv_text(rows))
    logger.warning(
        "Self-training: %d of %d unlabelled recordings kept with their predicted emotions (the surest %d %% of each), "
        "beside the %d labelled clips.",
        len(picked),
        len(scored),
        round(100 * ADAPTATION_SELF_TRAINING_SHARE),
        len(labelled),
    )
    record = {
        "unlabelled_recordings": len(scored),
        "pseudo_labelled_clips": len(picked),
        "self_training_share": ADAPTATION_SELF_TRAINING_SHARE,
    }
    return corpus, record


def csv_text(rows: Sequence[Sequence[Any]]) -> str:
    """`rows` as CSV text."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def unlabelled_speakers(recordings: Sequence[str], root: Path, options: Mapping[str, Any]) -> dict[str, str]:
    """Each unlabelled recording's speaker, read with the labelled folder's ``speaker_regex`` from its path relative
    to `root`; a recording it does not match is named in the error."""
    pattern = options.get("speaker_regex")
    if pattern is None:
        raise AdaptationError(
            "unlabelled_dir needs speaker_regex: each recording's speaker is read with it.",
            parameter="speaker_regex",
            mentions=("unlabelled_dir",),
        )
    compiled = re.compile(pattern)
    speakers = {}
    for recording in recordings:
        searched = Path(recording).relative_to(_resolved(root)).as_posix()
        match = compiled.search(searched)
        speaker = (match.group("speaker") if "speaker" in compiled.groupindex else match.group(1)) if match else None
        if not speaker:
            raise AdaptationError(
                f"unlabelled_dir: speaker_regex {pattern!r} finds no speaker in {searched!r}.",
                parameter="speaker_regex",
                mentions=("unlabelled_dir",),
            )
        speakers[recording] = speaker
    return speakers


__all__ = [
    "LABELS_SUFFIX",
    "AdaptationPlan",
    "adapt",
    "check_adaptation",
    "folder_corpus_options",
    "resolve_model_folder",
    "run_plan",
]
