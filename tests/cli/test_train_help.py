"""``ser-hf train --help`` (ser-hf's own keys by section, read from the generated schema: torch and transformers are
not imported), ``--help-all`` (transformers' keys too), and a misspelt flag: an error naming the closest key, never a
prefix match."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from ser_hf.cli import main as cli_main
from ser_hf.errors import RecipeError
from ser_hf.recipe.schema import load_schema, ser_hf_keys, training_arguments_keys
from tests.conftest import RAVDESS_SAMPLE, REPO
from tests.recipe.test_parser import write_recipe

HEAVY_LIBRARIES = ("torch", "transformers", "datasets", "peft")

#: Runs a command in a fresh interpreter and prints, last, the heavy libraries it imported.
IMPORTS_AFTER = """
import json, sys
from ser_hf.cli import main
status = main({argv!r})
print(json.dumps([status, sorted(name for name in sys.modules if name.split(".")[0] in {libraries!r})]))
"""


def run_ser_hf(argv: list[str]) -> tuple[subprocess.CompletedProcess, int, list[str]]:
    script = IMPORTS_AFTER.format(argv=argv, libraries=set(HEAVY_LIBRARIES))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    status, imported = json.loads(result.stdout.splitlines()[-1])
    return result, status, imported


def test_train_help_lists_ser_hf_keys_by_section_without_importing_torch_or_transformers():
    result, status, imported = run_ser_hf(["train", "--help"])
    assert status == 0 and imported == []
    out = result.stdout
    assert out.startswith("usage: ser-hf train RECIPE.yaml [--key value ...]")
    headings = [line for line in out.splitlines() if line.endswith(" keys:")]
    assert headings == [
        "Model keys:",
        "Data keys:",
        "Augmentation keys:",
        "Training keys:",
        "transformers' TrainingArguments keys:",
    ]
    # Every key of ser-hf's own, in the section of its dataclass; the Trainer's only behind --help-all.
    model_part, _, rest = out.partition("Data keys:")
    assert "  --model_name_or_path " in model_part and "  --corpus " in rest and "  --corpus " not in model_part
    for key in ser_hf_keys():
        assert f"\n  --{key} " in out, key
    trainer_only = training_arguments_keys() - ser_hf_keys()
    assert "adam_beta1" in trainer_only and "--adam_beta1" not in out
    assert "--help-all" in out
    # The corpus names are filled in from the data stage's registry, not left as an f-string.
    assert "Corpus name(s): cremad, ravdess" in out


def test_every_ser_hf_recipe_key_has_a_help_text():
    keys = [key for section in load_schema()["sections"] for key in section["keys"]]
    assert {key["name"] for key in keys} == ser_hf_keys()
    assert [key["name"] for key in keys if not key["help"].strip()] == []


def test_help_all_lists_transformers_keys_too(capsys):
    assert cli_main(["train", "--help-all"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ser-hf train RECIPE.yaml")
    assert "--adam_beta1" in out and "--model_name_or_path" in out


def test_a_misspelt_flag_is_refused_before_torch_loads_naming_the_closest_key(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", RAVDESS_SAMPLE)
    result, status, imported = run_ser_hf(["train", str(recipe), "--num_train_epoch", "3"])
    assert status == 2 and imported == []
    assert result.stderr.strip().splitlines()[-1] == (
        "ser-hf: error: Unknown command-line argument(s) --num_train_epoch (did you mean --num_train_epochs?); "
        "every option is a recipe key (ser-hf train --help lists them)."
    )
    assert not (tmp_path / "run").exists()


def test_the_recipe_parser_takes_no_prefix_of_a_flag(tmp_path):
    """The parser itself (the sweep and the experiments call it without the early check) refuses a prefix that
    argparse's allow_abbrev=True took for the whole flag."""
    from ser_hf.recipe.parser import parse_recipe

    recipe = write_recipe(tmp_path / "r.yaml", RAVDESS_SAMPLE)
    with pytest.raises(RecipeError, match=r"--num_train_epoch 3 \(did you mean --num_train_epochs\?\)"):
        parse_recipe([str(recipe), "--num_train_epoch", "3"])
    # Both spellings HfArgumentParser gives a key, and --no_KEY of a key that defaults to true, still work.
    *_, training = parse_recipe([str(recipe), "--num-train-epochs", "3", "--no_calibrate_temperature"])
    assert training.num_train_epochs == 3 and training.calibrate_temperature is False


def test_python_m_ser_hf_train_help_is_the_same_help():
    script = textwrap.dedent(
        """
        import sys
        from ser_hf.train import main
        main(["--help"])
        print(sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "transformers")))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: ser-hf train") and result.stdout.strip().endswith("[]")
