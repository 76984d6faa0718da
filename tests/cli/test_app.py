"""``ser-hf app MODEL`` as a user runs it (the server's launch replaced by a recorder): its upload and recording
limits, the one-line errors of its options, and the install hint without Gradio. The app itself (uploads, the
timeline, the Space) is tested in tests/deploy/test_app.py."""

from __future__ import annotations

import os
import sys

import pytest

from ser_hf.cli import main as cli_main

# Before gradio is imported: no analytics, no version check, no telemetry from the client.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

gradio = pytest.importorskip("gradio")

from ser_hf.deploy.app import MISSING_GRADIO, build_app  # noqa: E402


def test_without_gradio_the_app_says_how_to_install_it(tiny_crnn_folder, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    assert cli_main(["app", str(tiny_crnn_folder)]) == 2
    assert capsys.readouterr().err.strip() == f"ser-hf: error: {MISSING_GRADIO}"
    with pytest.raises(ImportError, match=r"pip install 'ser-hf\[app\]'"):
        build_app(str(tiny_crnn_folder))


def test_ser_hf_app_launches_with_an_upload_limit_and_deletes_its_files(tiny_crnn_folder, monkeypatch, capsys):
    from ser_hf.deploy.app import DELETE_CACHE, MAX_UPLOAD_MB

    launched = []
    monkeypatch.setattr(gradio.Blocks, "launch", lambda app, **options: launched.append((app, options)))
    monkeypatch.setattr(gradio.Blocks, "block_thread", lambda app: None)
    assert cli_main(["app", str(tiny_crnn_folder)]) == 0
    # Gradio's start-up hint ("set share=True in launch()") is quieted; ser-hf's names the flag.
    assert launched[0][1]["quiet"] is True
    assert "served at http://127.0.0.1:7860/ (--share adds a public link)" in capsys.readouterr().out
    assert cli_main(["app", str(tiny_crnn_folder), "--max-upload-mb", "2.5", "--max-recording-minutes", "1"]) == 0
    (default, default_options), (small, small_options) = launched
    assert MAX_UPLOAD_MB == 50 and default_options["max_file_size"] == 50 * 2**20
    assert small_options["max_file_size"] == int(2.5 * 2**20)
    assert default.delete_cache == small.delete_cache == DELETE_CACHE
    capsys.readouterr()
    for flag in ("--max-upload-mb", "--max-recording-minutes"):
        assert cli_main(["app", str(tiny_crnn_folder), flag, "0"]) == 2
        assert capsys.readouterr().err.strip() == f"ser-hf: error: {flag} must be positive, got 0.0."
    assert len(launched) == 2  # refused before the model was loaded


def test_a_negative_timeline_threshold_is_refused_before_the_model_is_loaded(tmp_path, monkeypatch, capsys):
    launched = []
    monkeypatch.setattr(gradio.Blocks, "launch", lambda app, **options: launched.append(options))
    with pytest.raises(SystemExit) as exit_:
        cli_main(["app", str(tmp_path / "never-loaded"), "--timeline-seconds", "-1"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "ser-hf app: error: argument --timeline-seconds: must be 0 or more seconds (inf: never), got '-1'"
    )
    with pytest.raises(SystemExit) as exit_:
        cli_main(["app", str(tmp_path / "never-loaded"), "--port", "http"])
    assert exit_.value.code == 2 and "argument --port: invalid int value: 'http'" in capsys.readouterr().err
    assert launched == []


def test_a_busy_port_names_the_port_flag(tiny_crnn_folder, capsys):
    """Gradio's message said to set GRADIO_SERVER_PORT or pass server_port to launch(); the flag is --port."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        assert cli_main(["app", str(tiny_crnn_folder), "--port", str(port)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == (
        f"ser-hf: error: Cannot serve on 127.0.0.1: port {port} is in use (or cannot be opened there): pass another "
        "--port, or stop what holds it."
    )
    assert "GRADIO_SERVER_PORT" not in "\n".join(lines) and "Traceback" not in "\n".join(lines)
