"""Where a model comes from, decided before anything is downloaded: a local folder, or a Hub repository.

transformers takes any name that is not an existing folder for a Hub repository id, so a typo in a local path
(``outputs/dmeo``) goes to the Hub, where an unreachable Hub means a minute of retries and then advice about pushing
a feature extractor. :func:`check_model_location` answers such a name at once: a name that is written as a path, is
not a valid repository id, lies in a folder that exists here, or is asked for with ``HF_HUB_OFFLINE`` set (and is not
in the Hub cache) is a missing folder; any other name is looked up on the Hub once, without retries, so that a missing
repository or an unreachable Hub is one line too.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import constants, try_to_load_from_cache
from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError
from huggingface_hub.utils import validate_repo_id
from transformers import CONFIG_NAME

from ..hub.client import transport_errors


class ModelNotFoundError(FileNotFoundError):
    """A model name that is neither an existing folder nor a Hub repository ser-hf could find."""


class HubUnreachableError(ConnectionError):
    """A model that is not in a local folder nor in the Hub cache, while the Hub does not answer."""


def _looks_local(name: str) -> Optional[str]:
    """Why ``name`` (that is not an existing file or folder) is taken for a local path, or `None` for a Hub id."""
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


def _closest_folder(path: Path) -> str:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return ""
    siblings = [child.name for child in parent.iterdir() if child.is_dir()]
    matches = difflib.get_close_matches(path.name, siblings, n=1)
    return f" Did you mean {parent / matches[0]}?" if matches else ""


def _is_cached(repo_id: str, revision: Optional[str]) -> bool:
    return isinstance(try_to_load_from_cache(repo_id, CONFIG_NAME, revision=revision), str)


def check_model_location(
    name_or_path: Union[str, os.PathLike], *, revision: Optional[str] = None, token: Union[str, bool, None] = None
) -> None:
    """Raise at once for a model that cannot be loaded from where its name points.

    Raises:
        `ModelNotFoundError`: ``name_or_path`` is a file, or no folder of that name exists and it is not taken for a
            Hub repository (see the module docstring), or the Hub has no such repository.
        `HubUnreachableError`: it is a Hub repository id, not in the Hub cache, and the Hub did not answer.
    """
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise ModelNotFoundError(
            f"{name} is a file, not a model folder: pass the folder that holds the model's config.json and weights."
        )
    reason = _looks_local(name)
    if reason is not None:
        raise ModelNotFoundError(f"No such folder: {name} ({reason}).{_closest_folder(path)}")
    if _is_cached(name, revision):
        return  # transformers reads it from the cache (and checks for a newer version itself when online)
    if constants.is_offline_mode():
        raise ModelNotFoundError(
            f"No such folder: {name}, and {name} is not in the Hub cache "
            f"({constants.HF_HUB_CACHE}); HF_HUB_OFFLINE is set, so the Hub was not asked."
        )
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        # One request, no retries: a missing repository or an unreachable Hub is answered here.
        api.model_info(name, revision=revision, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except RepositoryNotFoundError:
        raise ModelNotFoundError(
            f"No such folder: {name}, and no Hub repository {name} (or it is private and your "
            "token cannot read it: `hf auth login`)."
        ) from None
    except transport_errors() as error:
        raise HubUnreachableError(
            f"No such folder: {name}, and the Hub at {api.endpoint} could not be reached to "
            f"download it ({type(error).__name__}: {error}). Check the connection, or pass the "
            "folder of a model saved locally."
        ) from None


__all__ = ["HubUnreachableError", "ModelNotFoundError", "check_model_location"]
