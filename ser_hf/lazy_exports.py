"""Lazy exports of a package (PEP 562): ``from ser_hf import load_corpus`` imports :mod:`ser_hf.data.corpora` when
the name is first asked for, so that ``import ser_hf`` (and ``ser-hf --help``) loads no torch, transformers or
datasets. transformers' ``_LazyModule`` does the same, but importing it would load transformers itself."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any, Callable, Mapping


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


__all__ = ["lazy_exports"]
