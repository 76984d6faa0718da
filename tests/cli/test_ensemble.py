"""``ser-hf ensemble MODEL MODEL ... --output-dir OUT`` as a user runs it: the line it prints, the folder it writes
(which the other commands then take as a model), and its one-line errors about the output folder."""

from __future__ import annotations

import json

from ser_hf.cli import main as cli_main
from tests.conftest import last_error_line, model_copy


def test_ensemble_saves_one_model_and_says_what_it_holds(tmp_path, tiny_crnn_folder, capsys):
    first, second = model_copy(tiny_crnn_folder, tmp_path / "a"), model_copy(tiny_crnn_folder, tmp_path / "b")
    output = tmp_path / "ensemble"
    assert cli_main(["ensemble", str(first), str(second), "--output-dir", str(output), "--weights", "3", "1"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"Ensemble of 2 models saved in {output}: a (3), b (1); labels neutral, happy, ")
    assert line.endswith(f"`ser-hf evaluate --model {output} --corpus ... --data-dir ...` scores it on a corpus.")
    config = json.loads((output / "config.json").read_text())
    assert config["member_names"] == ["a", "b"] and config["member_weights"] == [3, 1]
    # An earlier ensemble is replaced without asking.
    assert cli_main(["ensemble", str(first), str(second), "--output-dir", str(output)]) == 0


def test_ensemble_refuses_an_output_folder_it_did_not_write(tmp_path, tiny_crnn_folder, capsys):
    member = model_copy(tiny_crnn_folder, tmp_path / "member")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("chapter 1")
    cases = {
        member: f"ser-hf: error: --output-dir {member} is one of the members: give the ensemble a folder of its own.",
        notes: f"ser-hf: error: --output-dir {notes} already holds other files (thesis.txt): give a new or empty "
        "folder, or one that an earlier `ser-hf ensemble` wrote.",
        notes / "thesis.txt": f"ser-hf: error: --output-dir {notes / 'thesis.txt'} is a file, not a folder.",
    }
    for output, message in cases.items():
        assert cli_main(["ensemble", str(member), str(tiny_crnn_folder), "--output-dir", str(output)]) == 2
        assert last_error_line(capsys) == message
    assert sorted(path.name for path in notes.iterdir()) == ["thesis.txt"]
