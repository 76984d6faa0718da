"""``ser-hf predict MODEL FOLDER`` with a speaker-normalised model and no --speakers or --speaker-from (issue 65, point
9): each file's speaker is read with the ``speaker_regex`` the model's training corpus was read with (its run's
``run_config.json``), from its path relative to the folder given; a file it does not match gets the training
statistics, named in a warning."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np

from ser_hf.cli import main as cli_main
from ser_hf.deploy.classify import classify_files
from ser_hf.deploy.pipelines import load_classifier
from ser_hf.deploy.speakers import training_speaker_regexes
from ser_hf.run_folder import RUN_CONFIG_FILE
from tests.conftest_models import LABELS
from tests.deploy.test_predict_encoder_once import whisper_folder, write_recordings

SPEAKER_REGEX = r"^(?P<speaker>[A-Z]\d)_"


def write_run_config(folder, corpus_options, corpora=("folder",)) -> None:
    """The run_config.json a training run on `corpora` read with `corpus_options` writes beside its model."""
    config = {
        "model": {},
        "data": {
            "corpus": list(corpora),
            "data_dir": [f"/corpora/{name if name != 'folder' else 'mandarin'}" for name in corpora],
            "corpus_options": corpus_options,
        },
        "augmentation": {},
        "training": {},
    }
    (folder / RUN_CONFIG_FILE).write_text(json.dumps(config))


def scores_by_file(path) -> dict[str, dict]:
    return {record["file"]: record for record in json.loads(path.read_text())}


def test_a_flat_folder_gets_its_speakers_from_the_training_speaker_regex(tmp_path, caplog):
    model = whisper_folder(tmp_path / "model", "speaker")
    write_run_config(model, {"speaker_regex": SPEAKER_REGEX})
    recordings = tmp_path / "recordings"
    files = write_recordings(recordings, clips_each=10)  # 10 windows or more a speaker
    stray = recordings / "notes" / "take.wav"  # a path the regex does not match
    stray.parent.mkdir()
    stray.write_bytes((recordings / "A1_0.wav").read_bytes())
    output = tmp_path / "by_regex.json"

    with caplog.at_level(logging.INFO, logger="ser_hf"):
        assert cli_main(["predict", str(model), str(recordings), "--output", str(output), "--no-progress"]) == 1
    (said,) = [r.getMessage() for r in caplog.records if "read with the speaker_regex" in r.getMessage()]
    assert f"mandarin {SPEAKER_REGEX!r}" in said and "2 speaker(s) in 22 file(s)" in said
    (named,) = [r.getMessage() for r in caplog.records if "match no" in r.getMessage()]
    assert named.startswith("1 of the 23 file(s) match no speaker_regex of the model's training corpus (mandarin")
    assert str(stray) in named and "training speakers' global statistics" in named
    assert "not grouped by speaker" not in caplog.text  # today's fallback warning is not given as well

    results = scores_by_file(output)
    assert {file: results[file].get("speaker") for file in files} == {
        file: "A1" if "/A1_" in file else "B1" for file in files
    }
    assert results[str(stray)].get("speaker") is None and results[str(stray)]["error"] is None

    # The same speakers given in a CSV give the same scores; the stray file scores as without speakers.
    table = tmp_path / "speakers.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "speaker_id"])
        writer.writerows([file, results[file]["speaker"]] for file in files)
    by_csv = tmp_path / "by_csv.json"
    arguments = ["predict", str(model), "--speakers", str(table), "--output", str(by_csv), "--no-progress"]
    assert cli_main(arguments) == 1
    expected = scores_by_file(by_csv)
    for file in files:
        if results[file]["error"] is None:
            np.testing.assert_allclose(
                [results[file]["scores"][label] for label in LABELS.names],
                [expected[file]["scores"][label] for label in LABELS.names],
                atol=1e-4,
            )
    (alone,) = classify_files(load_classifier(str(model)), [str(stray)], progress=False)
    np.testing.assert_allclose(
        [results[str(stray)]["scores"][label] for label in LABELS.names],
        [alone.scores[label] for label in LABELS.names],
        atol=1e-4,
    )


def test_each_corpus_regex_is_read_from_its_own_options_and_a_model_without_one_falls_back(tmp_path, caplog):
    model = whisper_folder(tmp_path / "model", "speaker")
    write_run_config(model, {"folder": {"speaker_regex": SPEAKER_REGEX}, "ravdess": {}}, corpora=("folder", "ravdess"))
    assert training_speaker_regexes(model) == [("mandarin", SPEAKER_REGEX)]

    # The regex is searched in the path relative to the folder given: speaker folders A1/, B1/ do not match it.
    recordings = tmp_path / "recordings"
    write_recordings(recordings, flat=False)
    output = tmp_path / "folders.json"
    with caplog.at_level(logging.INFO, logger="ser_hf"):
        assert cli_main(["predict", str(model), str(recordings), "--output", str(output), "--no-progress"]) == 1
    assert "None of the 12 file(s) match the speaker_regex of the model's training corpus" in caplog.text
    assert "not grouped by speaker" in caplog.text and "--speaker-from folder" in caplog.text
    assert all(record.get("speaker") is None for record in json.loads(output.read_text()))

    (model / RUN_CONFIG_FILE).unlink()  # no run record: as before, the training statistics with today's warning
    assert training_speaker_regexes(model) == []
    assert training_speaker_regexes("someone/some-model") == []
