"""``ser-hf push RUN_DIR --repo-id NAMESPACE/NAME`` as a user runs it, against the local Hub of tests/hub_server.py:
the line it prints, and its one-line errors. What a push uploads (card, reports, recipe) is tested in tests/hub."""

from __future__ import annotations

import logging

import huggingface_hub
import pytest

from ser_hf.cli import main as cli_main
from tests.conftest import HUB_TOKEN, model_copy
from tests.hub_server import LocalHub


def test_push_prints_where_the_run_went(tmp_path, tiny_crnn_folder, monkeypatch, capsys, caplog):
    run_dir = model_copy(tiny_crnn_folder, tmp_path / "run")
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    with LocalHub(token=HUB_TOKEN) as hub, caplog.at_level(logging.INFO):
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
        assert cli_main(["push", str(run_dir), "--repo-id", "me/ser-demo", "--no-card"]) == 0
        # The Hub client's HTTP requests are logged with --verbose only (issue 42: one line per request at INFO).
        assert not [record for record in caplog.records if record.name.startswith(("httpx", "httpcore"))]
        (line,) = capsys.readouterr().out.splitlines()
        assert line.startswith(f"Pushed {run_dir} to {hub.url}/me/ser-demo/commit/")
        pushed = hub.files("me/ser-demo")
    assert pushed["model.safetensors"] == (run_dir / "model.safetensors").read_bytes() and "config.json" in pushed


def test_push_needs_a_repo_id(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["push", str(tmp_path)])
    assert exit_.value.code == 2 and "the following arguments are required: --repo-id" in capsys.readouterr().err


@pytest.mark.parametrize("card", [[], ["--no-card"]])
def test_push_of_a_folder_that_is_not_there_is_answered_before_the_hub_is_asked(tmp_path, monkeypatch, capsys, card):
    def no_hub(*args, **kwargs):
        raise AssertionError("the Hub was asked")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", no_hub)
    missing = tmp_path / "no_such_run"
    assert cli_main(["push", str(missing), "--repo-id", "me/ser-demo", *card]) == 2
    assert (
        capsys.readouterr().err.strip().splitlines()[-1] == f"ser-hf: error: {missing} is not a folder: pass the "
        "output folder of a finished run."
    )
