"""ser-hf: speech emotion recognition on the Hugging Face stack."""

__version__ = "0.1.0.dev0"

from .data.audit import LeakageError, LeakageReport, audit_leakage
from .data.corpora import CORPORA, CorpusError, InvalidClipError, load_corpus, merge_corpora
from .data.dataset_info import get_ser_info
from .data.decode import prepare_audio
from .data.splits import leave_one_speaker_out, random_split, speaker_kfold, speaker_split
from .data.summary import summarize
from .emotions import EMOTIONS, LabelPolicy
from .evaluation.metrics import metrics_path

# Importing the models registers every ser-hf model type with the Auto classes, so saved models load (and run in
# pipeline("audio-classification")) without trust_remote_code once ser_hf is imported.
from .models import (
    build_baseline,
    build_ssl_classifier,
    build_ssl_feature_extractor,
    count_parameters,
    merge_lora,
    ssl_lora_config,
)

__all__ = [
    "CORPORA",
    "EMOTIONS",
    "CorpusError",
    "InvalidClipError",
    "LabelPolicy",
    "LeakageError",
    "LeakageReport",
    "audit_leakage",
    "build_baseline",
    "build_ssl_classifier",
    "build_ssl_feature_extractor",
    "count_parameters",
    "get_ser_info",
    "leave_one_speaker_out",
    "load_corpus",
    "merge_corpora",
    "merge_lora",
    "metrics_path",
    "prepare_audio",
    "random_split",
    "speaker_kfold",
    "speaker_split",
    "ssl_lora_config",
    "summarize",
]
