"""Speaker-independent splits and folds, plus a random split kept only to show how much it leaks.

Every function returns ``DatasetDict``s whose splits record their protocol, seed and speakers in the ser-hf record
(:func:`ser_hf.get_ser_info`), which the leakage audit reads. All are deterministic under ``seed``.
"""

from __future__ import annotations

import logging
import os
from pathlib import PurePath
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets
from sklearn.model_selection import GroupShuffleSplit, LeaveOneGroupOut, StratifiedGroupKFold

from .constants import PROTOCOLS
from .dataset_info import column_values, get_ser_info, set_ser_info
from .errors import SplitError, TooManyFoldsError
from .file_digests import file_digests

logger = logging.getLogger(__name__)


def _speakers(dataset: Dataset) -> np.ndarray:
    return np.asarray(column_values(dataset, "speaker_id"), dtype=object)


def _make_dict(dataset: Dataset, indices: dict[str, np.ndarray], protocol: str, **record) -> DatasetDict:
    speakers = _speakers(dataset)
    splits = {}
    for name, rows in indices.items():
        if len(rows) == 0:
            continue
        split = dataset.select(np.sort(rows))
        set_ser_info(
            split, split=name, split_protocol=protocol, split_speakers=sorted(set(speakers[rows].tolist())), **record
        )
        splits[name] = split
    return DatasetDict(splits)


def _check_speakers(listed: Sequence[str], known: set, what: str) -> list[str]:
    listed = [str(s) for s in listed]
    unknown = [s for s in listed if s not in known]
    if unknown:
        raise SplitError(
            f"{what}: speaker(s) {unknown} are not in the dataset (its speakers: {sorted(known)}). Name speakers "
            f"it has: {what} in the recipe, or --{what} ID [ID ...] on the command line."
        )
    return listed


def _group_holdout(speakers: np.ndarray, rows: np.ndarray, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into (rest, held out) so that about ``size`` of their speakers are held out."""
    groups = speakers[rows]
    n_groups = len(set(groups.tolist()))
    if not 0 < size < 1:
        raise SplitError(f"A held-out share of speakers must be between 0 and 1, not {size}.")
    if n_groups < 2:
        raise SplitError(
            f"Cannot hold out speakers from {n_groups} speaker(s); a speaker-independent split needs "
            "at least two (set validation_size=0 for corpora with very few speakers)."
        )
    splitter = GroupShuffleSplit(n_splits=1, test_size=size, random_state=seed)
    rest, held_out = next(splitter.split(rows, groups=groups))
    return rows[rest], rows[held_out]


def _warn_no_test_speakers(lists: dict[str, list[str]], known: set) -> None:
    """A speaker split with speaker lists but no test speaker (a recipe for actors 01-24 run on a copy of 01-20): the
    run would report only validation figures, on speakers that also chose the epoch and fitted the temperature."""
    validation = lists["validation"]
    if len(validation) >= 2:
        half = len(validation) // 2
        example = f"--validation_speakers {' '.join(validation[:half])} --test_speakers {' '.join(validation[half:])}"
    else:
        example = "--test_speakers ID [ID ...]"
    scores = (
        "reports only validation figures, on the validation speakers that also choose the best epoch (when "
        "load_best_model_at_end or early stopping is on) and fit the calibration temperature: in-sample, not a "
        "held-out estimate"
        if validation
        else "reports no figure at all"
    )
    speakers = sorted(known)
    logger.warning(
        "NO TEST SPEAKERS: the train and validation lists take every speaker of the dataset (%d: %s), so the run has "
        "no test split and %s. Name test speakers: test_speakers in the recipe, or on the command line, e.g. %s.",
        len(speakers),
        ", ".join(speakers[:24]) + (", ..." if len(speakers) > 24 else ""),
        scores,
        example,
    )


def speaker_split(
    dataset: Dataset,
    *,
    test_speakers: Optional[Sequence[str]] = None,
    validation_speakers: Optional[Sequence[str]] = None,
    train_speakers: Optional[Sequence[str]] = None,
    test_size: float = 0.2,
    validation_size: float = 0.1,
    seed: int = 42,
) -> DatasetDict:
    """Split into train / validation / test with every speaker in exactly one split.

    Either name the speakers, or give proportions of speakers (``test_size``, ``validation_size``; 0 leaves that
    split out). With names: without ``train_speakers`` every speaker not named for test or validation trains; with
    ``train_speakers`` but no ``test_speakers`` the remaining speakers are the test split (the RAVDESS protocol
    "actors 1-16 train, 17-20 validate, the rest test"); with all three lists, speakers in none are left out and
    logged. No speaker left for test (a recipe for 24 actors on a copy of 20) leaves the test split out, with a
    warning: the run then has only validation figures.

    Example:
        >>> splits = speaker_split(ds, test_speakers=["07", "08"], validation_speakers=["06"])
    """
    speakers = _speakers(dataset)
    known = set(speakers.tolist())
    rows = np.arange(len(dataset))
    if test_speakers is not None or validation_speakers is not None or train_speakers is not None:
        lists = {
            "test": _check_speakers(test_speakers or [], known, "test_speakers"),
            "validation": _check_speakers(validation_speakers or [], known, "validation_speakers"),
        }
        lists["train"] = (
            _check_speakers(train_speakers, known, "train_speakers")
            if train_speakers is not None
            else sorted(known - set(lists["test"]) - set(lists["validation"]))
        )
        if train_speakers is not None and test_speakers is None:
            lists["test"] = sorted(known - set(lists["train"]) - set(lists["validation"]))
        for a, b in (("train", "test"), ("train", "validation"), ("validation", "test")):
            shared = sorted(set(lists[a]) & set(lists[b]))
            if shared:
                raise SplitError(f"Speaker(s) {shared} are listed for both {a} and {b}.")
        if not lists["train"]:
            raise SplitError(
                "No speaker is left for training: name train_speakers or leave some speakers out of "
                "the test and validation lists."
            )
        if not lists["test"]:
            _warn_no_test_speakers(lists, known)
        unused = sorted(known - set().union(*lists.values()))
        if unused:
            logger.warning(
                "Speaker(s) %s are in no split and are left out (%d clips).",
                unused,
                int(np.isin(speakers, unused).sum()),
            )
        indices = {name: rows[np.isin(speakers, members)] for name, members in lists.items()}
        return _make_dict(
            dataset,
            {k: indices[k] for k in ("train", "validation", "test")},
            "speaker",
            seed=seed,
            speaker_lists={k: sorted(v) for k, v in lists.items()},
        )

    if not 0 < test_size < 1 or not 0 <= validation_size < 1 or test_size + validation_size >= 1:
        raise SplitError(
            f"test_size={test_size} and validation_size={validation_size} must be fractions of the "
            "speakers that leave some for training."
        )
    train_rows, test_rows = _group_holdout(speakers, rows, test_size, seed)
    indices = {"train": train_rows, "test": test_rows}
    if validation_size > 0:
        # validation_size is a fraction of all speakers; rescale it to the speakers left after the test split.
        train_rows, validation_rows = _group_holdout(speakers, train_rows, validation_size / (1 - test_size), seed)
        indices = {"train": train_rows, "validation": validation_rows, "test": test_rows}
    return _make_dict(dataset, indices, "speaker", seed=seed, test_size=test_size, validation_size=validation_size)


def speaker_kfold(
    dataset: Dataset,
    n_splits: int = 5,
    *,
    validation_size: float = 0.0,
    seed: int = 42,
) -> list[DatasetDict]:
    """Stratified speaker-grouped k-fold (``StratifiedGroupKFold``): every clip is in exactly one fold's test split,
    every speaker in one fold, label proportions as even as the speaker grouping allows.

    ``validation_size`` > 0 also holds out that fraction of each fold's training speakers for validation.
    """
    speakers = _speakers(dataset)
    n_speakers = len(set(speakers.tolist()))
    if not 2 <= n_splits <= n_speakers:
        # Named as recipes set it too: n_splits is this function's name for a recipe's num_folds.
        raise TooManyFoldsError(
            f"{n_splits} folds asked for (a recipe's num_folds, n_splits), but "
            f"a speaker-grouped k-fold needs at least one speaker per fold and the dataset has "
            f"{n_speakers} speakers: ask for 2 to {n_speakers} folds.",
            folds=n_splits,
            speakers=n_speakers,
            parameter="n_splits",
        )
    labels = np.asarray(column_values(dataset, "label"))
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    result = []
    for fold, (train_rows, test_rows) in enumerate(folds.split(np.zeros(len(labels)), labels, groups=speakers)):
        indices = {"train": train_rows, "test": test_rows}
        if validation_size > 0:
            train_rows, validation_rows = _group_holdout(speakers, train_rows, validation_size, seed)
            indices = {"train": train_rows, "validation": validation_rows, "test": test_rows}
        result.append(_make_dict(dataset, indices, "kfold", seed=seed, fold=fold, n_splits=n_splits))
    return result


def leave_one_speaker_out(dataset: Dataset, *, validation_size: float = 0.0, seed: int = 42) -> list[DatasetDict]:
    """One fold per speaker: that speaker is the test split, the others train (``LeaveOneGroupOut``)."""
    speakers = _speakers(dataset)
    if len(set(speakers.tolist())) < 2:
        raise SplitError("Leave-one-speaker-out needs at least two speakers.")
    result = []
    for train_rows, test_rows in LeaveOneGroupOut().split(np.zeros(len(speakers)), groups=speakers):
        indices = {"train": train_rows, "test": test_rows}
        if validation_size > 0:
            train_rows, validation_rows = _group_holdout(speakers, train_rows, validation_size, seed)
            indices = {"train": train_rows, "validation": validation_rows, "test": test_rows}
        result.append(
            _make_dict(dataset, indices, "loso", seed=seed, fold=len(result), test_speaker=str(speakers[test_rows[0]]))
        )
    return result


def random_split(
    dataset: Dataset,
    *,
    test_size: float = 0.2,
    validation_size: float = 0.1,
    seed: int = 42,
    stratify: bool = True,
) -> DatasetDict:
    """A clip-level random split, stratified by label. It puts the same speakers in train and test, which inflates
    every metric: use it only to measure that inflation next to a speaker-independent split."""
    logger.warning(
        "RANDOM SPLIT: clips are split at random, so the same speakers appear in train and test and the scores will "
        "be inflated by speaker leakage. Use speaker_split/speaker_kfold for results you report."
    )
    if not 0 < test_size < 1 or not 0 <= validation_size < 1 or test_size + validation_size >= 1:
        raise SplitError(
            f"test_size={test_size} and validation_size={validation_size} must be fractions that leave "
            "some clips for training."
        )
    stratify_by = "label" if stratify else None
    rows = dataset.select_columns(["label"]).add_column("row", list(range(len(dataset))))
    first = rows.train_test_split(test_size=test_size, seed=seed, stratify_by_column=stratify_by)
    indices = {"train": np.asarray(first["train"]["row"]), "test": np.asarray(first["test"]["row"])}
    if validation_size > 0:
        second = first["train"].train_test_split(
            test_size=validation_size / (1 - test_size), seed=seed, stratify_by_column=stratify_by
        )
        indices = {
            "train": np.asarray(second["train"]["row"]),
            "validation": np.asarray(second["test"]["row"]),
            "test": indices["test"],
        }
    return _make_dict(dataset, indices, "random", seed=seed, test_size=test_size, validation_size=validation_size)


def split_dataset(
    dataset: Dataset, protocol: str, *, train_only_corpora: Optional[Sequence[str]] = None, **options
) -> list[DatasetDict]:
    """Split by protocol name (``speaker``, ``kfold``, ``loso``, ``random``); always a list of folds (one for
    ``speaker`` and ``random``), as recipes and the CLI use it.

    Args:
        train_only_corpora (`Sequence[str]`, *optional*): corpora (``corpus`` column) whose clips join every fold's
            training split and never a validation or test split; the protocol splits the other corpora. A merged
            run then scores on the same folds as a run on those corpora alone (e.g. RAVDESS k-fold, TESS always
            trained on).
    """
    if train_only_corpora:
        return _with_train_only_corpora(dataset, protocol, train_only_corpora, options)
    if protocol == "speaker":
        return [speaker_split(dataset, **options)]
    if protocol == "kfold":
        return speaker_kfold(dataset, **options)
    if protocol == "loso":
        return leave_one_speaker_out(dataset, **options)
    if protocol == "random":
        return [random_split(dataset, **options)]
    raise SplitError(f"Unknown split protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}.")


def clip_fingerprint(splits: Mapping[str, Dataset]) -> dict[str, dict[str, Any]]:
    """What each split holds (a :func:`rows_fingerprint` record each), for a run folder to record and a later run to
    compare (:func:`clip_changes`)."""
    fingerprint = {}
    for name, split in splits.items():
        label_names = split.features["label"].names
        fingerprint[name] = rows_fingerprint(
            column_values(split, "path"),
            [label_names[label] for label in column_values(split, "label")],
            column_values(split, "speaker_id"),
        )
    return fingerprint


def _clip_names(paths: Sequence[str]) -> list[str]:
    """Each path relative to the folder that holds them all (``Actor_01/03-01-05-01-01-01-01.wav``, or
    ``ravdess/Actor_01/...`` for merged corpora), with its own folder at least (one speaker's clips are
    ``Actor_04/...`` too): the record names no local folder, and a corpus moved elsewhere holds the same clips."""
    absolute = [os.path.abspath(path) for path in paths]
    folders = {os.path.dirname(path) for path in absolute}
    try:
        common = os.path.commonpath(list(folders)) if folders else ""
    except ValueError:  # paths on several drives
        return [PurePath(path).as_posix() for path in absolute]
    if folders == {common}:
        common = os.path.dirname(common)
    return [PurePath(os.path.relpath(path, common)).as_posix() for path in absolute]


def rows_fingerprint(paths: Sequence[Any], labels: Sequence[str], speakers: Sequence[Any]) -> dict[str, Any]:
    """One :func:`clip_fingerprint` record of clips given as their paths, label names and speakers: their number, their
    number per speaker, and under ``files`` each clip, by its path relative to the folder holding them all, as
    ``"DIGEST LABEL SPEAKER"`` (DIGEST: :func:`~.file_digests.file_digests` of its bytes, ``-`` where it is no file).
    The same clips listed in another order, or their corpus moved, give the same record; a clip whose bytes, label or
    speaker changed does not, and :func:`changed_clips` names it."""
    paths = [str(path) for path in paths]
    digests = file_digests(paths)
    rows = sorted(
        (name, f"{digest or '-'} {label} {speaker}")
        for name, digest, label, speaker in zip(_clip_names(paths), digests, labels, speakers)
    )
    files: dict[str, str] = {}
    for name, row in rows:
        # The same file listed twice is two rows: its second listing gets a number.
        key, copy = name, 1
        while key in files:
            copy += 1
            key = f"{name} #{copy}"
        files[key] = row
    counts: dict[str, int] = {}
    for speaker in speakers:
        counts[str(speaker)] = counts.get(str(speaker), 0) + 1
    return {"clips": len(rows), "speakers": dict(sorted(counts.items())), "files": files}


def records_contents(record: Any) -> bool:
    """Whether a :func:`rows_fingerprint` record holds each clip's contents (an earlier ser-hf recorded only a digest
    of the clips' paths, labels and speakers)."""
    return isinstance(record, Mapping) and isinstance(record.get("files"), Mapping)


def changed_clips(before: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, str]:
    """The clips two :func:`rows_fingerprint` records hold differently, by name, each with what changed: ``new``,
    ``gone``, ``other contents``, ``angry -> sad``, ``speaker 01 -> 02``."""

    def parsed(record: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        return {name: tuple((str(row).split(" ", 2) + ["", ""])[:3]) for name, row in record["files"].items()}

    old, new = parsed(before), parsed(now)
    changes = {}
    for name in sorted({*old, *new}):
        then, current = old.get(name), new.get(name)
        if then == current:
            continue
        if then is None or current is None:
            changes[name] = "new" if then is None else "gone"
            continue
        what = []
        if then[0] != current[0]:
            what.append("other contents")
        if then[1] != current[1]:
            what.append(f"{then[1]} -> {current[1]}")
        if then[2] != current[2]:
            what.append(f"speaker {then[2]} -> {current[2]}")
        changes[name] = ", ".join(what)
    return changes


def name_changed_clips(changes: Mapping[str, str], *, since: str = "", limit: int = 5) -> str:
    """``7 clips changed: a.wav (other contents), b.wav (gone), ... (and 2 more)``: the count and up to `limit` of
    the :func:`changed_clips` (`since`: words after "changed", ``since the result file was written``)."""
    named = ", ".join(f"{name} ({what})" for name, what in list(changes.items())[:limit])
    more = f" (and {len(changes) - limit} more)" if len(changes) > limit else ""
    changed = " ".join(filter(None, ["changed", since]))
    return f"{len(changes)} clip{'s' if len(changes) != 1 else ''} {changed}: {named}{more}"


def clip_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """How the splits of two :func:`clip_fingerprint` records differ, one phrase per changed split (``"train: 24
    clips then, 22 now (speaker 01: 12 -> 10), 2 clips changed: Actor_01/a.wav (gone), Actor_01/b.wav (gone)"``);
    empty when they hold the same clips. A split recorded without its clips' contents (an earlier ser-hf) is a
    change: that record cannot vouch for the clips."""
    changes = []
    for name in [*before, *(name for name in now if name not in before)]:
        old, new = before.get(name), now.get(name)
        if old == new:
            continue
        if old is None or new is None:
            then, current = (f"{record.get('clips')} clips" if record else "no split" for record in (old, new))
            changes.append(f"{name}: {then} then, {current} now")
            continue
        if not records_contents(old):
            changes.append(f"{name}: recorded without the clips' contents (an earlier ser-hf)")
            continue
        clips = changed_clips(old, new)
        if not clips:
            continue
        old_speakers, new_speakers = old.get("speakers") or {}, new.get("speakers") or {}
        speakers = [
            f"speaker {speaker}: {old_speakers.get(speaker, 0)} -> {new_speakers.get(speaker, 0)}"
            for speaker in sorted({*old_speakers, *new_speakers})
            if old_speakers.get(speaker, 0) != new_speakers.get(speaker, 0)
        ]
        if old.get("clips") == new.get("clips") and not speakers:
            counts = f"{new.get('clips')} clips then and now"
        else:
            counts = f"{old.get('clips')} clips then, {new.get('clips')} now" + (
                f" ({', '.join(speakers)})" if speakers else ""
            )
        changes.append(f"{name}: {counts}, {name_changed_clips(clips)}")
    return changes


def _with_train_only_corpora(
    dataset: Dataset, protocol: str, corpora: Sequence[str], options: dict
) -> list[DatasetDict]:
    """:func:`split_dataset` of the clips outside ``corpora``, with the clips of ``corpora`` added to every fold's
    training split (recorded as ``train_only_corpora`` and in the training split's speakers)."""
    corpus = np.asarray(column_values(dataset, "corpus"), dtype=object)
    known = sorted(set(corpus.tolist()))
    corpora = [str(name) for name in corpora]
    unknown = [name for name in corpora if name not in known]
    if unknown:
        raise SplitError(
            f"train_only_corpora names {unknown}, which the dataset does not hold (its corpora: {known})."
        )
    trained_only = np.isin(corpus, corpora)
    if trained_only.all():
        raise SplitError(
            f"train_only_corpora takes every corpus of the dataset ({', '.join(known)}): no clip is left to "
            "validate or test on. Leave at least one corpus out of train_only_corpora."
        )
    speakers = _speakers(dataset)
    extra_speakers = set(speakers[trained_only].tolist())
    shared = sorted(extra_speakers & set(speakers[~trained_only].tolist()))
    if shared:
        raise SplitError(
            f"Speaker(s) {shared} have clips in train_only_corpora ({', '.join(corpora)}) and in the corpora split "
            "into folds: they would train and test. Give each corpus its own speaker ids."
        )
    extra = dataset.select(np.flatnonzero(trained_only))
    folds = split_dataset(dataset.select(np.flatnonzero(~trained_only)), protocol, **options)
    result = []
    for splits in folds:
        record = get_ser_info(splits["train"])
        train = concatenate_datasets([splits["train"], extra])
        train.info.description = splits["train"].info.description
        set_ser_info(
            train,
            split_speakers=sorted(set(record.get("split_speakers", [])) | extra_speakers),
            train_only_corpora=corpora,
        )
        for name in splits:
            if name != "train":
                set_ser_info(splits[name], train_only_corpora=corpora)
        result.append(DatasetDict({"train": train, **{name: splits[name] for name in splits if name != "train"}}))
    return result
