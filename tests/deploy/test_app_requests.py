"""The web app answers requests a browser never sends in words, with one log line and no traceback: a path it was
never sent (``../..``, absolute, URL-encoded, or a file never uploaded) given to ``/classify``, and an upload whose
multipart body holds no file (issue 67, point 14). Served on 127.0.0.1 only."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest_models import build_tiny
from tests.deploy.test_predict import _randomize

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

gradio = pytest.importorskip("gradio")
httpx = pytest.importorskip("httpx")

from ser_hf.deploy.app import build_app, launch_options  # noqa: E402
from tests.deploy.test_app import free_port  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app_model")
    model, feature_extractor = build_tiny("crnn")
    _randomize(model).save_pretrained(folder)
    feature_extractor.save_pretrained(folder)
    app = build_app(str(folder))
    _, url, _ = app.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, **launch_options()
    )
    try:
        yield url.rstrip("/")
    finally:
        app.close()


def _classify_error(url: str, path: str) -> dict:
    """What ``/classify`` answers for a file payload naming `path`: the data of its error event."""
    payload = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}]}
    event = httpx.post(f"{url}/gradio_api/call/classify", json=payload, timeout=30).json()["event_id"]
    stream = httpx.get(f"{url}/gradio_api/call/classify/{event}", timeout=30).text
    lines = stream.splitlines()
    assert "event: error" in lines, stream
    return json.loads(lines[lines.index("event: error") + 1].removeprefix("data: "))


@pytest.mark.parametrize("path", ["../../../etc/passwd", "/etc/passwd", "..%2F..%2Fetc%2Fpasswd", "never_sent.wav"])
def test_a_file_never_uploaded_is_refused_in_words_and_one_log_line(served, path, caplog, capfd):
    with caplog.at_level("WARNING", logger="ser_hf.deploy.app"):
        error = _classify_error(served, path)
    name = path.rsplit("/", 1)[-1]
    assert error["error"] == (
        f"This app classifies recordings uploaded to it or recorded on its page; {name!r} was not: upload it first."
    )
    refused = [record.getMessage() for record in caplog.records if record.name == "ser_hf.deploy.app"]
    assert refused == [f"Refused {name!r}: not a file uploaded to this app"]
    assert "Traceback" not in capfd.readouterr().err


def test_an_upload_without_a_file_is_a_400_that_says_so(served, caplog):
    boundary = "ser-hf-test"
    broken = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.wav"\r\n\r\nRIFF'
    with caplog.at_level("WARNING", logger="ser_hf.deploy.app"):
        response = httpx.post(
            f"{served}/gradio_api/upload",
            content=broken.encode(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=30,
        )
        empty = httpx.post(f"{served}/gradio_api/upload", files={"other": ("a.txt", b"x")}, timeout=30)
    for answer in (response, empty):
        assert answer.status_code == 400, answer.text
        assert answer.text == (
            "The upload holds no file: send multipart/form-data with the recording in a 'files' field."
        )
    refused = [record.getMessage() for record in caplog.records if record.name == "ser_hf.deploy.app"]
    assert refused == ["Refused an upload: its multipart body holds no file"] * 2
