"""Lazy exports of a package (PEP 562): ``from ser_hf import load_corpus`` imports :mod:`ser_hf.data.corpora` when
the name is first asked for, so that ``import ser_hf`` (and ``ser-hf --help``) loads no torch, transformers or
datasets. transformers' ``_LazyModule`` does the same, but importing it would load transformers itself."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from typing import Any, Callable, Mapping, Sequence


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package named ``package``, whose public names are ``exports``: name ->
    module (relative to the package, ``.data.corpora``) that defines it. A name is imported on first access and then
    kept in the package's namespace; a submodule of the package (``ser_hf.models``) is imported when asked for."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name], package), name)
        elif importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__


def moved_module(old: str, new_modules: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a module whose contents moved to ``new_modules`` (kept so that old imports work
    for a while): each name is looked up in the new modules, in order, with a ``DeprecationWarning`` saying where it
    lives now."""

    def __getattr__(name: str) -> Any:
        if not name.startswith("__"):
            modules = [importlib.import_module(module_name) for module_name in new_modules]
            # The module that exports the name (its __all__) before one that merely imports it.
            owners = [m for m in modules if name in getattr(m, "__all__", ())] or [
                m for m in modules if hasattr(m, name)
            ]
            if owners:
                warnings.warn(
                    f"{old} is deprecated and will be removed: import {name} from {owners[0].__name__}.",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(owners[0], name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        names = set(vars(sys.modules[old]))
        for module_name in new_modules:
            names |= set(getattr(importlib.import_module(module_name), "__all__", ()))
        return sorted(names)

    return __getattr__, __dir__


__all__ = ["lazy_exports", "moved_module"]
