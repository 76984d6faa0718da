"""ser-hf: speech emotion recognition on the Hugging Face stack.

The names below are imported when first used (PEP 562 ``__getattr__``, :mod:`ser_hf.lazy_exports`): ``import
ser_hf`` loads neither torch, transformers nor datasets, so that ``ser-hf --help`` answers at once.

Registration of the model types: importing :mod:`ser_hf.models` registers every ser-hf model type (config, model,
feature extractor) with ``AutoConfig``, ``AutoModelForAudioClassification`` and ``AutoFeatureExtractor``, so that a
saved ser-hf model loads (and runs in ``pipeline("audio-classification")``) without ``trust_remote_code``.
``import ser_hf`` is enough for that, and still loads no torch: it imports :mod:`ser_hf.models` at once only when
transformers is already loaded, and otherwise as soon as an import of transformers has loaded its Auto classes
(``from transformers import pipeline``, ``AutoModelForAudioClassification`` ...), through a post-import hook
(:class:`_AutoClassRegistration`). Without ser-hf, ``trust_remote_code=True`` runs the model's own code, saved with it.
"""

import importlib
import logging
import sys

from .lazy_exports import lazy_exports

__version__ = "0.1.0.dev0"

#: Public name -> the module that defines it: the package's one list of its names, from which `__all__` and the
#: lazy imports derive.
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

__all__ = sorted(_EXPORTS)


# --- Registration with transformers' Auto classes -----------------------------------------------------------------

logger = logging.getLogger(__name__)

# Packages that ser_hf.models imports and that import transformers: while a module of one is half-imported, importing
# ser_hf.models could ask it for a name it has not defined yet.
_REGISTRATION_BLOCKERS = frozenset({"transformers", "peft", "ser_hf"})


def _register_auto_classes(importing: str) -> bool:
    """Import :mod:`ser_hf.models` (which registers the model types) once transformers' Auto classes are loaded and no
    module it needs is half-imported (``importing``, whose code has just run, aside). `True` when nothing is left to
    do."""
    if "ser_hf.models" in sys.modules:  # imported, or being imported: it registers at its end
        return True
    if "transformers.models.auto.configuration_auto" not in sys.modules:
        return False
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        if (
            name != importing
            and name.partition(".")[0] in _REGISTRATION_BLOCKERS
            and getattr(spec, "_initializing", 0)
        ):
            return False
    try:
        importlib.import_module(".models", __name__)
    except Exception as error:  # the user's own import of transformers must not fail because of ser-hf
        logger.warning(
            "ser-hf's model types are not registered with transformers' Auto classes (%s: %s); import "
            "ser_hf.models to see why, or pass trust_remote_code=True.",
            type(error).__name__,
            error,
        )
    return True


class _AutoClassRegistration:
    """A post-import hook (a `sys.meta_path` finder that only wraps the loaders of transformers' modules): after each
    module of transformers has run, registers ser-hf's model types if it can (:func:`_register_auto_classes`), then
    leaves `sys.meta_path`."""

    def find_spec(self, fullname, path, target=None):
        if fullname.partition(".")[0] != "transformers":
            return None
        for finder in sys.meta_path:
            spec = None if finder is self else getattr(finder, "find_spec", lambda *args: None)(fullname, path, target)
            if spec is not None:
                if getattr(spec.loader, "exec_module", None) is not None:
                    spec.loader = _RegisteringLoader(spec.loader, self)
                return spec
        return None

    def after(self, fullname: str) -> None:
        if _register_auto_classes(importing=fullname) and self in sys.meta_path:
            sys.meta_path.remove(self)


class _RegisteringLoader:
    """Runs a module with its own loader (which it is given back as ``__loader__``), then the hook's check."""

    def __init__(self, loader, hook: _AutoClassRegistration):
        self.loader, self.hook = loader, hook

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.hook.after(module.__name__)


if not _register_auto_classes(importing=__name__):
    sys.meta_path.insert(0, _AutoClassRegistration())
