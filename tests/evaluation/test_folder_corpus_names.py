"""Folder corpora by name (issue 69, point 3): without a ``corpus_name`` a folder corpus is called after its folder
in its dataset, reports, logs and default output folders, never "folder"; two folder corpora evaluated one after the
other never share an output folder, even two folders of the same name."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from ser_hf.cli import main as cli_main
from ser_hf.data.corpora import load_corpus
from tests.conftest import write_audio

SPEAKER_REGEX = r"/(?P<speaker>[A-Z]\d)_"


def folder_corpus(root, seed: int = 0):
    """Two speakers in neutral and angry, a folder per label."""
    for speaker in ("A1", "B1"):
        for label in ("neutral", "angry"):
            for index in range(2):
                write_audio(root / label / f"{speaker}_{index}.wav", seconds=0.3, seed=seed + index)
    return root


def evaluate(model, data_dir, *options):
    arguments = ["evaluate", "--model", str(model), "--corpus", "folder", "--data-dir", str(data_dir)]
    arguments += ["--option", f"speaker_regex={SPEAKER_REGEX}"]
    for option in options:
        arguments += ["--option", option]
    assert cli_main(arguments) == 0


def test_a_folder_corpus_without_corpus_name_is_named_after_its_folder(tmp_path, caplog):
    corpus = folder_corpus(tmp_path / "clinic_recordings")
    with caplog.at_level(logging.INFO, logger="ser_hf.data.corpora.folder"):
        dataset = load_corpus("folder", str(corpus), speaker_regex=SPEAKER_REGEX)
    assert set(dataset["corpus"]) == {"clinic_recordings"}
    assert "called 'clinic_recordings' after its folder" in caplog.text and "set corpus_name" in caplog.text
    named = load_corpus("folder", str(corpus), speaker_regex=SPEAKER_REGEX, corpus_name="clinic")
    assert set(named["corpus"]) == {"clinic"}


def test_two_folder_corpora_evaluated_in_a_row_keep_their_names_and_their_reports(tmp_path, tiny_crnn_folder, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_crnn_folder, model)
    first = folder_corpus(tmp_path / "mandarin", seed=0)
    second = folder_corpus(tmp_path / "italian", seed=5)
    evaluate(model, first)
    evaluate(model, second)
    reports = {
        path.name: json.loads((path / "eval_report.json").read_text()) for path in (model / "reports").iterdir()
    }
    assert set(reports) == {"mandarin-all", "italian-all"}
    assert reports["mandarin-all"]["corpus_name"] == "mandarin" and reports["italian-all"]["corpus_name"] == "italian"
    (metrics,) = reports["italian-all"]["evaluation"].values()
    assert list(metrics["per_corpus"]) == ["italian"]
    markdown = (model / "reports" / "italian-all" / "eval_report.md").read_text()
    assert markdown.startswith("# model on italian (all)") and "folder (all)" not in markdown
    assert "Report written to" in capsys.readouterr().out

    # A corpus_name given names it instead.
    evaluate(model, first, "corpus_name=zh")
    assert (model / "reports" / "zh-all" / "eval_report.json").is_file()

    # Two folders of the same name: the second one's report goes to a folder of its own, the first one's is kept.
    other_wav, wav = folder_corpus(tmp_path / "b" / "wav", seed=9), folder_corpus(tmp_path / "a" / "wav")
    evaluate(model, wav)
    evaluate(model, other_wav)
    wav_reports = sorted(path for path in (model / "reports").iterdir() if path.name.startswith("wav-"))
    assert len(wav_reports) == 2 and wav_reports[0].name != wav_reports[1].name
    data_dirs = {json.loads((path / "eval_report.json").read_text())["data_dir"] for path in wav_reports}
    assert data_dirs == {str(wav), str(other_wav)}
    # The same folder evaluated again writes over its own report.
    evaluate(model, wav)
    assert len([path for path in (model / "reports").iterdir() if path.name.startswith("wav-")]) == 2


def test_a_matrix_of_two_folder_corpora_has_a_column_for_each(tmp_path, tiny_crnn_folder):
    from ser_hf.evaluation.cross_corpus import cross_corpus_matrix
    from ser_hf.evaluation.evaluate_model import CorpusSource

    options = {"speaker_regex": SPEAKER_REGEX}
    sources = [
        CorpusSource("folder", str(folder_corpus(tmp_path / name, seed=seed)), options=options)
        for name, seed in (("mandarin", 0), ("italian", 5))
    ]
    matrix = cross_corpus_matrix([str(tiny_crnn_folder)], sources, output_dir=tmp_path / "matrix", split="all")
    assert matrix["corpora"] == ["mandarin", "italian"]
    assert {path.name for path in (tmp_path / "matrix").iterdir() if path.is_dir()} == {
        f"{tiny_crnn_folder.name}__mandarin",
        f"{tiny_crnn_folder.name}__italian",
    }
    same = [CorpusSource("folder", str(tmp_path / "mandarin"), options=options)] * 2
    with pytest.raises(ValueError, match="same name .* give each a corpus_name"):
        cross_corpus_matrix([str(tiny_crnn_folder)], same, output_dir=tmp_path / "same", split="all")
