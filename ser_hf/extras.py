"""The optional parts of ser-hf (pyproject.toml's extras) and how to install one, in the words every hint uses."""

from __future__ import annotations


def install_hint(extra: str) -> str:
    """The command that installs the extra ``extra`` (``"onnx"``, ``"timeline"``, ``"app"``, ``"experiments"``): from a
    package index, and from a clone of the repository, where ``pip install -e`` is what works until a release is
    published."""
    return f"pip install 'ser-hf[{extra}]' (from a clone of ser-hf: pip install -e '.[{extra}]')"


__all__ = ["install_hint"]
