"""The labelling page (``ser-hf app MODEL --label FOLDER``) in a real browser: the clips ``ser-hf suggest`` chose,
answered by click and by key, each answer on disk at once, a reload that loses nothing and opens on the first clip
without an answer; "Adapt" adapts the model in the background (tiny settings), and the "Try" tab then scores a clip
with the adapted model beside the original. Also, without a browser: the page plays only clips inside FOLDER."""

from __future__ import annotations

import os
import time

import pytest

from ser_hf.adaptation.sheet import SKIP, read_sheet, write_sheet
from tests.adaptation.test_suggest import SPEAKER_REGEX, trained_model, unlabelled_folder  # noqa: F401
from tests.conftest import RAVDESS_SAMPLE

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

gradio = pytest.importorskip("gradio")

from ser_hf.adaptation.labelling_page import build_labelling_app  # noqa: E402
from ser_hf.deploy.app import launch_options  # noqa: E402
from tests.deploy.test_app import browser, free_port  # noqa: E402, F401

#: The adaptation's settings on the page: as small as a test affords.
TINY_ADAPTATION = {"num_train_epochs": 1, "soup_size": 1}


def wait_for(condition, timeout: float = 20.0, what: str = "the condition"):
    """Poll `condition` until it is true (returned), or fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def labelling(tmp_path, trained_model):  # noqa: F811
    folder = tmp_path / "recordings"
    unlabelled_folder(folder, {"05": "SPA", "06": "SPB"}, per=2)
    sheet = tmp_path / "sheet.csv"
    app = build_labelling_app(
        str(trained_model),
        folder,
        sheet,
        speaker_regex=SPEAKER_REGEX,
        per_emotion=1,
        overrides=TINY_ADAPTATION,
    )
    _, url, _ = app.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, **launch_options()
    )
    try:
        yield app, url, folder, sheet
    finally:
        app.close()


@pytest.mark.browser
def test_labelling_by_click_and_key_survives_a_reload_then_adapt_and_try_the_adapted_model(browser, labelling):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    app, url, folder, sheet = labelling
    labels = app.labelling_session.labels
    rows = read_sheet(sheet)
    page_text = lambda: browser.find_element(By.TAG_NAME, "body").text  # noqa: E731
    browser.get(url)
    wait_for(lambda: f"Clip 1 of {len(rows)}" in page_text(), what="the first clip")
    # By click: the first emotion's button; on disk within a second.
    browser.find_element(By.ID, "answer-0").click()
    wait_for(lambda: read_sheet(sheet)[0].label == labels[0], timeout=1.5, what="the clicked answer on disk")
    wait_for(lambda: f"Clip 2 of {len(rows)}" in page_text(), what="the next clip")
    # By key: "2" is the second emotion, "s" skips.
    ActionChains(browser).send_keys("2").perform()
    wait_for(lambda: read_sheet(sheet)[1].label == labels[1], timeout=1.5, what="the answer by key on disk")
    wait_for(lambda: f"Clip 3 of {len(rows)}" in page_text(), what="the third clip")
    ActionChains(browser).send_keys("s").perform()
    wait_for(lambda: read_sheet(sheet)[2].label == SKIP, timeout=1.5, what="the skip on disk")
    # A reload loses nothing and opens on the first clip without an answer.
    browser.refresh()
    wait_for(lambda: f"Clip 4 of {len(rows)}" in page_text(), what="the page reloaded on clip 4")
    assert f"3 of {len(rows)} clips answered" in page_text()
    assert [row.label for row in read_sheet(sheet)[:4]] == [labels[0], labels[1], SKIP, ""]
    # A row of the table opens its clip.
    cell = f"//*[@id='label-table']//*[normalize-space(text())='{rows[5].path}']"
    wait_for(lambda: browser.find_elements(By.XPATH, cell), what="the table's sixth row")[-1].click()
    wait_for(lambda: f"Clip 6 of {len(rows)}" in page_text(), what="the clip of the table's sixth row")
    # Adapt, in the background, with progress on the page; then the adapted model is tried beside the original.
    browser.find_element(By.ID, "adapt-button").click()
    wait_for(lambda: "Adapted:" in page_text() or "failed" in page_text(), timeout=300, what="the adaptation")
    assert "Adapted:" in page_text(), page_text()
    browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Try')]").click()
    clip = sorted(RAVDESS_SAMPLE.glob("Actor_08/*.flac"))[3]
    file_input = wait_for(
        lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "input[type=file]") if e.get_attribute("accept")],
        what="the Try tab's upload",
    )
    file_input[-1].send_keys(str(clip))
    adapted = wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#second-model [data-testid='label-output-value']"),
        timeout=60,
        what="the adapted model's scores",
    )
    assert adapted[0].text in {labels[0], labels[1]}  # the adapted model chooses among the answered emotions


def test_the_page_plays_only_clips_inside_the_folder(labelling, tmp_path):
    app, _, folder, sheet = labelling
    session = app.labelling_session
    rows = read_sheet(sheet)
    rate, samples = session.clip_audio(rows[0])
    assert rate == 16000 and len(samples) > 16000
    outside = tmp_path / "outside.flac"
    outside.symlink_to(next(RAVDESS_SAMPLE.glob("Actor_01/*.flac")))
    rows[0].path = "../outside.flac"
    write_sheet(sheet, rows)
    with pytest.raises(ValueError, match="is not inside"):
        session.clip_audio(read_sheet(sheet)[0])


def test_a_browser_test_without_chromium_fails_where_ci_requires_the_browser(monkeypatch):
    from tests.deploy import test_app

    monkeypatch.setattr(test_app, "CHROMIUM", None)
    monkeypatch.delenv(test_app.REQUIRE_BROWSER, raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs Chromium"):
        test_app.require_chromium()
    monkeypatch.setenv(test_app.REQUIRE_BROWSER, "1")
    with pytest.raises(pytest.fail.Exception, match="SER_HF_REQUIRE_BROWSER=1 .* a failure"):
        test_app.require_chromium()
