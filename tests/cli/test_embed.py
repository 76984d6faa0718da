"""``ser-hf embed --model MODEL --corpus ... --data-dir ...`` as a user runs it: its progress, its options and its
one-line errors."""

from __future__ import annotations

import logging
import re

import pytest

from ser_hf.cli import main as cli_main
from tests.conftest import last_error_line


@pytest.mark.reliability
def test_embed_shows_its_progress_and_says_when_the_projection_runs(
    tmp_path, tiny_ravdess, tiny_classifier, capsys, caplog
):
    with caplog.at_level(logging.INFO, logger="ser_hf"):
        assert (
            cli_main(
                [
                    "embed",
                    "--model",
                    str(tiny_classifier),
                    "--corpus",
                    "ravdess",
                    "--data-dir",
                    str(tiny_ravdess),
                    "--speakers",
                    "03,04",
                    "--method",
                    "tsne",
                    "--output-dir",
                    str(tmp_path / "embed"),
                ]
            )
            == 0
        )
    err = capsys.readouterr().err
    assert re.search(r"Embedding: 100%\|.*\| 16/16", err), err
    assert "Projecting 16 embeddings to 2-D with t-SNE (a while for thousands of clips)" in caplog.text


def test_embed_options_and_speakers_are_checked_before_the_model_is_loaded(tmp_path, tiny_ravdess, capsys):
    model = str(tmp_path / "never-loaded")
    embed = ["embed", "--model", model, "--corpus", "ravdess", "--data-dir", str(tiny_ravdess)]
    with pytest.raises(SystemExit) as exit_:
        cli_main([*embed, "--method", "mds"])
    assert exit_.value.code == 2 and "argument --method: invalid choice: 'mds'" in capsys.readouterr().err
    assert cli_main([*embed, "--speakers", "04,99", "--output-dir", str(tmp_path / "embed")]) == 2
    assert last_error_line(capsys) == "ser-hf: error: --speakers ['99'] are not speakers of the corpus."
    assert not (tmp_path / "embed").exists()
