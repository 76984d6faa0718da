"""``ser-hf app``, used as a user would: the app served on 127.0.0.1 and called through ``gradio_client`` with real
clips gives the scores ``ser-hf predict`` gives, and a long recording's emotion over time; the same file served as a
Space (``python app.py`` with ``SER_HF_MODEL``); the error without Gradio. Nothing reaches the network: analytics
off, no share link, the model a local folder."""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser_hf.cli import main as cli_main
from tests.conftest_models import SAMPLE_DIR, build_tiny, load_clip
from tests.deploy.test_predict import _randomize

# Before gradio is imported: no analytics, no version check, no telemetry from the client.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

gradio = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402

from ser_hf.deploy.app import GRADIO_MISSING_TEXT, build_app, launch_options  # noqa: E402
from ser_hf.deploy.timeline import emotion_timeline  # noqa: E402

APP_FILE = Path(__file__).resolve().parents[2] / "ser_hf" / "space_app.py"


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
    expected = emotion_timeline(str(model_folder), path).segments  # what ser_hf.deploy.timeline finds in the same file
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
        # A Space's address comes from GRADIO_SERVER_NAME/PORT, which gradio reads itself; uploads are bounded.
        assert options["max_file_size"] == 50 * 2**20 and options["i18n"].translations == {"en": GRADIO_MISSING_TEXT}
        return original_launch(
            app, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, **options
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


# --- Issue 34: bounded uploads, refusals in one log line, temporary files deleted when the app stops ---------------


def test_app_refuses_uploads_over_the_limit_before_storing_them(model_folder, tmp_path):
    import httpx

    app = build_app(str(model_folder))
    _, url, _ = app.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        **launch_options(max_upload_mb=0.1),
    )
    try:
        big = tmp_path / "big.wav"
        soundfile.write(big, np.zeros(16000 * 4, dtype=np.float32), 16000)  # 4 s of float WAV: 256 KB
        with big.open("rb") as handle:
            response = httpx.post(f"{url.rstrip('/')}/gradio_api/upload", files={"files": handle}, timeout=30)
        assert response.status_code == 413 and "maximum allowed size" in response.text
        assert not app.upload_file_set
        with pytest.raises(ValueError, match="exceeds the maximum file size"):  # the client is told the limit too
            client(url, tmp_path).predict(handle_file(str(big)), api_name="/classify")
        clip = sorted(SAMPLE_DIR.glob("Actor_01/*.flac"))[5]  # under 100 KB: classified
        label, _, _ = client(url, tmp_path).predict(handle_file(str(clip)), api_name="/classify")
        assert label["label"]
    finally:
        app.close()


def test_app_refusals_are_one_log_line_and_its_files_go_when_it_stops(model_folder, tmp_path, caplog, capfd):
    from gradio_client.exceptions import AppError

    app = build_app(str(model_folder), max_recording_minutes=0.05)  # three seconds
    url = launch(app)
    try:
        long = tmp_path / "long.wav"
        soundfile.write(long, np.concatenate([load_clip(0), load_clip(1)]), 16000)
        corrupt = tmp_path / "corrupt.wav"
        corrupt.write_bytes(b"RIFF" + b"\0" * 200)
        with caplog.at_level("WARNING", logger="ser_hf.deploy.app"):
            with pytest.raises(AppError, match=r"This recording is 0\.\d minutes long; this app takes recordings"):
                client(url, tmp_path).predict(handle_file(str(long)), api_name="/classify")
            with pytest.raises(AppError, match="This recording cannot be classified: "):
                client(url, tmp_path).predict(handle_file(str(corrupt)), api_name="/classify")
        refused = [record.getMessage() for record in caplog.records if record.name == "ser_hf.deploy.app"]
        assert [message.split(":")[0] for message in refused] == ["Refused long.wav", "Refused corrupt.wav"]
        assert all("\n" not in message for message in refused)
        assert "Traceback" not in capfd.readouterr().err
        received = [Path(file) for files in app.temp_file_sets for file in files]
        assert {path.name for path in received} >= {"long.wav", "corrupt.wav"}
        assert all(path.is_file() for path in received)
    finally:
        app.close()
    for _ in range(100):  # the server's shutdown deletes them
        if not any(path.exists() for path in received):
            break
        time.sleep(0.1)
    assert [path for path in received if path.exists()] == []


def test_a_recording_whose_header_gives_no_duration_is_decoded_no_further_than_the_limit(tmp_path, monkeypatch):
    """The app's recording limit holds for a stream that declares no duration (a browser's WebM): it is decoded up to
    the limit and refused there, never decoded whole."""
    from types import SimpleNamespace

    from ser_hf.data.corpora import InvalidClipError
    from ser_hf.deploy.app import EmotionRecognizer

    def no_duration(path):
        raise InvalidClipError(path, "the header declares no duration")

    classifier = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(id2label={0: "angry", 1: "sad"})))
    recognizer = EmotionRecognizer(classifier, max_recording_minutes=0.05)  # three seconds
    long, short = tmp_path / "long.wav", tmp_path / "short.wav"
    soundfile.write(long, np.concatenate([load_clip(0), load_clip(1)]), 16000)
    soundfile.write(short, load_clip(0)[: 2 * 16000], 16000)
    monkeypatch.setattr("ser_hf.data.corpora.probe_audio", no_duration)
    read = []
    original = soundfile.SoundFile.read
    monkeypatch.setattr(
        soundfile.SoundFile,
        "read",
        lambda self, frames=-1, *a, **k: read.append(frames) or original(self, frames, *a, **k),
    )
    with pytest.raises(ValueError, match=r"^This recording is longer than 0\.05 minutes; this app takes recordings"):
        recognizer.check_length(str(long))
    assert read == [3 * 16000 + 1]
    recognizer.check_length(str(short))


# --- Issue 33: the page in a real browser -------------------------------------------------------------------------

#: Debian's packages: chromium, and chromium-driver's chromedriver, which selenium drives (found on PATH, never
#: downloaded).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: Set to 1 (``.ci/run`` does), a browser test that would skip for want of Chromium fails instead.
REQUIRE_BROWSER = "SER_HF_REQUIRE_BROWSER"
#: A Gradio interface key shown as it is, untranslated ("common.complete"): lower-case words joined by a dot.
RAW_KEY = re.compile(r"\b[a-z]+(?:_[a-z]+)*\.[a-z]+(?:_[a-z]+)*\b")


def require_chromium() -> None:
    """Skip where Chromium or its driver is missing; fail instead with ``SER_HF_REQUIRE_BROWSER=1`` (CI)."""
    if not (CHROMIUM and CHROMEDRIVER):
        missing = (
            "needs Chromium and its driver (Debian: apt-get install chromium chromium-driver; make setup does as root)"
        )
        if os.environ.get(REQUIRE_BROWSER) == "1":
            pytest.fail(f"{missing}: {REQUIRE_BROWSER}=1 (set by .ci/run) makes a skipped browser test a failure")
        pytest.skip(missing)


@pytest.fixture
def browser(monkeypatch):
    """Headless Chromium driven by selenium, in English; skipped where Chromium is not installed (a failure with
    SER_HF_REQUIRE_BROWSER=1)."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_AVOID_STATS", "true")  # Selenium Manager sends no usage statistics
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=en-US"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1100")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.slow  # end to end, the longest of its file: make test-slow (CI runs both)
@pytest.mark.browser
def test_the_page_opens_on_upload_and_shows_an_uploaded_clips_labels(browser, model_folder, capsys):
    """The app as ser-hf app serves it, in Chromium: it opens on the upload area (a server has no microphone),
    a shipped clip uploaded there is classified with the scores ser-hf predict gives, and no text of the page is a
    raw Gradio key."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    app = build_app(str(model_folder))
    _, url, _ = app.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, **launch_options()
    )
    try:
        browser.get(url)
        wait = WebDriverWait(browser, 20)
        page_text = lambda: browser.find_element(By.TAG_NAME, "body").text  # noqa: E731
        wait.until(lambda page: "Classify" in page_text())
        assert "Click to Upload" in page_text() and "microphone" not in page_text().lower(), page_text()
        clip = sorted(SAMPLE_DIR.glob("Actor_01/*.flac"))[5]
        browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(clip))
        expected = predicted_scores(model_folder, clip, capsys)
        # The scores show, then Gradio announces the event's end to screen readers: "Complete", or its raw key.
        label = "[data-testid='label-output-value']"
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, label) and "omplete" in page_text())
        assert browser.find_element(By.CSS_SELECTOR, label).text == max(expected, key=expected.get)
        rows = [
            row.text.splitlines() for row in browser.find_elements(By.CSS_SELECTOR, "[data-testid$=confidence-set]")
        ]
        shown = {name: float(percent.rstrip("%")) / 100 for name, percent in rows}  # each row: "happy", "18%"
        assert shown == pytest.approx(expected, abs=0.006)
        assert RAW_KEY.findall(page_text()) == [] and "Complete" in page_text()
    finally:
        app.close()
