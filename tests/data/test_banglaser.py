"""BanglaSER (ser_hf/data/corpora/banglaser.py): its own emotion codes in RAVDESS's file-name pattern, speakers 01-34
with the corpus' odd/even sex rule, the files whose modality says 01 read like the rest; on clips written under its
names (always) and on the real folder in ../shared/data (where present)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from ser_hf import InvalidClipError, load_corpus
from ser_hf.cli import main as cli_main
from ser_hf.data.corpora.named import read_file_names
from tests.conftest import REPO, write_audio

#: Published names: happy, sad, angry, surprised and neutral, both intensities, and one whose modality says 01.
NAMES = {
    "03-01-01-01-01-01-01.flac": ("happy", "01", "male", "normal"),
    "03-01-02-02-02-02-02.flac": ("sad", "02", "female", "strong"),
    "03-01-03-01-03-01-33.flac": ("angry", "33", "male", "normal"),
    "01-01-04-02-03-01-15.flac": ("surprised", "15", "male", "strong"),
    "03-01-05-01-01-02-34.flac": ("neutral", "34", "female", "normal"),
}


@pytest.fixture
def banglaser_clips(tmp_path):
    for index, name in enumerate(NAMES):
        write_audio(tmp_path / "banglaser" / name, seed=index)
    return tmp_path / "banglaser"


def test_banglaser_reads_its_own_emotion_codes_speakers_and_sex(banglaser_clips):
    ds = load_corpus("banglaser", banglaser_clips)
    assert ds.features["label"].names == ["neutral", "happy", "sad", "angry", "surprised"]
    by_file = {path.rsplit("/", 1)[1]: row for path, row in zip(ds["path"], ds)}
    assert set(by_file) == set(NAMES)
    for name, (emotion, speaker, sex, intensity) in NAMES.items():
        row = by_file[name]
        assert ds.features["label"].int2str(row["label"]) == emotion, name
        assert (row["speaker_id"], row["sex"], row["intensity"], row["corpus"]) == (
            speaker,
            sex,
            intensity,
            "banglaser",
        )
    assert by_file["03-01-03-01-03-01-33.flac"]["statement"] == "03"
    assert by_file["03-01-05-01-01-02-34.flac"]["repetition"] == 2


@pytest.mark.parametrize(
    "name, message",
    [
        ("03-01-06-01-01-01-01.flac", "unknown BanglaSER emotion code '06'"),
        ("03-01-01-01-01-01-35.flac", "not one of its speakers 01-34"),
        ("02-01-01-01-01-01-01.flac", "unknown BanglaSER modality code '02'"),
        ("03-01-01-01-04-01-01.flac", "unknown BanglaSER statement code '04'"),
        ("03-01-01-01-01-01.flac", "MM-VC-EE-II-SS-RR-AA"),
    ],
)
def test_a_name_outside_banglasers_codes_is_named_before_any_audio_is_read(banglaser_clips, name, message):
    write_audio(banglaser_clips / name)
    # The recipe's checks read the names so, before torch, transformers and datasets load.
    read = read_file_names("banglaser", banglaser_clips)
    assert (read.files, len(read.invalid)) == (len(NAMES) + 1, 1)
    assert message in str(read.invalid[0]) and name in str(read.invalid[0])
    with pytest.raises(InvalidClipError, match=message):
        load_corpus("banglaser", banglaser_clips)


TRAIN = """
import json, sys
from ser_hf.cli import main
status = main(["train", *sys.argv[1:]])
heavy = sorted(name for name in ("torch", "transformers", "datasets") if name in sys.modules)
print(json.dumps({"status": status, "heavy": heavy}))
"""


def test_ser_hf_train_checks_a_banglaser_folder_before_torch_transformers_and_datasets_load(tmp_path):
    folder = tmp_path / "banglaser"
    for name in [*NAMES, "03-01-06-01-01-01-02.flac"]:  # emotion 06: not one of BanglaSER's codes
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")  # the checks read names only
    recipe = tmp_path / "r.yaml"
    values = {"model_type": "cnn2d", "corpus": "banglaser", "data_dir": str(folder), "test_speakers": ["34", "40"]}
    recipe.write_text(yaml.safe_dump(values))
    result = subprocess.run(
        [sys.executable, "-c", TRAIN, str(recipe), "--output_dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert json.loads(result.stdout.splitlines()[-1]) == {"status": 2, "heavy": []}, result.stderr[-2000:]
    assert "test_speakers: speaker(s) ['40'] are not in the folder's file names" in result.stderr
    assert "unknown BanglaSER emotion code '06'" in result.stderr


def test_data_summary_prints_banglasers_table(banglaser_clips, capsys):
    assert cli_main(["data", "summary", "--corpus", "banglaser", "--data-dir", str(banglaser_clips), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == 5 and summary["speakers"] == 5
    assert summary["labels"] == {"neutral": 1, "happy": 1, "sad": 1, "angry": 1, "surprised": 1}


def test_real_banglaser_file_names(shared_data):
    folder = shared_data / "banglaser"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not present")
    read = read_file_names("banglaser", folder)
    assert (read.files, len(read.speakers), read.invalid) == (978, 34, ())
    assert read.speakers == {f"{speaker:02d}" for speaker in range(1, 35)}


def test_real_banglaser(shared_data):
    folder = shared_data / "banglaser"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not present")
    ds = load_corpus("banglaser", folder)
    names = ds.features["label"].names
    assert names == ["neutral", "happy", "sad", "angry", "surprised"]
    counts = {name: 0 for name in names}
    for label in ds["label"]:
        counts[names[label]] += 1
    assert counts == {"neutral": 162, "happy": 204, "sad": 204, "angry": 204, "surprised": 204}
    sex = dict(zip(ds["speaker_id"], ds["sex"]))
    assert len(sex) == 34 and list(sex.values()).count("female") == 17
    assert all(sex[speaker] == ("male" if int(speaker) % 2 else "female") for speaker in sex)
    # The published files whose modality says 01 (speaker 15's) are read like the rest.
    audio_video = [path for path in ds["path"] if path.rsplit("/", 1)[1].startswith("01-")]
    assert len(audio_video) == 2 and set(ds["intensity"]) == {"normal", "strong"}
