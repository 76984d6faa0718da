"""ser-hf: speech emotion recognition on the Hugging Face stack."""

__version__ = "0.1.0.dev0"

from .audit import LeakageError, LeakageReport, audit_leakage
from .corpora import CORPORA, CorpusError, InvalidClipError, load_corpus, merge_corpora
from .dataset_info import get_ser_info
from .emotions import EMOTIONS, LabelPolicy
from .prepare import prepare_audio
from .splits import leave_one_speaker_out, random_split, speaker_kfold, speaker_split
from .summary import summarize

__all__ = [
    "CORPORA", "EMOTIONS", "CorpusError", "InvalidClipError", "LabelPolicy", "LeakageError", "LeakageReport",
    "audit_leakage", "get_ser_info", "leave_one_speaker_out", "load_corpus", "merge_corpora", "prepare_audio",
    "random_split", "speaker_kfold", "speaker_split", "summarize",
]
