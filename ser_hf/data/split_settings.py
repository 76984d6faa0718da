"""What each split protocol takes from a run's settings: the keyword arguments of
:func:`ser_hf.data.splits.split_dataset` for the protocol a run names (:func:`split_options`), and the settings the
speaker protocol would silently ignore (:func:`check_split_keys`). `settings` is any object with the recipe's data
section's attributes (``split_protocol``, the speaker lists, ``test_size``, ...): this stage never imports the recipe,
which sits above it and calls these on its data section.
"""

from __future__ import annotations

from typing import Any, Collection

from ..errors import RecipeError

#: The settings that name the speakers of each split (the speaker protocol).
SPEAKER_LISTS = ("train_speakers", "validation_speakers", "test_speakers")


def check_split_keys(settings: Any, given: Collection[str]) -> None:
    """Refuse shares of speakers (``test_size``, ``validation_size``) given with speaker lists, which the speaker
    protocol would silently ignore; ``given`` holds the keys the recipe or the command line set."""
    if settings.split_protocol != "speaker":
        return
    lists = [name for name in SPEAKER_LISTS if getattr(settings, name) is not None]
    sizes = [name for name in ("test_size", "validation_size") if name in given]
    if lists and sizes:
        raise RecipeError(
            f"{' and '.join(sizes)} cannot be used with {', '.join(lists)}: the split takes the "
            f"speakers named and would ignore {' and '.join(sizes)}. Remove one or the other."
        )


def split_options(settings: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`ser_hf.data.splits.split_dataset` for the protocol `settings` name."""
    options = _protocol_options(settings)
    if settings.train_only_corpora:
        options["train_only_corpora"] = settings.train_only_corpora
    return options


def _protocol_options(settings: Any) -> dict[str, Any]:
    seed, validation_size = settings.split_seed, settings.validation_size
    if settings.split_protocol == "speaker" and any(getattr(settings, name) is not None for name in SPEAKER_LISTS):
        return {name: getattr(settings, name) for name in SPEAKER_LISTS} | {"seed": seed}
    if settings.split_protocol == "kfold":
        return {"n_splits": settings.num_folds, "validation_size": validation_size, "seed": seed}
    if settings.split_protocol == "loso":
        return {"validation_size": validation_size, "seed": seed}
    return {"test_size": settings.test_size, "validation_size": validation_size, "seed": seed}


__all__ = ["SPEAKER_LISTS", "check_split_keys", "split_options"]
