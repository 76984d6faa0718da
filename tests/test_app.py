"""``ser-hf app``, used as a user would: the app served on 127.0.0.1 and called through ``gradio_client`` with real
clips gives the scores ``ser-hf predict`` gives, and a long recording's emotion over time; the same file served as a
Space (``python app.py`` with ``SER_HF_MODEL``); the error without Gradio. Nothing reaches the network: analytics
off, no share link, the model a local folder."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser_hf.cli import main as cli_main
from tests.conftest_models import SAMPLE_DIR, build_tiny, load_clip
from tests.test_predict import _randomize

# Before gradio is imported: no analytics, no version check, no telemetry from the client.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

gradio = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402

from ser_hf.app import MISSING_GRADIO, build_app  # noqa: E402
from ser_hf.timeline import emotion_timeline  # noqa: E402

APP_FILE = Path(__file__).resolve().parents[1] / "ser_hf" / "app.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(app) -> str:
    """Serve ``app`` on 127.0.0.1 (a free port) in the background; its URL."""
    _, url, _ = app.launch(
        server_name="127.0.0.1", server_port=free_port(), share=False, prevent_thread_lock=True, quiet=True
    )
    return url


def client(url: str, tmp_path: Path) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    """A tiny CRNN (random weights, RAVDESS labels) saved as a trained model would be."""
    folder = tmp_path_factory.mktemp("app_model")
    model, feature_extractor = build_tiny("crnn")
    _randomize(model).save_pretrained(folder)
    feature_extractor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def served(model_folder):
    """The app of the tiny model, served on 127.0.0.1 for the module's tests; closed at the end."""
    app = build_app(str(model_folder), timeline_seconds=10.0)
    try:
        yield launch(app)
    finally:
        app.close()


def predicted_scores(model: Path, clip: Path, capsys) -> dict[str, float]:
    """What ``ser-hf predict MODEL CLIP`` prints for the clip."""
    assert cli_main(["predict", str(model), str(clip), "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[-1])["scores"]


def label_scores(label: dict) -> dict[str, float]:
    """A ``gr.Label`` output as ``{label: score}``."""
    return {item["label"]: item["confidence"] for item in label["confidences"]}


def test_app_scores_a_real_clip_as_ser_hf_predict_does(served, model_folder, tmp_path, capsys):
    clip = sorted(SAMPLE_DIR.glob("Actor_01/*.flac"))[5]
    label, plot, segments = client(served, tmp_path).predict(handle_file(str(clip)), api_name="/classify")
    expected = predicted_scores(model_folder, clip, capsys)
    assert label_scores(label) == pytest.approx(expected, abs=1e-5)
    assert label["label"] == max(expected, key=expected.get)
    assert plot["visible"] is False and segments["visible"] is False  # a 3-s clip gets no timeline


def test_app_gives_a_long_recording_its_emotion_over_time(served, model_folder, tmp_path, capsys):
    silence = np.zeros(16000, dtype=np.float32)
    clips = [load_clip(index) for index in (0, 9, 20, 29)]
    recording = np.concatenate([part for clip in clips for part in (clip, silence)])
    path = tmp_path / "long.wav"
    soundfile.write(path, recording, 16000)
    assert len(recording) / 16000 > 10
    label, plot, segments = client(served, tmp_path).predict(handle_file(str(path)), api_name="/classify")
    assert label_scores(label) == pytest.approx(predicted_scores(model_folder, path, capsys), abs=1e-5)
    assert plot["visible"] is True and Path(plot["value"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = segments["value"]
    assert segments["visible"] is True and table["headers"] == ["start", "end", "label", "score"]
    expected = emotion_timeline(str(model_folder), path).segments  # what ser_hf.timeline finds in the same file
    assert len(expected) >= 2
    assert [row[:3] for row in table["data"]] == [[round(s.start, 2), round(s.end, 2), s.label] for s in expected]


def test_space_mode_serves_the_model_named_by_the_environment(model_folder, tmp_path, monkeypatch, capsys):
    """``python app.py`` in a Space: the file copied on its own, the model from ``SER_HF_MODEL``."""
    space = tmp_path / "space"
    space.mkdir()
    shutil.copy(APP_FILE, space / "app.py")
    served = []
    original_launch = gradio.Blocks.launch

    def launch_in_background(app, **options):
        served.append(app)
        assert options == {}  # a Space's address comes from GRADIO_SERVER_NAME/PORT, which gradio reads itself
        return original_launch(
            app, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
        )

    monkeypatch.setattr(gradio.Blocks, "launch", launch_in_background)
    monkeypatch.delenv("SER_HF_MODEL", raising=False)
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(space / "app.py"), run_name="__main__")
    assert exit_.value.code == 2 and "No model to serve: set SER_HF_MODEL" in capsys.readouterr().err
    monkeypatch.setenv("SER_HF_MODEL", str(model_folder))
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(space / "app.py"), run_name="__main__")
    (app,) = served
    try:
        assert exit_.value.code == 0
        clip = sorted(SAMPLE_DIR.glob("Actor_02/*.flac"))[0]
        label, _, _ = client(app.local_url, tmp_path).predict(handle_file(str(clip)), api_name="/classify")
        assert label_scores(label) == pytest.approx(predicted_scores(model_folder, clip, capsys), abs=1e-5)
    finally:
        app.close()


def test_without_gradio_the_app_says_how_to_install_it(model_folder, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    assert cli_main(["app", str(model_folder)]) == 2
    assert capsys.readouterr().err.strip() == f"ser-hf: error: {MISSING_GRADIO}"
    with pytest.raises(ImportError, match=r"pip install 'ser-hf\[app\]'"):
        build_app(str(model_folder))
