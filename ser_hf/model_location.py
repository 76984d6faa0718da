"""Whether a model name is a local folder that is not there, answered from the name and the file system alone: no
torch, transformers or datasets is imported, so that ``ser-hf predict outputs/dmeo clip.wav`` says "No such folder"
at once instead of after seconds of imports. The Hub side of finding a model (the cache, one lookup without retries)
is :func:`ser_hf.models.runtime.location.check_model_location`, which starts with :func:`check_local_model_path`.

A local copy of a Hub checkpoint stands in for it here too (:func:`with_model_path`: ``--model_path ID=FOLDER`` of
the experiment commands), so that the experiments and the commands share one rule."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union


class ModelNotFoundError(FileNotFoundError):
    """A model name that is neither an existing folder nor a Hub repository ser-hf could find."""


def looks_local(name: str) -> Optional[str]:
    """Why ``name`` (that is not an existing file or folder) is taken for a local path, or `None` for a Hub id:
    written as a path, not a valid repository id (``namespace/name``), or inside a folder that exists here."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if (
        name.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or "\\" in name
        or name.endswith("/")
        or os.path.isabs(name)
    ):
        return "it is written as a path"
    try:
        validate_repo_id(name)
    except HFValidationError:
        return "it is not a valid Hub repository id (namespace/name) either"
    parent = Path(name).parent
    if parent != Path(".") and parent.is_dir():
        return f"{parent}/ is a folder here, so it is read as a path, not as a Hub repository id"
    return None


def closest_folder(path: Path) -> str:
    """`` Did you mean FOLDER?`` naming the sibling folder whose name is closest to ``path``'s, or nothing."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return ""
    siblings = [child.name for child in parent.iterdir() if child.is_dir()]
    matches = difflib.get_close_matches(path.name, siblings, n=1)
    return f" Did you mean {parent / matches[0]}?" if matches else ""


def check_local_model_path(name_or_path: Union[str, os.PathLike]) -> None:
    """Raise :class:`ModelNotFoundError` when ``name_or_path`` is a file, or names no existing folder while it is
    taken for a local path (see :func:`looks_local`); an existing folder and a Hub repository id pass."""
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise ModelNotFoundError(
            f"{name} is a file, not a model folder: pass the folder that holds the model's config.json and weights."
        )
    reason = looks_local(name)
    if reason is not None:
        raise ModelNotFoundError(f"No such folder: {name} ({reason}).{closest_folder(path)}")


def with_model_path(values: Mapping[str, Any], paths: Optional[Mapping[str, str]]) -> dict[str, Any]:
    """A copy of recipe ``values`` loading the local folder `paths` gives for its ``model_name_or_path``, if any."""
    result = dict(values)
    if result.get("model_name_or_path") in (paths or {}):
        result["model_name_or_path"] = paths[result["model_name_or_path"]]
    return result


__all__ = ["ModelNotFoundError", "check_local_model_path", "closest_folder", "looks_local", "with_model_path"]
