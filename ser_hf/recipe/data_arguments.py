"""The data section of a recipe (:class:`DataArguments`): which corpora to train on, with which labels, and how to
split them, with the checks that stop a recipe whose data settings cannot work before any data is loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..data.constants import CACHE_PRECISIONS, CORPUS_NAMES, PROTOCOLS
from ..data.corpus_settings import check_corpora, corpus_weights, train_only_corpora
from ..data.split_settings import SPEAKER_LISTS
from ..errors import RecipeError
from .fields import CardRow, NumberRule
from .value_forms import as_list, as_mapping
from .values import check_numbers
from .yaml_io import load_yaml


@dataclass
class DataArguments:
    """Which corpora to train on, with which labels, and how to split them."""

    corpus: list[str] = field(
        default_factory=list,
        metadata={"help": f"Corpus name(s): {', '.join(CORPUS_NAMES)}. Several are merged."},
    )
    data_dir: list[str] = field(default_factory=list, metadata={"help": "Folder of each corpus, in order."})
    # Also a list of mappings (YAML, or YAML text on the command line), which argparse cannot type beside a mapping.
    corpus_options: Optional[dict | str] = field(
        default=None,
        metadata={
            "help": "Options of the corpus loaders, e.g. {demographics_csv: PATH}; with several corpora, "
            "one mapping per corpus name: {cremad: {demographics_csv: PATH}}, or a list of mappings, one per corpus "
            "in corpus order (two folder corpora: [{corpus_name: a, ...}, {corpus_name: b, ...}])."
        },
    )
    corpus_weights: Optional[dict | str] = field(
        default=None,
        metadata={
            "help": "Share of each corpus in the clips drawn for training, with several corpora: {ravdess: 1, tess: "
            "1} draws as many clips of each per epoch however large each is (a corpus drawn at half its size shows a "
            "different half each epoch, one drawn at twice its size each clip twice); a corpus not named "
            "weighs 1. Unset: every training clip once per epoch."
        },
    )
    train_only_corpora: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "With several corpora: corpora whose clips join every training split and are never validated "
            "or tested on; the split protocol splits the others, e.g. [tess] scores a RAVDESS+TESS model on the "
            "same RAVDESS folds as a RAVDESS-only one."
        },
    )
    label_map: Optional[dict | str] = field(
        default=None, metadata={"help": "Merge or drop labels, e.g. {calm: neutral} or {calm: null} to drop."}
    )
    labels: Optional[list[str]] = field(
        default=None, metadata={"help": "Label set to keep (others are dropped), e.g. [neutral, happy, sad, angry]."}
    )
    sampling_rate: int = field(
        default=16000,
        metadata={
            "help": "Rate clips are decoded to (mono).",
            "range": NumberRule("a positive number of samples per second", greater_than=0),
        },
    )
    skip_invalid: bool = field(
        default=False, metadata={"help": "Skip (and list) clips that fail to decode instead of stopping."}
    )
    split_protocol: str = field(
        default="speaker",
        metadata={
            "help": "speaker (fixed lists or shares of speakers), kfold (speaker-grouped stratified k-fold), "
            "loso (leave one speaker out), or random (leaks speakers; only to measure the leak).",
            "choices": list(PROTOCOLS),
        },
    )
    train_speakers: Optional[list[str]] = field(default=None, metadata={"help": "Training speakers (speaker)."})
    validation_speakers: Optional[list[str]] = field(
        default=None, metadata={"help": "Validation speakers (speaker protocol)."}
    )
    test_speakers: Optional[list[str]] = field(default=None, metadata={"help": "Test speakers (speaker protocol)."})
    test_size: float = field(default=0.2, metadata={"help": "Share of speakers held out for test (no lists given)."})
    validation_size: float = field(
        default=0.1, metadata={"help": "Share of speakers held out for validation (0 for none)."}
    )
    num_folds: int = field(
        default=5,
        metadata={
            "help": "Folds of the kfold protocol.",
            "range": NumberRule("at least 2 (each fold tests on the speakers the others train on)", at_least=2),
        },
    )
    folds: Optional[list[int]] = field(
        default=None,
        metadata={"help": "Run only these folds (0-based) of a kfold or loso protocol.", "outcome": False},
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the split, kept apart from the training seed."})
    max_duration_seconds: Optional[float] = field(
        default=None,
        metadata={
            "help": "Crop training clips to a random window of this length; evaluation uses whole clips.",
            "range": NumberRule("a positive number of seconds", greater_than=0),
            "card": CardRow(20, "max_duration_seconds (random training crops)"),
        },
    )
    preprocessing_num_workers: Optional[int] = field(
        default=None,
        metadata={"help": "Processes decoding the audio (defaults to one per core, at most 8).", "outcome": False},
    )
    cache_precision: str = field(
        default="float32",
        metadata={
            "help": "How the cached encoder outputs (feature encoder, FAST) are stored: float32, or float16 at half "
            "the disk and memory (see docs/results/LOG.md, Scale); the decoded waveforms are kept as 16-bit PCM, "
            "or as float16 with float16.",
            "choices": list(CACHE_PRECISIONS),
        },
    )

    def __post_init__(self):
        check_numbers(self)
        self.corpus = [str(c) for c in as_list(self.corpus) or []]
        self.data_dir = [str(d) for d in as_list(self.data_dir) or []]
        if isinstance(self.corpus_options, str) and self.corpus_options.lstrip().startswith("["):
            self.corpus_options = load_yaml(self.corpus_options)
        if not isinstance(self.corpus_options, list):
            self.corpus_options = as_mapping(self.corpus_options, "corpus_options") or {}
        self.label_map = as_mapping(self.label_map, "label_map")
        self.corpus_weights = corpus_weights(as_mapping(self.corpus_weights, "corpus_weights"), self.corpus)
        self.labels = as_list(self.labels)
        self.train_only_corpora = train_only_corpora(as_list(self.train_only_corpora), self.corpus)
        for name in SPEAKER_LISTS:
            speakers = as_list(getattr(self, name))
            setattr(self, name, None if speakers is None else [str(s) for s in speakers])
        self.folds = None if self.folds is None else [int(f) for f in as_list(self.folds)]
        check_corpora(self.corpus, self.data_dir, self.corpus_options)
        if self.split_protocol not in PROTOCOLS:
            raise RecipeError(f"split_protocol {self.split_protocol!r} is not one of {', '.join(PROTOCOLS)}.")
        if self.cache_precision not in CACHE_PRECISIONS:
            raise RecipeError(f"cache_precision {self.cache_precision!r} is not one of {', '.join(CACHE_PRECISIONS)}.")


__all__ = ["DataArguments"]
