"""ser-hf: speech emotion recognition on the Hugging Face stack.

The names below are imported when first used (PEP 562 ``__getattr__``, :mod:`ser_hf.lazy_exports`): ``import
ser_hf`` loads neither torch, transformers nor datasets, so that ``ser-hf --help`` answers at once.

:func:`register_auto_classes` registers every ser-hf model type (config, model, feature extractor) with
``AutoConfig``, ``AutoModelForAudioClassification`` and ``AutoFeatureExtractor``, so that a saved ser-hf model loads
(and runs in ``pipeline("audio-classification")``) without ``trust_remote_code``. ser-hf's loaders call it, and so
does importing :mod:`ser_hf.models`. ``import ser_hf`` alone is enough for a user's ``pipeline(...)``, and still
loads no torch: registering needs the config classes, and a transformers config class costs the import of torch, so
``import ser_hf`` calls :func:`register_auto_classes` at once only when transformers' Auto classes are already
loaded, and otherwise right after the import that loads them (:class:`_RegisterAfterAutoClasses`, the one import hook,
which then removes itself). transformers offers no other way: its Auto classes take class objects, and its lazy
tables by module name are for its own models only. Without ser-hf, ``trust_remote_code=True`` runs the model's own
code, saved with it.
"""

import logging
import sys

from .lazy_exports import lazy_exports

__version__ = "0.1.0.dev0"

#: Public name -> the module that defines it: the package's one list of its names, from which `__all__` and the
#: lazy imports derive.
_EXPORTS = {
    "CORPORA": ".data.corpora.named",
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
    "load_corpus": ".data.corpora.loading",
    "merge_corpora": ".data.corpora.loading",
    "merge_lora": ".models",
    "metrics_path": ".evaluation.metrics",
    "prepare_audio": ".data.decode",
    "random_split": ".data.splits",
    "register_auto_classes": ".models.runtime.registry",
    "speaker_kfold": ".data.splits",
    "speaker_split": ".data.splits",
    "ssl_lora_config": ".models",
    "summarize": ".data.summary",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)


# --- Registration with transformers' Auto classes, after the import that loads them --------------------------------

logger = logging.getLogger(__name__)

# Packages whose modules import transformers and which registering imports: while a module of one is half-imported,
# registering could ask it for a name it has not defined yet.
_REGISTRATION_BLOCKERS = frozenset({"transformers", "peft", "ser_hf"})


def _register_if_auto_classes_loaded(importing: str) -> bool:
    """Call :func:`register_auto_classes` if transformers' Auto classes are loaded and no module registering needs is
    half-imported (``importing``, whose code has just run, aside). `True` when nothing is left to do."""
    if "ser_hf.models" in sys.modules:  # imported, or being imported: it registers at its end
        return True
    if "transformers.models.auto.configuration_auto" not in sys.modules:
        return False
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)  # importlib marks a module whose code is running `_initializing`
        half_imported = getattr(spec, "_initializing", False)
        if half_imported and name != importing and name.partition(".")[0] in _REGISTRATION_BLOCKERS:
            return False
    try:
        from .models.runtime.registry import register_auto_classes

        register_auto_classes()
    except Exception as error:  # the user's own import of transformers must not fail because of ser-hf
        logger.warning(
            "ser-hf's model types are not registered with transformers' Auto classes (%s: %s); call "
            "ser_hf.register_auto_classes() to see why, or pass trust_remote_code=True.",
            type(error).__name__,
            error,
        )
    return True


class _RegisterAfterAutoClasses:
    """The import hook of ``import ser_hf`` (a `sys.meta_path` finder): it finds no module itself, but gives each
    module of transformers, peft and ser-hf (:data:`_REGISTRATION_BLOCKERS`) a loader that, once the module has run,
    registers ser-hf's model types if it can (:func:`_register_if_auto_classes_loaded`): at the end of the outermost
    such import that loads the Auto classes. Then it leaves `sys.meta_path`."""

    def find_spec(self, fullname, path, target=None):
        if fullname.partition(".")[0] not in _REGISTRATION_BLOCKERS:
            return None
        for finder in sys.meta_path:
            spec = None if finder is self else getattr(finder, "find_spec", lambda *args: None)(fullname, path, target)
            if spec is not None:
                if getattr(spec.loader, "exec_module", None) is not None:
                    spec.loader = _RegisteringLoader(spec.loader, self)
                return spec
        return None

    def after(self, fullname: str) -> None:
        if _register_if_auto_classes_loaded(importing=fullname) and self in sys.meta_path:
            sys.meta_path.remove(self)


class _RegisteringLoader:
    """Runs a module with its own loader (which it is given back as ``__loader__``), then the hook's check."""

    def __init__(self, loader, hook: _RegisterAfterAutoClasses):
        self.loader, self.hook = loader, hook

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.hook.after(module.__name__)


if not _register_if_auto_classes_loaded(importing=__name__):
    sys.meta_path.insert(0, _RegisterAfterAutoClasses())
