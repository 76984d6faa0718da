"""What a recipe's folder corpora need, checked before torch loads: options per corpus (``corpus_options`` as one
mapping, by corpus name, or a list in corpus order), two corpora of one name refused, asking for a distinct
``corpus_name`` each (issue 67, point 4), and the regexes and speaker lists checked against the file names (issue 65,
point 4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ser_hf.data.corpus_settings import corpus_name_problem, corpus_problems, options_of_each_corpus
from ser_hf.errors import RecipeError
from ser_hf.training.data_stage import load_dataset_from_args
from tests.conftest import REPO, write_audio

SPEAKERS_AND_LABELS = ["SP01_angry_1.wav", "SP01_sad_1.wav", "SP02_angry_1.wav", "SP02_sad_1.wav"]
OPTIONS = {"speaker_regex": r"^(?P<speaker>SP\d+)_", "label_regex": r"_(?P<label>[a-z]+)_\d+\.wav$"}


def _folder(root: Path) -> Path:
    for seed, name in enumerate(SPEAKERS_AND_LABELS):
        write_audio(root / name, seconds=0.2, seed=seed)
    return root


def test_options_of_each_corpus_from_a_mapping_names_or_a_list():
    assert options_of_each_corpus(["cremad"], {"demographics_csv": "d.csv"}) == [{"demographics_csv": "d.csv"}]
    assert options_of_each_corpus(["ravdess", "cremad"], {"cremad": {"demographics_csv": "d.csv"}}) == [
        {},
        {"demographics_csv": "d.csv"},
    ]
    assert options_of_each_corpus(["folder", "folder"], [{"corpus_name": "a"}, {"corpus_name": "b"}]) == [
        {"corpus_name": "a"},
        {"corpus_name": "b"},
    ]
    assert options_of_each_corpus(["folder", "folder"], None) == [{}, {}]
    with pytest.raises(RecipeError, match="one mapping per corpus \\(2: folder, folder\\).*got 1 item"):
        options_of_each_corpus(["folder", "folder"], [{"corpus_name": "a"}])
    with pytest.raises(RecipeError, match="names folder, which the recipe reads more than once: give corpus_options"):
        options_of_each_corpus(["folder", "folder"], {"folder": {"corpus_name": "a"}})
    with pytest.raises(RecipeError, match="must map corpus names \\(ravdess, tess\\)"):
        options_of_each_corpus(["ravdess", "tess"], {"demographics_csv": "d.csv"})


def test_two_folder_corpora_of_one_name_are_a_recipe_problem(tmp_path):
    first, second = tmp_path / "a" / "clips", tmp_path / "b" / "clips"
    values = {"corpus": ["folder", "folder"], "data_dir": [str(first), str(second)], "corpus_options": [OPTIONS] * 2}
    assert "two corpora would both be called 'clips'" in corpus_name_problem(values)
    values["corpus_options"] = [{**OPTIONS, "corpus_name": "a"}, {**OPTIONS, "corpus_name": "b"}]
    assert corpus_name_problem(values) is None
    values["corpus_options"] = [{**OPTIONS, "corpus_name": "same"}, {**OPTIONS, "corpus_name": "Same"}]
    assert "both be called 'same'" in corpus_name_problem(values)
    assert corpus_name_problem({"corpus": ["ravdess", "tess"], "data_dir": ["r", "t"]}) is None


def test_ser_hf_train_refuses_two_corpora_of_one_name_before_torch_loads(tmp_path):
    first, second = _folder(tmp_path / "a" / "clips"), _folder(tmp_path / "b" / "clips")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "model_type": "cnn2d",
                "corpus": ["folder", "folder"],
                "data_dir": [str(first), str(second)],
                "corpus_options": [OPTIONS, OPTIONS],
                "output_dir": str(tmp_path / "run"),
            }
        )
    )
    code = (
        "import sys\n"
        "from ser_hf.cli import main\n"
        f"status = main(['train', {str(recipe)!r}])\n"
        "print('torch' in sys.modules, 'datasets' in sys.modules, status)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.stdout.split() == ["False", "False", "2"], result.stdout + result.stderr
    assert "two corpora would both be called 'clips'" in result.stderr and "corpus_name" in result.stderr


def test_each_folder_corpus_takes_its_own_options_and_keeps_its_speakers_apart(tmp_path):
    from ser_hf.recipe.data_arguments import DataArguments

    first, second = _folder(tmp_path / "a" / "clips"), _folder(tmp_path / "b" / "clips")
    data_args = DataArguments(
        corpus=["folder", "folder"],
        data_dir=[str(first), str(second)],
        corpus_options=[{**OPTIONS, "corpus_name": "clinic_a"}, {**OPTIONS, "corpus_name": "clinic_b"}],
    )
    dataset = load_dataset_from_args(data_args)
    assert sorted(set(dataset["speaker_id"])) == ["clinic_a:SP01", "clinic_a:SP02", "clinic_b:SP01", "clinic_b:SP02"]
    with pytest.raises(RecipeError, match="both be called 'clips'"):
        DataArguments(corpus=["folder", "folder"], data_dir=[str(first), str(second)], corpus_options=[OPTIONS] * 2)


def test_the_command_line_gives_each_corpus_its_options_by_position(tmp_path, capsys):
    from ser_hf.cli import main as cli_main

    first, second = _folder(tmp_path / "a" / "clips"), _folder(tmp_path / "b" / "clips")
    argv = ["data", "summary", "--corpus", "folder", "--data-dir", str(first), "--corpus", "folder", "--data-dir"]
    regexes = [f"folder:{key}={value}" for key, value in OPTIONS.items()]  # every folder corpus
    names = ["1:corpus_name=clinic_a", "2:corpus_name=clinic_b"]  # each its own
    flags = [flag for option in regexes + names for flag in ("--option", option)]
    assert cli_main([*argv, str(second), *flags, "--json"]) == 0
    assert '"speakers": 4' in capsys.readouterr().out
    assert cli_main([*argv, str(second), *flags, "--option", "3:corpus_name=c"]) == 2
    assert "--option 3:corpus_name=...: there is no corpus 3" in capsys.readouterr().err
    assert cli_main([*argv, str(second), *flags[:4]]) == 2  # the regexes only: both are called "clips"
    assert "--option N:corpus_name=..." in capsys.readouterr().err


def test_regexes_and_speaker_lists_are_checked_against_the_file_names(tmp_path):
    data = _folder(tmp_path / "clips")
    values = {"corpus": "folder", "data_dir": str(data), "corpus_options": OPTIONS, "test_speakers": ["SP02"]}
    assert corpus_problems(values) == []
    (problem,) = corpus_problems({**values, "test_speakers": ["SP2"], "validation_speakers": []})
    assert (
        problem
        == "test_speakers: speaker(s) ['SP2'] are not in the folder's file names (its speakers: ['SP01', 'SP02'])."
    )
    (problem,) = corpus_problems({**values, "corpus_options": {**OPTIONS, "label_regex": r"-(?P<label>\w+)\.wav"}})
    assert problem.startswith("corpus_options.label_regex '-(?P<label>\\w+)\\.wav' matches no file of")
    assert "such as 'SP01_angry_1.wav'" in problem
    # Two folder corpora: speakers are named corpus:speaker, each corpus by its corpus_name (or folder).
    other = _folder(tmp_path / "more")
    merged = {
        "corpus": ["folder", "folder"],
        "data_dir": [str(data), str(other)],
        "corpus_options": [OPTIONS, {**OPTIONS, "corpus_name": "b"}],
        "test_speakers": ["b:SP01", "clips:SP03"],
    }
    (problem,) = corpus_problems(merged)
    assert "speaker(s) ['clips:SP03']" in problem
    # What the names cannot tell (a CSV corpus, the lists of another protocol) is left to the loader.
    assert corpus_problems({**values, "corpus_options": {**OPTIONS, "csv_path": "clips.csv"}}) == []
    assert corpus_problems({**values, "test_speakers": ["SP2"], "split_protocol": "kfold"}) == []


def test_ser_hf_train_names_a_misspelt_speaker_before_torch_loads(tmp_path):
    data = _folder(tmp_path / "clips")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "model_type": "cnn2d",
                "corpus": "folder",
                "data_dir": str(data),
                "corpus_options": OPTIONS,
                "test_speakers": ["SP2"],
                "output_dir": str(tmp_path / "run"),
            }
        )
    )
    code = (
        "import sys\n"
        "from ser_hf.cli import main\n"
        f"status = main(['train', {str(recipe)!r}])\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules, 'datasets' in sys.modules, status)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.stdout.split() == ["False", "False", "False", "2"], result.stdout + result.stderr
    assert "test_speakers: speaker(s) ['SP2'] are not in the folder's file names" in result.stderr
