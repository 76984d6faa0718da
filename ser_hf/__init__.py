"""ser-hf: speech emotion recognition on the Hugging Face stack.

The names below are imported when first used (PEP 562 ``__getattr__``, :mod:`ser_hf.lazy_exports`): ``import
ser_hf`` loads neither torch, transformers nor datasets, so that ``ser-hf --help`` answers at once.

Registration of the model types: importing :mod:`ser_hf.models` registers every ser-hf model type (config, model,
feature extractor) with ``AutoConfig``, ``AutoModelForAudioClassification`` and ``AutoFeatureExtractor``, so that a
saved ser-hf model loads (and runs in ``pipeline("audio-classification")``) without ``trust_remote_code``. Every
ser-hf entry point that builds or loads a model imports it first: ``ser-hf predict``/``evaluate``/``embed``,
``python -m ser_hf.train``, :mod:`ser_hf.models.loading` and the names of this
package that come from it (``from ser_hf import build_baseline``). ``import ser_hf`` alone does not; before loading
a saved model with transformers alone, write ``import ser_hf.models`` (or pass ``trust_remote_code=True``: the
model's code ships with it).
"""

from typing import TYPE_CHECKING

from .lazy_exports import lazy_exports

__version__ = "0.1.0.dev0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "CORPORA": ".data.corpora",
    "EMOTIONS": ".emotions",
    "CorpusError": ".data.errors",
    "InvalidClipError": ".data.errors",
    "LabelPolicy": ".emotions",
    "LeakageError": ".data.errors",
    "LeakageReport": ".data.audit",
    "audit_leakage": ".data.audit",
    "build_baseline": ".models",
    "build_ssl_classifier": ".models",
    "build_ssl_feature_extractor": ".models",
    "count_parameters": ".models",
    "get_ser_info": ".data.dataset_info",
    "leave_one_speaker_out": ".data.splits",
    "load_corpus": ".data.corpora",
    "merge_corpora": ".data.corpora",
    "merge_lora": ".models",
    "metrics_path": ".evaluation.metrics",
    "prepare_audio": ".data.decode",
    "random_split": ".data.splits",
    "speaker_kfold": ".data.splits",
    "speaker_split": ".data.splits",
    "ssl_lora_config": ".models",
    "summarize": ".data.summary",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "CORPORA",
    "CorpusError",
    "EMOTIONS",
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

if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from .data.audit import LeakageReport, audit_leakage
    from .data.corpora import CORPORA, load_corpus, merge_corpora
    from .data.dataset_info import get_ser_info
    from .data.decode import prepare_audio
    from .data.errors import CorpusError, InvalidClipError, LeakageError
    from .data.splits import leave_one_speaker_out, random_split, speaker_kfold, speaker_split
    from .data.summary import summarize
    from .emotions import EMOTIONS, LabelPolicy
    from .models import (
        build_baseline,
        build_ssl_classifier,
        build_ssl_feature_extractor,
        count_parameters,
        merge_lora,
        ssl_lora_config,
    )
