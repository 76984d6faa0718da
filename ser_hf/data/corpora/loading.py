"""Loading corpora: every supported corpus becomes a ``datasets.Dataset`` on ser-hf's shared emotion vocabulary
(:func:`load_corpus`), and several merge into one (:func:`merge_corpora`).

Columns: ``audio`` (``Audio``, mono, resampled on decode), ``label`` (``ClassLabel``), ``speaker_id``, ``corpus``,
``path``, ``emotion_code`` (the corpus' own code), ``duration``/``original_sampling_rate``/``num_channels`` (from
the file header) and the corpus' own metadata.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence

from datasets import ClassLabel, Dataset, Features, concatenate_datasets

from ...emotions import LabelPolicy, union_labels
from ..constants import VERIFY_LEVELS
from ..dataset_info import column_values, get_ser_info, set_ser_info
from ..errors import CorpusError
from ..ffmpeg import check_audio_column_decoding
from .base import DEFAULT_SAMPLING_RATE, decode_every_clip
from .named import LOADERS, corpus_name, corpus_options_problem

logger = logging.getLogger(__name__)


def load_corpus(
    name: str,
    data_dir: str | os.PathLike,
    *,
    sampling_rate: int = DEFAULT_SAMPLING_RATE,
    label_map: Optional[Mapping[str, Optional[str]]] = None,
    labels: Optional[Sequence[str]] = None,
    skip_invalid: bool = False,
    check_audio: bool = True,
    verify: str = "header",
    **options,
) -> Dataset:
    """Load a corpus as a ``datasets.Dataset``.

    Args:
        name (`str`): a named corpus (:data:`~ser_hf.data.corpora.CORPORA`, from the registry
            :data:`~ser_hf.data.constants.NAMED_CORPORA`; docs/guides/corpora.md shows each one's layout) or
            ``folder`` (folder/CSV layouts), in any spelling :func:`~ser_hf.data.corpora.corpus_name` takes.
        data_dir (`str` or `os.PathLike`): the corpus folder (searched recursively for the audio formats of
            :data:`~ser_hf.data.constants.AUDIO_EXTENSIONS`).
        sampling_rate (`int`, *optional*, defaults to 16000): rate the ``audio`` column decodes to, in mono.
        label_map (`Mapping[str, Optional[str]]`, *optional*): merge (``{"calm": "neutral"}``) or drop
            (``{"calm": None}``) labels; recorded in the dataset's ser-hf record (:func:`get_ser_info`).
        labels (`Sequence[str]`, *optional*): keep only these labels (the ``ClassLabel`` is exactly this set).
        skip_invalid (`bool`, *optional*, defaults to `False`): skip and list bad clips instead of stopping.
        check_audio (`bool`, *optional*, defaults to `True`): read every header so bad files fail at load time.
        verify (`str`, *optional*, defaults to `"header"`): ``"full"`` also decodes every clip whole (slower: the
            whole corpus is read), so that a file cut short or corrupt past its header is named here (or skipped and
            listed, with ``skip_invalid``) rather than failing later, unnamed, in ``dataset[i]["audio"]``.
        options: the corpus' own options, :func:`~ser_hf.data.corpora.named.corpus_options` (its loader's keyword
            arguments: CREMA-D's ``demographics_csv``, the folder corpus' ``speaker_regex`` ...); another is an error
            naming them.

    Example:
        >>> from ser_hf import load_corpus
        >>> ds = load_corpus("ravdess", "data/ravdess_sample", label_map={"calm": "neutral"})
        >>> ds.features["label"].names
        ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised']
    """
    key = corpus_name(name)
    loader = LOADERS[key]
    problem = corpus_options_problem(key, options)
    if problem:
        raise CorpusError(problem)
    if verify not in VERIFY_LEVELS:
        raise CorpusError(f"verify={verify!r} is not one of {', '.join(VERIFY_LEVELS)}.")
    check_audio_column_decoding(decodes_now=verify == "full")
    dataset = loader(
        Path(data_dir).expanduser(),
        sampling_rate=sampling_rate,
        label_map=label_map,
        labels=labels,
        skip_invalid=skip_invalid,
        check_audio=check_audio,
        **options,
    )
    return decode_every_clip(dataset, skip_invalid=skip_invalid) if verify == "full" else dataset


def merge_corpora(datasets: Sequence[Dataset], labels: Optional[Sequence[str]] = None) -> Dataset:
    """Concatenate corpora into one ``Dataset`` on the shared vocabulary.

    Labels are re-indexed onto one ``ClassLabel`` (the union of the corpora's labels in canonical order, or
    ``labels``, in which case clips with other labels are dropped). Speaker ids are prefixed with the corpus name
    so that speaker "01" of two corpora stays two speakers. Metadata columns a corpus lacks are filled with None.
    Corpora that share no label (or one left without any of ``labels``) are a :class:`CorpusError`: a model of both
    would learn to tell the corpora apart, not the emotions. Corpora recorded at different rates or with several
    channels are said so once in the log (every clip is resampled and down-mixed on decoding).
    """
    if not datasets:
        raise ValueError("merge_corpora needs at least one dataset.")
    _check_distinct_corpora(datasets)
    names = (
        LabelPolicy(labels=list(labels)).labels
        if labels is not None
        else union_labels([d.features["label"].names for d in datasets])
    )
    target = ClassLabel(names=names)
    sampling_rates = {d.features["audio"].sampling_rate for d in datasets}
    if len(sampling_rates) > 1:
        raise CorpusError(
            f"Corpora decode to different sampling rates {sorted(sampling_rates)}; load them with the "
            "same sampling_rate."
        )
    _check_shared_labels(datasets, names)
    _log_conversions(datasets, next(iter(sampling_rates)))
    aligned = []
    for dataset in datasets:
        source = dataset.features["label"]
        dataset = dataset.filter(lambda label: source.int2str(label) in names, input_columns="label")
        dataset = dataset.map(
            lambda batch: {
                "label": [target.str2int(source.int2str(i)) for i in batch["label"]],
                "speaker_id": [
                    f"{corpus}:{s}" if ":" not in s else s for corpus, s in zip(batch["corpus"], batch["speaker_id"])
                ],
            },
            batched=True,
            features=Features({**dataset.features, "label": target}),
        )
        aligned.append(dataset)
    columns = {}
    for dataset in aligned:
        for column, feature in dataset.features.items():
            columns.setdefault(column, feature)
    aligned = [_with_columns(d, columns) for d in aligned]
    merged = concatenate_datasets(aligned)
    records = [get_ser_info(d) for d in datasets]
    merged.info.description = ""
    # The audit compares sentences only through a column every corpus fills.
    text_columns = {r.get("text_column") for r in records}
    return set_ser_info(
        merged,
        corpora=[c for r in records for c in r.get("corpora", [])],
        label_policy={"labels": names, "per_corpus": [r.get("label_policy") for r in records]},
        skipped=[s for r in records for s in r.get("skipped", [])],
        sampling_rate=sampling_rates.pop(),
        text_column=text_columns.pop() if len(text_columns) == 1 else None,
        dropped_by_label_policy=[r.get("dropped_by_label_policy", {}) for r in records],
        dropped_by_merge=sum(len(d) for d in datasets) - len(merged),
    )


def _corpus_names(dataset: Dataset) -> str:
    return ", ".join(get_ser_info(dataset).get("corpora") or sorted(set(column_values(dataset, "corpus"))))


def _check_distinct_corpora(datasets: Sequence[Dataset]) -> None:
    """Refuse two corpora of one name that hold a speaker id each: speakers are told apart by the corpus name they are
    prefixed with, so speaker "01" of both would be one speaker, and a speaker-independent split would not be one.
    (Parts of one corpus with speakers of their own, such as two halves of RAVDESS by actor, merge as they are.)"""
    speakers: dict[str, set[str]] = {}
    twice = set()
    for dataset in datasets:
        by_corpus: dict[str, set[str]] = {}
        for corpus, speaker in zip(column_values(dataset, "corpus"), column_values(dataset, "speaker_id")):
            by_corpus.setdefault(corpus, set()).add(speaker)
        for corpus, ids in by_corpus.items():
            if ids & speakers.get(corpus, set()):
                twice.add(corpus)
            speakers.setdefault(corpus, set()).update(ids)
    if twice:
        raise CorpusError(
            f"Two corpora are both called {', '.join(map(repr, sorted(twice)))} (a folder corpus is named by its "
            "corpus_name, else its folder's name) and share speaker ids: their speakers would merge. Give each folder "
            "corpus a corpus_name of its own (in a recipe, corpus_options as a list, one mapping per corpus: "
            "[{corpus_name: a}, {corpus_name: b}]; on the command line, --option N:corpus_name=... with N the "
            "corpus' position, 1 for the first)."
        )


def _check_shared_labels(datasets: Sequence[Dataset], names: Sequence[str]) -> None:
    """Refuse corpora that share no label, or one that holds none of the labels kept (``names``)."""
    kept = [(_corpus_names(d), [n for n in d.features["label"].names if n in names]) for d in datasets]
    for corpus, labels in kept:
        if not labels:
            raise CorpusError(
                f"Corpus {corpus} has none of the labels kept ({', '.join(names)}): nothing of it is left."
            )
    for index, (corpus, labels) in enumerate(kept):
        for other, other_labels in kept[index + 1 :]:
            if not set(labels) & set(other_labels):
                raise CorpusError(
                    f"Corpora {corpus} ({', '.join(labels)}) and {other} ({', '.join(other_labels)}) share no "
                    "emotion: a model of both would learn to tell the corpora apart, not the emotions. Map their "
                    "labels onto shared ones (label_map) or merge corpora that share some."
                )


def _log_conversions(datasets: Sequence[Dataset], sampling_rate: int) -> None:
    """Say once that the corpora were recorded at different rates, or with several channels: every clip is
    resampled to ``sampling_rate`` and down-mixed to mono on decoding."""
    rates, multichannel = {}, {}
    for dataset in datasets:
        corpus = _corpus_names(dataset)
        if "original_sampling_rate" in dataset.column_names:
            rates[corpus] = sorted({r for r in column_values(dataset, "original_sampling_rate") if r})
        if "num_channels" in dataset.column_names:
            multichannel[corpus] = sum(1 for c in column_values(dataset, "num_channels") if c and c > 1)
    if len({rate for found in rates.values() for rate in found}) > 1:
        logger.info(
            "The corpora were recorded at different rates (%s): every clip is resampled to %d Hz on decoding.",
            "; ".join(f"{corpus}: {', '.join(map(str, found))} Hz" for corpus, found in rates.items()),
            sampling_rate,
        )
    if any(multichannel.values()):
        logger.info(
            "Clips with several channels (%s) are down-mixed to mono on decoding.",
            "; ".join(f"{corpus}: {count}" for corpus, count in multichannel.items() if count),
        )


def _with_columns(dataset: Dataset, columns: Mapping) -> Dataset:
    """Add the missing metadata columns (as None) and put columns in one order, so corpora concatenate."""
    for column, feature in columns.items():
        if column not in dataset.column_names:
            dataset = dataset.add_column(column, [None] * len(dataset), feature=feature)
    return dataset.select_columns(list(columns))


__all__ = ["load_corpus", "merge_corpora"]
