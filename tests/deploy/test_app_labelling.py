"""The labelling page (``ser-hf app MODEL --label FOLDER``) in a real browser: the clips ``ser-hf suggest`` chose,
answered by click and by key, each answer on disk at once, a reload that loses nothing and opens on the first clip
without an answer; "Adapt" adapts the model in the background (tiny settings), and the "Try" tab then scores a clip
with the adapted model beside the original. Also, without a browser: the page plays only clips inside FOLDER."""

from __future__ import annotations

import logging
import os
import time

import pytest

from ser_hf.adaptation.sheet import SKIP, SheetRow, read_sheet, write_sheet
from tests.adaptation.test_suggest import SPEAKER_REGEX, trained_model, unlabelled_folder  # noqa: F401
from tests.conftest import RAVDESS_SAMPLE

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

gradio = pytest.importorskip("gradio")

from ser_hf.cli.labelling_page import SHEET_RELOADED, build_labelling_app  # noqa: E402
from ser_hf.deploy.app import launch_options  # noqa: E402
from tests.deploy.test_app import browser, free_port  # noqa: E402, F401


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
    # Adapt, in the background, with progress on the page. Two answered clips are too few to adapt on: the page says
    # the model was kept unchanged and why, with no figure, and the Try tab scores with the original alone.
    browser.find_element(By.ID, "adapt-button").click()
    finished = ("Adapted:", "Kept unchanged", "failed")
    wait_for(lambda: any(word in page_text() for word in finished), timeout=300, what="the adaptation")
    assert "Kept unchanged" in page_text() and "Adapted:" not in page_text(), page_text()
    assert "No estimate of the UA on new speakers of your set-up" in page_text()
    browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Try')]").click()
    clip = sorted(RAVDESS_SAMPLE.glob("Actor_08/*.flac"))[3]
    file_input = wait_for(
        lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "input[type=file]") if e.get_attribute("accept")],
        what="the Try tab's upload",
    )
    file_input[-1].send_keys(str(clip))
    wait_for(
        lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid='label-output-value']") if e.text],
        timeout=60,
        what="the model's scores",
    )
    assert not [e for e in browser.find_elements(By.CSS_SELECTOR, "#second-model") if e.is_displayed()]


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


# --- Issue 85: every answer bound to its clip; a missing sheet or a stale selection is one sentence ----------------


@pytest.fixture
def page(tmp_path):
    """The page's requests (no server, no model) over a sheet of four shipped clips."""
    from ser_hf.cli.labelling_page import LabellingPage, LabellingSession

    folder = tmp_path / "recordings"
    folder.mkdir()
    rows = []
    for number, clip in enumerate(sorted(RAVDESS_SAMPLE.glob("Actor_01/*.flac"))[:4]):
        (folder / f"SPA_{number:02d}.flac").symlink_to(clip)
        rows.append(SheetRow(path=f"SPA_{number:02d}.flac", speaker="SPA"))
    sheet = tmp_path / "sheet.csv"
    write_sheet(sheet, rows)
    session = LabellingSession("no-model", folder, sheet, ["angry", "sad"], tmp_path / "adapted")
    return LabellingPage(session), sheet


def labelling_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ser_hf.cli.labelling_page" and r.levelno >= 30]


def test_an_answer_goes_to_the_clip_played_when_the_sheet_was_sorted_on_disk_and_the_page_is_told(page):
    page, sheet = page
    shown, notice, about, audio, *_ = page.open()
    assert shown["path"] == "SPA_00.flac" and notice == "" and about.startswith("Clip 1 of 4") and audio is not None
    write_sheet(sheet, list(reversed(read_sheet(sheet))))  # sorted in a spreadsheet while the page shows clip 1
    shown, notice, *_ = page.answer("angry", shown)
    assert [(row.path, row.label) for row in read_sheet(sheet) if row.label] == [("SPA_00.flac", "angry")]
    assert notice == f"{SHEET_RELOADED}; your answer went to SPA_00.flac, the clip you heard."
    assert shown["path"] == "SPA_03.flac"  # the next clip without an answer, in the sheet's new order
    # The clip shown removed from the sheet meanwhile: nothing written, and the page says so.
    write_sheet(sheet, [row for row in read_sheet(sheet) if row.path != "SPA_03.flac"])
    shown, notice, *_ = page.answer("sad", shown)
    assert [row.label for row in read_sheet(sheet)] == ["", "", "angry"]
    assert notice == f"{SHEET_RELOADED}, and SPA_03.flac is no longer in it: the answer was not written."
    # Unchanged, an answer says nothing and moves on.
    shown, notice, *_ = page.answer("sad", page.open()[0])
    assert notice == "" and [row.label for row in read_sheet(sheet)] == ["sad", "", "angry"]


def test_a_missing_sheet_is_one_sentence_on_the_page_and_one_line_in_the_log(page, caplog):
    page, sheet = page
    shown = page.open()[0]
    sheet.unlink()
    with caplog.at_level(logging.INFO, logger="ser_hf.cli.labelling_page"):
        for request in (lambda: page.step(shown, 1), lambda: page.open(shown), lambda: page.answer("sad", shown)):
            caplog.clear()
            kept, notice, about, audio, progress, table = request()
            assert notice == f"{sheet}: no such labelling sheet (ser-hf suggest writes one)."
            assert about == "No clip to show until the sheet can be read again." and audio is None and table == []
            assert kept == shown
            assert labelling_warnings(caplog) == [f"Labelling page: {notice}"]


@pytest.mark.parametrize("row", ["SPA_01.flac", 1.5, None, True, 7, -1])
def test_a_selection_that_names_no_clip_is_one_sentence_and_one_log_line(page, caplog, row):
    page, sheet = page
    shown = page.open()[0]
    event = gradio.SelectData(None, {"index": [row, 1], "value": "x", "row_value": None})
    with caplog.at_level(logging.INFO, logger="ser_hf.cli.labelling_page"):
        kept, notice, about, *_ = page.select(shown, event)
    assert notice == f"That selection ({row!r}) names no clip of the sheet: choose a row of the table."
    assert kept["path"] == shown["path"] and about.startswith("Clip 1 of 4")
    assert labelling_warnings(caplog) == [f"Labelling page: {notice}"]


def test_a_selection_opens_its_clip_by_path_even_from_a_table_the_sheet_outdated(page, caplog):
    page, sheet = page
    shown = page.open()[0]
    row_of = lambda number: gradio.SelectData(  # noqa: E731
        None, {"index": [number, 1], "value": f"SPA_0{number}.flac", "row_value": [number + 1, f"SPA_0{number}.flac"]}
    )
    assert page.select(shown, row_of(2))[0]["path"] == "SPA_02.flac"
    write_sheet(sheet, list(reversed(read_sheet(sheet))))
    kept, notice, about, *_ = page.select(shown, row_of(2))  # row 3 of the old table: SPA_02, now row 2
    assert kept["path"] == "SPA_02.flac" and about.startswith("Clip 2 of 4") and notice == f"{SHEET_RELOADED}."
    # Without the row's path, a row number of an outdated table is not trusted.
    kept, notice, *_ = page.select(shown, gradio.SelectData(None, {"index": [2, 1], "value": "x"}))
    assert kept["path"] == "SPA_00.flac" and notice == f"{SHEET_RELOADED}: choose the clip again in the table below."


@pytest.mark.browser
def test_in_the_browser_a_sheet_sorted_mid_session_gets_the_answer_on_the_clip_shown(browser, labelling):  # noqa: F811
    from selenium.webdriver.common.by import By

    app, url, folder, sheet = labelling
    labels = app.labelling_session.labels
    rows = read_sheet(sheet)
    page_text = lambda: browser.find_element(By.TAG_NAME, "body").text  # noqa: E731
    browser.get(url)
    wait_for(lambda: f"Clip 1 of {len(rows)}" in page_text(), what="the first clip")
    assert rows[0].path in page_text()
    write_sheet(sheet, list(reversed(rows)))  # a spreadsheet's sort while the page plays the first clip
    browser.find_element(By.ID, "answer-0").click()
    wait_for(lambda: SHEET_RELOADED in page_text(), what="the page told of the sheet's change")
    assert [(row.path, row.label) for row in read_sheet(sheet) if row.label] == [(rows[0].path, labels[0])]
    assert f"your answer went to {rows[0].path}, the clip you heard" in page_text()


@pytest.mark.browser
def test_in_the_browser_a_deleted_sheet_then_next_is_one_sentence_and_one_log_line(
    browser,  # noqa: F811
    labelling,
    caplog,
    capfd,
):
    from selenium.webdriver.common.by import By

    app, url, folder, sheet = labelling
    page_text = lambda: browser.find_element(By.TAG_NAME, "body").text  # noqa: E731
    browser.get(url)
    wait_for(lambda: "Clip 1 of" in page_text(), what="the first clip")
    sheet.unlink()
    missing = f"{sheet}: no such labelling sheet (ser-hf suggest writes one)."
    with caplog.at_level(logging.INFO, logger="ser_hf.cli.labelling_page"):
        browser.find_element(By.ID, "label-next").click()
        wait_for(lambda: missing in page_text(), what="the missing sheet said on the page")
        assert "Error" not in page_text()
        browser.refresh()
        wait_for(lambda: missing in page_text(), what="the missing sheet said on the reloaded page")
        time.sleep(0.5)
        assert "Error" not in page_text()
    assert labelling_warnings(caplog) == [f"Labelling page: {missing}"] * 2
    assert "Traceback" not in capfd.readouterr().err


def test_a_second_app_on_a_served_sheet_warns_at_start_and_a_closed_app_frees_it(labelling, trained_model, caplog):  # noqa: F811
    app, url, folder, sheet = labelling
    with caplog.at_level(logging.WARNING, logger="ser_hf.adaptation.sheet"):
        second = build_labelling_app(str(trained_model), folder, sheet)
    assert [r.getMessage() for r in caplog.records if r.name == "ser_hf.adaptation.sheet"] == [
        f"{sheet} is served by another ser-hf app already (it holds {sheet.parent / f'.{sheet.name}.served'}): every "
        "answer of both is kept, each written under a lock, but each page sees the other's answers only at its next "
        "step; stop one of the apps to label alone."
    ]
    second.close()
    app.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ser_hf.adaptation.sheet"):
        third = build_labelling_app(str(trained_model), folder, sheet)
    third.close()
    assert [r for r in caplog.records if r.name == "ser_hf.adaptation.sheet"] == []


def test_selections_sent_over_http_as_a_hostile_page_would_are_answered_without_a_traceback(labelling, caplog, capfd):
    """The table's select event driven over HTTP, as the page's own code sends it, with a path, a float and null as
    the row: each is one sentence back and one line in the log (were four tracebacks)."""
    import json

    import httpx

    app, url, folder, sheet = labelling
    (select,) = [block for block in app.fns.values() if getattr(block.fn, "__name__", "") == "chosen"]
    base = url.rstrip("/")
    notices = []
    with caplog.at_level(logging.INFO, logger="ser_hf.cli.labelling_page"):
        for number, row in enumerate([read_sheet(sheet)[1].path, 1.5, None]):
            session = f"hostile{number}"
            joined = httpx.post(
                f"{base}/gradio_api/queue/join",
                json={
                    "data": [None],
                    "event_data": {"index": [row, 1], "value": "x"},
                    "fn_index": select._id,
                    "trigger_id": select.targets[0][0],
                    "session_hash": session,
                },
                timeout=30,
            )
            assert joined.status_code == 200, joined.text
            with httpx.stream(
                "GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}, timeout=60
            ) as r:
                for line in r.iter_lines():
                    message = json.loads(line[5:]) if line.startswith("data:") else {}
                    if message.get("msg") == "process_completed":
                        assert message["success"] is True, message
                        notices.append(message["output"]["data"][1])
                        break
    assert notices == [
        f"That selection ({row!r}) names no clip of the sheet: choose a row of the table."
        for row in [read_sheet(sheet)[1].path, 1.5, None]
    ]
    assert len(labelling_warnings(caplog)) == 3
    assert "Traceback" not in capfd.readouterr().err


def test_an_adaptation_that_kept_the_model_says_kept_unchanged_and_offers_nothing_new_to_try(page, monkeypatch):
    """The adaptation kept the model as it was: the page says "kept unchanged" and why, never "Adapted", and its Try
    tab offers no second model (it would be the original under another name)."""
    import importlib
    import json

    from ser_hf.adaptation.selection import estimate_line
    from ser_hf.cli.labelling_page import AdaptationJob

    page, _ = page
    selection = {
        "chosen": "unchanged",
        "unchanged": True,
        "too_few_clips": "fewer than 5 labelled clips of two emotions",
        "estimate": {"ua": None, "low": None, "high": None, "too_few": "4 scored labelled clip(s) are too few"},
        "before_adaptation": None,
        "cross_validation": "leave-one-speaker-out (2 speakers)",
    }
    selection["estimate_line"] = estimate_line(selection)

    def adapted(model, folder, output_dir, **options):
        output_dir.mkdir(parents=True)
        (output_dir / "adaptation.json").write_text(json.dumps({"selection": selection}))

    monkeypatch.setattr(importlib.import_module("ser_hf.adaptation.adapt"), "adapt", adapted)
    session = page.session
    job = AdaptationJob(output_dir=session.output_dir / "adaptation-1")
    session.job = job
    session._adapt(job, [])
    status = session.adaptation_status()
    assert job.state == "done" and job.unchanged and job.recognizer is None
    assert status.startswith("Kept unchanged") and "Adapted" not in status
    assert "fewer than 5 labelled clips of two emotions" in status
    assert session.adapted_model() is None
