"""``ser-hf sweep RECIPE.yaml --grid KEY=V1,V2 ...`` as a user runs it: --dry-run lists the points and trains
nothing, and its own options are checked as usage errors. Sweeps that train, resume and rank points are tested in
tests/experiments."""

from __future__ import annotations

import pytest

from ser_hf.cli import main as cli_main
from tests.recipe.test_parser import write_recipe


def test_a_dry_run_lists_every_point_of_the_grid_and_trains_nothing(tmp_path, tiny_ravdess, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(tmp_path / "sweep"))
    grid = ["--grid", "learning_rate=1.0e-3,2.0e-3", "--grid", "model_config.conv_channels=[4],[8]"]
    assert cli_main(["sweep", str(recipe), *grid, "--dry-run"]) == 0
    header, *points = capsys.readouterr().out.splitlines()
    assert header.split() == ["point", "learning_rate", "model_config.conv_channels", "finished"]
    assert [point.split()[1:] for point in points] == [
        [learning_rate, channels, "False"] for learning_rate in ("0.001", "0.002") for channels in ("[4]", "[8]")
    ]
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize(
    "option, message",
    [
        (["--split", "train"], "argument --split: invalid choice: 'train'"),
        (["--backend", "hyperopt"], "argument --backend: invalid choice: 'hyperopt'"),
        (["--random", "some"], "argument --random: invalid int value: 'some'"),
    ],
)
def test_its_own_options_are_usage_errors(tmp_path, capsys, option, message):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["sweep", str(tmp_path / "r.yaml"), "--grid", "learning_rate=1.0e-3", *option])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
