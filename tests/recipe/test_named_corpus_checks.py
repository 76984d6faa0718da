"""A named corpus' folder is checked from its file names before torch, transformers and datasets load (issue 65, point
4): speakers the recipe's lists name that no file has, a folder none of whose names the corpus' parser reads, and files
it refuses (without skip_invalid), all answered as the loader would answer them, without its ~10 s of imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ser_hf.data.corpus_settings import corpus_problems
from tests.conftest import RAVDESS_SAMPLE, REPO

SAMPLE_SPEAKERS = ["01", "02", "03", "04", "05", "06", "07", "08"]


def _touch(root: Path, names: list[str]) -> Path:
    """Empty files under ``names``: these checks read names only, never audio."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    return root


def test_a_speaker_the_ravdess_folder_lacks_is_named_with_the_folders_speakers():
    values = {"corpus": "ravdess", "data_dir": str(RAVDESS_SAMPLE), "test_speakers": ["07", "08"]}
    assert corpus_problems(values) == []
    (problem,) = corpus_problems({**values, "test_speakers": ["99"]})
    assert (
        problem
        == f"test_speakers: speaker(s) ['99'] are not in the folder's file names (its speakers: {SAMPLE_SPEAKERS})."
    )
    # The command line's values are read as YAML, where 07 is the number 7: the recipe parser keeps "07".
    assert corpus_problems({**values, "validation_speakers": [6], "test_speakers": [7, "08"]}) == []
    # Speaker lists are only read by the speaker protocol.
    assert corpus_problems({**values, "test_speakers": ["99"], "split_protocol": "kfold"}) == []


def test_merged_corpora_name_their_speakers_corpus_colon_speaker(tmp_path):
    tess = _touch(tmp_path / "tess", ["OAF_back_angry.wav", "YAF_dog_ps.wav"])
    values = {
        "corpus": ["RAVDESS", "tess"],  # any spelling load_corpus takes
        "data_dir": [str(RAVDESS_SAMPLE), str(tess)],
        "test_speakers": ["ravdess:01", "tess:YAF"],
    }
    assert corpus_problems(values) == []
    (problem,) = corpus_problems({**values, "validation_speakers": ["01", "tess:OA"]})
    assert problem.startswith("validation_speakers: speaker(s) ['01', 'tess:OA'] are not in the folders' file names")


def test_a_folder_of_other_files_and_files_the_parser_refuses(tmp_path):
    other = _touch(tmp_path / "clips", ["SP01_angry_1.wav", "SP02_sad_1.wav"])
    (problem,) = corpus_problems({"corpus": "ravdess", "data_dir": str(other), "test_speakers": ["99"]})
    assert problem == (
        f"data_dir: no file of {str(other)!r} is named as RAVDESS names its files (such as "
        "Actor_01/03-01-05-01-01-01-01.wav); the first of its 2 audio file(s), 'SP01_angry_1.wav': file name does not "
        "follow RAVDESS' MM-VC-EE-II-SS-RR-AA.wav pattern. Point data_dir at a copy of RAVDESS, or read other clips "
        "as corpus: folder."
    )
    mixed = _touch(
        tmp_path / "mixed",
        [
            "Actor_01/03-01-05-01-01-01-01.wav",
            "Actor_01/03-01-05-01-01-01-01 (copy).wav",
            "Actor_02/03-01-09-01-01-01-02.wav",
        ],
    )
    values = {"corpus": "ravdess", "data_dir": str(mixed), "test_speakers": ["02"]}
    problems = corpus_problems(values)
    assert len(problems) == 2
    assert problems[0].startswith(f"data_dir: 2 of the 3 audio files of {str(mixed)!r} are not RAVDESS clips (")
    assert "'Actor_02/03-01-09-01-01-01-02.wav': unknown RAVDESS emotion code '09'" in problems[0]
    assert problems[0].endswith("or leave them out with skip_invalid: true.")
    # Speakers come from the names that parse: actor 02's one file does not.
    assert problems[1].startswith("test_speakers: speaker(s) ['02']")
    assert corpus_problems({**values, "skip_invalid": True, "test_speakers": ["01"]}) == []
    # An empty folder is left to the loader (it names it), as tests/recipe/test_keys.py stands one in for each
    # recipe's folder.
    empty = _touch(tmp_path / "empty", ["notes.txt"])
    assert corpus_problems({"corpus": "ravdess", "data_dir": str(empty), "test_speakers": ["99"]}) == []


def test_an_option_the_corpus_loader_does_not_take_is_named_with_the_closest_it_does(tmp_path):
    nemo = _touch(tmp_path / "nemo", ["EB0_anger_10.wav"])
    values = {"corpus": "nemo", "data_dir": str(nemo), "corpus_options": {"metadata_csv": "data.csv"}}
    assert corpus_problems(values) == [
        "Corpus 'nemo' has no option 'metadata_csv' (did you mean 'metadata_tsv'?): its options are metadata_tsv."
    ]
    merged = {
        "corpus": ["ravdess", "folder"],
        "data_dir": [str(RAVDESS_SAMPLE), "no/such/folder"],  # options are checked whether the folder exists or not
        "corpus_options": {"ravdess": {"metadata_tsv": "x"}, "folder": {"speaker_regexp": "^(\\w+)_"}},
    }
    assert corpus_problems(merged) == [
        "Corpus 'ravdess' has no option 'metadata_tsv': it takes no corpus options.",
        "Corpus 'folder' has no option 'speaker_regexp' (did you mean 'speaker_regex'?): its options are csv_path, "
        "path_column, label_column, speaker_column, speaker_regex, label_regex, text_column, corpus_name.",
    ]


TRAIN = """
import json, sys
from ser_hf.cli import main
status = main(["train", *sys.argv[1:]])
heavy = sorted(name for name in ("torch", "transformers", "datasets") if name in sys.modules)
print(json.dumps({"status": status, "heavy": heavy}))
"""


def _train(*args: str) -> tuple[dict, str]:
    result = subprocess.run(
        [sys.executable, "-c", TRAIN, *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    return json.loads(result.stdout.splitlines()[-1]), result.stderr


def test_ser_hf_train_answers_a_misspelt_ravdess_speaker_before_torch_transformers_and_datasets_load():
    """The issue's command: a shipped RAVDESS recipe on a copy of actors 01-08 with a speaker the copy lacks."""
    outcome, stderr = _train("recipes/ravdess_cnn1d.yaml", "--data_dir", str(RAVDESS_SAMPLE), "--test_speakers", "99")
    assert outcome == {"status": 2, "heavy": []}, stderr[-2000:]
    assert "test_speakers: speaker(s) ['99'] are not in the folder's file names" in stderr
    # The recipe's lists name actors 09-20, which the sample does not have either: each list is named.
    assert "train_speakers: speaker(s) ['09', '10'," in stderr and "validation_speakers: speaker(s) ['17'," in stderr


def test_ser_hf_train_answers_a_folder_of_other_files_before_torch_transformers_and_datasets_load(tmp_path):
    other = _touch(tmp_path / "clips", ["SP01_angry_1.wav"])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"model_type": "cnn2d", "corpus": "tess", "data_dir": str(other)}))
    outcome, stderr = _train(str(recipe), "--output_dir", str(tmp_path / "run"))
    assert outcome == {"status": 2, "heavy": []}, stderr[-2000:]
    assert "is named as TESS names its files (such as OAF_back_angry.wav)" in stderr


def test_ser_hf_train_answers_a_misspelt_corpus_option_before_torch_transformers_and_datasets_load(tmp_path):
    recipe = tmp_path / "r.yaml"
    options = {"metadata_tsv": "x"}
    recipe.write_text(yaml.safe_dump({"model_type": "cnn2d", "corpus": "ravdess", "corpus_options": options}))
    outcome, stderr = _train(str(recipe), "--data_dir", str(RAVDESS_SAMPLE), "--output_dir", str(tmp_path / "run"))
    assert outcome == {"status": 2, "heavy": []}, stderr[-2000:]
    assert "Corpus 'ravdess' has no option 'metadata_tsv': it takes no corpus options." in stderr


@pytest.mark.parametrize("module", ["ser_hf.data.corpora.named", "ser_hf.data.corpus_sources"])
def test_the_corpus_parsers_import_without_heavy_libraries(module):
    code = (
        f"import json, sys, {module}\n"
        "from ser_hf.data.corpora.named import CORPUS_MODULES\n"
        "print(json.dumps(sorted(n for n in ('torch', 'transformers', 'datasets') if n in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert json.loads(result.stdout.splitlines()[-1]) == [], result.stderr[-2000:]
