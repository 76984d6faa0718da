"""One training recipe: the four argument sections (model, data, augmentation, training) as one object, parsed from
``RECIPE.yaml [--key value ...]`` (:meth:`Recipe.parse`) and saved in a run folder in one resolved form
(:meth:`Recipe.to_run_config`), from which both of the run's copies are derived: ``run_config.json`` (every resolved
value: what a resumed run is compared against, what the card, ``compare`` and ``evaluate`` read) and ``recipe.yaml``
(the keys the recipe and command line set, recorded when they were read, with those values: ``python -m ser_hf.train
recipe.yaml`` runs it again).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from ..inputs.augment import check_model_augmentation
from ..run_record import RunConfig
from .augmentation_arguments import AugmentationArguments
from .data_arguments import DataArguments
from .model_arguments import ModelArguments
from .training_arguments import SERTrainingArguments
from .yaml_io import write_recipe

#: The sections of ``run_config.json`` and their titles in ``recipe.yaml``.
SECTION_TITLES = {"model": "Model", "data": "Data", "augmentation": "Augmentation", "training": "Training"}


@dataclass
class Recipe:
    """A training recipe: its four sections, and which keys its file and command line gave.

    Args:
        model (`ModelArguments`), data (`DataArguments`), augmentation (`AugmentationArguments`),
        training (`SERTrainingArguments`): the sections.
        given (`frozenset[str]`, *optional*): the keys the recipe file and the command line set, recorded when they
            were read; ``recipe.yaml`` then lists only those (every key when not given).
        path (`str`, *optional*): the recipe file it was read from, if any.

    Example:

    ```python
    >>> recipe = Recipe.parse(["recipes/demo.yaml", "--num_train_epochs", "2"])
    >>> recipe.model.model_type, recipe.training.num_train_epochs
    ('opensmile', 2.0)
    >>> model_args, data_args, augmentation_args, training_args = recipe  # the four sections, in order
    ```
    """

    model: ModelArguments
    data: DataArguments
    augmentation: AugmentationArguments
    training: SERTrainingArguments
    given: Optional[frozenset[str]] = None
    path: Optional[str] = None

    def __post_init__(self):
        if self.given is not None:
            self.given = frozenset(self.given)

    @classmethod
    def parse(cls, args: Optional[Sequence[str]] = None, file_values: Optional[Mapping[str, Any]] = None) -> Recipe:
        """Parse ``[RECIPE.yaml] [--key value ...]`` (flags override the file's values, `file_values` where the caller
        read the file already; an unknown key is a :class:`~ser_hf.errors.RecipeError` naming it and the file), and
        check the augmentation and the training options against the model (and corpora)."""
        import sys

        from .parser import read_recipe_args

        values, path = read_recipe_args(sys.argv[1:] if args is None else args, file_values)
        return cls.from_values(values, given=values.keys(), path=path)

    @classmethod
    def from_values(
        cls, values: Mapping[str, Any], given: Optional[Iterable[str]] = None, path: Optional[str] = None
    ) -> Recipe:
        """The recipe of `values` (a mapping of recipe keys to typed values, as a recipe file holds them), built and
        checked as :meth:`parse` builds a file's: the library's typed entry, with no file written or read. `given`
        names the keys ``recipe.yaml`` lists (every key when not given); `path` names the file in errors."""
        from .parser import build_sections

        recipe = cls(*build_sections(values, path), given=None if given is None else frozenset(given), path=path)
        check_model_augmentation(recipe.augmentation, recipe.model)
        recipe.training.check_model(recipe.model, recipe.data)
        return recipe

    def __iter__(self) -> Iterator[Any]:
        """The four sections in order (``model_args, data_args, augmentation_args, training_args = recipe``)."""
        return iter((self.model, self.data, self.augmentation, self.training))

    def replace(self, **changes) -> Recipe:
        """A copy with sections replaced (``recipe.replace(training=...)``), or, for a key of a section, that section
        changed: ``recipe.replace(output_dir="runs/a")``."""
        own = (*SECTION_TITLES, "given", "path")
        sections = {name: changes.pop(name) for name in list(changes) if name in own}
        for key, value in changes.items():
            owner = next(
                (name for name in SECTION_TITLES if key in {f.name for f in dataclasses.fields(getattr(self, name))}),
                None,
            )
            if owner is None:
                raise TypeError(f"{key!r} is not a key of any recipe section.")
            current = sections.get(owner, getattr(self, owner))
            sections[owner] = dataclasses.replace(current, **{key: value})
        return dataclasses.replace(self, **sections)

    # --- the saved form ---

    def to_run_config(self) -> RunConfig:
        """The resolved recipe, section by section (the token masked by ``TrainingArguments.to_dict``): what
        ``run_config.json`` holds and ``recipe.yaml`` is written from."""
        return RunConfig(
            model=dataclasses.asdict(self.model),
            data=dataclasses.asdict(self.data),
            augmentation=dataclasses.asdict(self.augmentation),
            training=self.training.to_dict(),
        )

    def write_yaml(self, output_dir: str | os.PathLike) -> Path:
        """Write ``recipe.yaml`` into ``output_dir`` from :meth:`to_run_config`: the keys the recipe and command line
        set, with the values the run used (token keys never); returns its path."""
        config = self.to_run_config()
        sections = {title: getattr(config, name) for name, title in SECTION_TITLES.items()}
        return write_recipe(output_dir, sections, self.given, self.path)


__all__ = ["Recipe", "SECTION_TITLES"]
