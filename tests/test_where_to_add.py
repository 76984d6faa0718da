"""docs/ARCHITECTURE.md's "Where to add", followed once for each kind of addition: every entry of a registry has each
place the page lists, so a place left out fails here (the corpus and the metric have theirs beside their code:
``tests/data/test_corpus_registry.py::test_corpus_names_are_derived_from_the_one_module_list``,
``tests/evaluation/test_metrics.py::test_every_metric_has_one_row_with_what_its_readers_need``; the recipe key
``tests/recipe/test_keys.py``)."""

from __future__ import annotations

import ast

import yaml

from tests.conftest import REPO
from tests.conftest_models import BASELINE_KINDS, SSL_FAMILIES

GUIDES = REPO / "docs" / "guides"


def test_every_baseline_has_its_files_a_tiny_config_a_recipe_and_a_guide_line():
    from ser_hf.models.runtime.registry import BASELINES

    models = REPO / "ser_hf" / "models"
    recipes = {yaml.safe_load(path.read_text()).get("model_type") for path in (REPO / "recipes").glob("*.yaml")}
    guide = (GUIDES / "models.md").read_text()
    for name, baseline in BASELINES.items():
        for prefix, cls in (("configuration", baseline.config_class), ("modeling", baseline.model_class)):
            module = cls.__module__.rsplit(".", 1)[1]
            assert module.startswith(prefix) and (models / f"{module}.py").is_file(), (name, cls)
        # A tiny config in tests/conftest_models.py (openSMILE's is its own: its features come from openSMILE).
        assert name in BASELINE_KINDS or name == "opensmile", f"{name}: add a tiny config to tests/conftest_models.py"
        assert name in recipes, f"{name}: ship a recipe in recipes/ (model_type: {name})"
        assert f"`{name}`" in guide, f"{name}: a line in docs/guides/models.md"


def test_every_encoder_family_is_cached_tested_and_documented():
    from ser_hf.inputs.encoder_states import _SSL_CLASSIFIERS
    from ser_hf.models.runtime.registry import ENCODER_FAMILIES

    guide = (GUIDES / "models.md").read_text()
    for name, family in ENCODER_FAMILIES.items():
        # FAST mode's cache takes the family's classifiers (_SSL_CLASSIFIERS derives from the registry).
        assert family.model_class in _SSL_CLASSIFIERS and issubclass(family.pooling_model_class, family.model_class), (
            f"{name}: its pooling model subclasses its mean-pooling classifier {family.model_class.__name__}"
        )
        assert name in SSL_FAMILIES or name == "whisper", f"{name}: a tiny config in tests/conftest_models.py"
        assert name in guide.lower(), f"{name}: docs/guides/models.md"


def test_every_command_has_its_module_its_row_its_test_and_its_guide_section():
    from ser_hf.cli.commands import COMMANDS

    cli = REPO / "ser_hf" / "cli"
    modules = {
        path.stem
        for path in cli.glob("*.py")
        if any(
            isinstance(node, ast.FunctionDef) and node.name.startswith("add_") and node.name.endswith("_parser")
            for node in ast.parse(path.read_text()).body
        )
    }
    assert modules == {command.module for command in COMMANDS.values()}, "one COMMANDS row per command module"
    guides = "\n".join((GUIDES / name).read_text() for name in ("cli.md", "evaluation.md", "deploy.md"))
    for name, command in COMMANDS.items():
        assert (REPO / "tests" / "cli" / f"test_{command.module}.py").is_file(), f"{name}: tests/cli/test_<command>.py"
        assert f"ser-hf {name}" in guides, f"{name}: its section in docs/guides (cli, evaluation or deploy)"


def test_every_export_format_has_its_exporter_runtime_test_and_section():
    from ser_hf.cli.export import EXPORT_FORMATS

    deploy_guide = (GUIDES / "deploy.md").read_text()
    for name in EXPORT_FORMATS:
        assert (REPO / "ser_hf" / "deploy" / f"{name}_export.py").is_file()
        assert (REPO / "ser_hf" / "models" / "runtime" / f"{name}_runtime.py").is_file()
        assert (REPO / "tests" / "deploy" / f"test_{name}.py").is_file()
        assert f"## Export to {name.upper()}" in deploy_guide
