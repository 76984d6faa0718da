"""A folder corpus' mistakes that its file names show are answered before torch, transformers and datasets load: a
label or speaker regex that matches no file, speakers the recipe names that no file has (issue 65, point 4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from ser_hf.recipe.values import folder_corpus_problems
from tests.conftest import REPO, write_audio

NAMES = ["SP01_angry_1.wav", "SP01_sad_1.wav", "SP02_angry_1.wav", "SP02_sad_1.wav"]
OPTIONS = {"speaker_regex": r"^(?P<speaker>SP\d+)_", "label_regex": r"_(?P<label>[a-z]+)_\d+\.wav$"}


def _folder(root: Path) -> Path:
    for seed, name in enumerate(NAMES):
        write_audio(root / name, seconds=0.2, seed=seed)
    return root


def test_regexes_and_speaker_lists_are_checked_against_the_file_names(tmp_path):
    data = _folder(tmp_path / "clips")
    values = {"corpus": "folder", "data_dir": str(data), "corpus_options": OPTIONS, "test_speakers": ["SP02"]}
    assert folder_corpus_problems(values) == []
    (problem,) = folder_corpus_problems({**values, "test_speakers": ["SP2"], "validation_speakers": []})
    assert (
        problem
        == "test_speakers: speaker(s) ['SP2'] are not in the folder's file names (its speakers: ['SP01', 'SP02'])."
    )
    (problem,) = folder_corpus_problems(
        {**values, "corpus_options": {**OPTIONS, "label_regex": r"-(?P<label>\w+)\.wav"}}
    )
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
    (problem,) = folder_corpus_problems(merged)
    assert "speaker(s) ['clips:SP03']" in problem
    # What the names cannot tell (a named corpus, a CSV corpus) is left to the loader.
    assert folder_corpus_problems({"corpus": "ravdess", "data_dir": str(data), "test_speakers": ["99"]}) == []


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
