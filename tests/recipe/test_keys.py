"""The recipe keys known before torch and transformers load (the generated schema): equal to the dataclasses' fields
and kept fresh, and a misspelt key in a recipe answered quickly by both entry points, naming the key, its closest
match and the file."""

from __future__ import annotations

import dataclasses
import difflib
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from transformers import TrainingArguments

from ser_hf.errors import RecipeError
from ser_hf.recipe import generate_schema, keys, schema
from ser_hf.recipe.augmentation_arguments import AugmentationArguments
from ser_hf.recipe.data_arguments import DataArguments
from ser_hf.recipe.model_arguments import ModelArguments
from ser_hf.recipe.parser import recipe_field_names
from ser_hf.recipe.schema import recipe_keys_before_imports, ser_hf_keys, training_arguments_keys
from ser_hf.recipe.training_arguments import SERTrainingArguments
from ser_hf.recipe.values import overrides_before_imports
from ser_hf.recipe.yaml_io import read_recipe_file
from tests.conftest import REPO


def check_recipe_before_imports(args: list[str]) -> None:
    """The early check of ``RECIPE.yaml [--key value ...]``, as :func:`ser_hf.train.main` reads them."""
    path, flags = keys.split_recipe_args(args)
    keys.check_recipe_before_imports(path, read_recipe_file(path) if path else {}, overrides_before_imports(flags))


#: Generous against a busy 2-core machine; the same error takes well under a second on an idle one.
ERROR_SECONDS_BOUND = 4.0


def init_fields(dataclass_type) -> set[str]:
    return {f.name for f in dataclasses.fields(dataclass_type) if f.init}


def test_the_schema_is_what_the_dataclasses_give():
    """The shipped schema is generated from the dataclasses; a field added or changed without regenerating it fails
    here, naming the command that writes it again."""
    shipped = schema.SCHEMA_FILE.read_text(encoding="utf-8")
    generated = generate_schema.schema_text(generate_schema.build_schema())
    stale = "".join(difflib.unified_diff(shipped.splitlines(True), generated.splitlines(True), n=1))
    assert not stale, f"ser_hf/recipe/schema.json is stale: run {schema.REFRESH_COMMAND}\n{stale[:3000]}"


def test_the_schema_keys_equal_the_dataclass_fields():
    inherited = init_fields(TrainingArguments)
    own = set().union(
        *(init_fields(dataclass) for dataclass in (ModelArguments, DataArguments, AugmentationArguments)),
        init_fields(SERTrainingArguments) - inherited,
    )
    # SERTrainingArguments also declares some inherited fields again, with ser-hf's defaults.
    assert ser_hf_keys() - inherited == own and "corpus_adversarial_weight" in own
    assert training_arguments_keys() == inherited - ser_hf_keys()
    assert recipe_keys_before_imports() == recipe_field_names()
    assert schema.schema_is_current()


def test_keys_the_schema_lacks_are_left_to_the_parser_under_another_transformers(tmp_path, monkeypatch):
    """A transformers release that adds a key must not make it look misspelt: the early check lets the parser
    decide."""
    recipe = tmp_path / "new_key.yaml"
    recipe.write_text("model_type: cnn1d\na_key_of_a_later_transformers: 1\n")
    with pytest.raises(RecipeError, match="a_key_of_a_later_transformers"):
        check_recipe_before_imports([str(recipe)])
    monkeypatch.setattr(schema, "schema_is_current", lambda: False)
    monkeypatch.setattr("ser_hf.recipe.keys.schema_is_current", lambda: False)
    check_recipe_before_imports([str(recipe)])


def test_every_shipped_recipe_passes_the_early_check(tmp_path):
    """Its keys and values; its data folders are the user's, given here as a folder that exists."""
    recipes = sorted((REPO / "recipes").glob("*.yaml"))
    assert recipes
    for recipe in recipes:
        data_dirs = yaml.safe_load(recipe.read_text()).get("data_dir")
        folders = [str(tmp_path)] * (len(data_dirs) if isinstance(data_dirs, list) else 1)
        check_recipe_before_imports([str(recipe), "--output_dir", "elsewhere", "--data_dir", *folders])


@pytest.mark.parametrize(
    "lines, arguments, message",
    [
        ("learning_rate: -1.0e-3\n", [], "learning_rate must be a positive, finite number (2.0e-5, say), got -0.001."),
        ("learning_rate: true\n", [], "learning_rate must be a positive, finite number (2.0e-5, say), got True."),
        ("", ["--num_train_epochs", "0"], "num_train_epochs must be positive, got 0: the run would save"),
        ("", ["--per_device_train_batch_size=0"], "per_device_train_batch_size must be at least 1, got 0."),
        ("", ["--data_dir", "no/such/folder"], "data_dir: 'no/such/folder' does not exist."),
        ("model_name_or_path: ./no/such/model\n", [], "model_name_or_path: './no/such/model' does not exist"),
        ("weight_decay: .nan\nmixup_alpha: -1\n", [], "2 values of recipe"),
    ],
)
def test_bad_values_and_paths_are_answered_before_torch_peft_or_datasets_load(tmp_path, lines, arguments, message):
    """Errors that need no model: a number out of range, a data folder or model path that does not exist; the module
    list of the process that raised them is asserted (no torch, transformers' trainer, peft or datasets)."""
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(f"model_type: cnn1d\ndata_dir: {tmp_path}\n" + lines)
    script = textwrap.dedent(
        f"""
        import sys
        from ser_hf.errors import RecipeError
        from ser_hf.train import main
        try:
            main([{str(recipe)!r}, *{arguments!r}])
        except RecipeError as error:
            heavy = sorted(
                name for name in ("torch", "transformers.trainer", "peft", "datasets") if name in sys.modules
            )
            print("heavy:", heavy, "|", error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.startswith("heavy: [] |"), result.stdout + result.stderr
    assert message in result.stdout
    assert str(recipe) in result.stdout


def test_early_check_names_the_key_its_closest_match_and_the_file(tmp_path):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text("model_type: cnn1d\nlerning_rate: 2.0e-3\n")
    with pytest.raises(RecipeError, match=r"'lerning_rate' \(did you mean 'learning_rate'\?\)") as error:
        check_recipe_before_imports([str(recipe)])
    assert str(recipe) in str(error.value)
    # Ensemble recipes hold keys of their own, which they check themselves; flags alone name no recipe.
    ensemble = tmp_path / "ensemble.yaml"
    ensemble.write_text("ensemble_members: [a.yaml, b.yaml]\nmember_weights: [1, 2]\n")
    check_recipe_before_imports([str(ensemble)])
    check_recipe_before_imports(["--help"])


@pytest.mark.parametrize("entry_point", ["ser-hf train", "python -m ser_hf.train"])
def test_a_misspelt_recipe_key_is_answered_before_torch_loads(tmp_path, entry_point):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text((REPO / "recipes" / "demo.yaml").read_text().replace("learning_rate:", "lerning_rate:"))
    ser_hf_script = Path(sys.executable).with_name("ser-hf")  # the console script installed beside this Python
    command = {
        "ser-hf train": [str(ser_hf_script), "train"]
        if ser_hf_script.exists()
        else [sys.executable, "-c", "from ser_hf.cli import main; raise SystemExit(main())", "train"],
        "python -m ser_hf.train": [sys.executable, "-m", "ser_hf.train"],
    }[entry_point]
    start = time.perf_counter()
    result = subprocess.run([*command, str(recipe)], capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - start
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().endswith(
        f"error: Unknown key(s) 'lerning_rate' (did you mean 'learning_rate'?) in recipe {recipe}."
    )
    assert "Traceback" not in result.stderr
    assert seconds < ERROR_SECONDS_BOUND, f"{entry_point} took {seconds:.1f} s to refuse a misspelt key"


def test_torch_and_transformers_are_not_imported_when_the_key_error_is_raised(tmp_path):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text("model_type: cnn1d\nnum_train_epoch: 3\n")
    script = textwrap.dedent(
        f"""
        import sys
        from ser_hf.errors import RecipeError
        from ser_hf.train import main
        try:
            main([{str(recipe)!r}])
        except RecipeError as error:
            heavy = sorted(name for name in ("torch", "transformers", "datasets") if name in sys.modules)
            print("heavy:", heavy, "|", error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.startswith("heavy: [] |"), result.stdout + result.stderr
    assert "'num_train_epoch' (did you mean 'num_train_epochs'?)" in result.stdout


def test_no_module_of_ser_hf_parses_python_source_at_run_time():
    """The recipe's schema is generated data (ser_hf/recipe/schema.json), not a reading of source files with `ast`."""
    readers = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "ser_hf").rglob("*.py"))
        if any(text in path.read_text() for text in ("import ast", "from ast ", "inspect.getsource"))
    ]
    assert readers == []
