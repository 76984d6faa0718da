"""The optional parts of ser-hf (pyproject.toml's extras) and how to install one, in the words every hint uses."""

from __future__ import annotations


def install_hint(extra: str) -> str:
    """The command that installs the extra ``extra`` (``"onnx"``, ``"timeline"``, ``"app"``, ``"experiments"``): from a
    package index, and from a clone of the repository, where ``pip install -e`` is what works until a release is
    published."""
    return f"pip install 'ser-hf[{extra}]' (from a clone of ser-hf: pip install -e '.[{extra}]')"


class MissingExtraError(ImportError):
    """An optional part of ser-hf that a call needs is not installed; the message says how to install it
    (:func:`install_hint`). The commands report it as an error of set-up: one line, status 2."""


__all__ = ["MissingExtraError", "install_hint"]
