"""The recipe's dataclasses as their source defines them, read without importing their modules (which import torch and
transformers): the checks that answer a recipe before those imports read their field names (:mod:`.keys`), facts
(:mod:`.fields`) and help (:mod:`.usage`) here.
"""

from __future__ import annotations

import ast
import functools
import os

#: The recipe's dataclasses, in section order, each with the module of :mod:`ser_hf.recipe` that defines it;
#: ``SERTrainingArguments`` also takes transformers' ``TrainingArguments`` fields
#: (:func:`~ser_hf.recipe.keys.training_arguments_keys`).
RECIPE_CLASS_MODULES = {
    "ModelArguments": "model_arguments",
    "DataArguments": "data_arguments",
    "AugmentationArguments": "augmentation_arguments",
    "SERTrainingArguments": "training_arguments",
}


def class_source(name: str) -> str:
    """The file that defines the recipe dataclass `name`."""
    return os.path.join(os.path.dirname(__file__), f"{RECIPE_CLASS_MODULES[name]}.py")


@functools.lru_cache(maxsize=1)
def recipe_class_nodes() -> dict[str, ast.ClassDef]:
    """``{class name: its class statement}`` of every recipe dataclass, in section order, parsed from its module's
    source. An `OSError` when a source is missing (an installation of compiled modules only); a `RuntimeError` when a
    module does not define its class."""
    nodes = {}
    for name in RECIPE_CLASS_MODULES:
        path = class_source(name)
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=path)
        node = next((node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name), None)
        if node is None:
            raise RuntimeError(f"ser_hf/recipe/{RECIPE_CLASS_MODULES[name]}.py defines no {name}.")
        nodes[name] = node
    return nodes


__all__ = ["RECIPE_CLASS_MODULES", "class_source", "recipe_class_nodes"]
