"""The labelling page of the web app (``ser-hf app MODEL --label FOLDER``): the clips ``ser-hf suggest`` chose, each
with a player and a button (and a key) per emotion of the model, "skip" and "not speech"; every answer written to the
sheet at once; an "Adapt" button that adapts the model on the answers in the background, then serves the adapted
model in the app's "Try" tab beside the original, with its report.

It extends the app of :func:`ser_hf.deploy.app.build_app` (its "Try" tab, limits and refusals unchanged) from this
stage, which may run an adaptation; the deploy stage never imports it. The page only plays clips listed in the sheet
and lying inside FOLDER: the browser never names a path to play, and a row whose path leads outside FOLDER (a
hand-edited sheet) is refused.

Every answer is bound to the clip the page played, never to a row number: the server keeps, per page, the clip it
shows and the order of the sheet it was read from (:class:`LabellingPage`), writes the answer on that clip's row of
the sheet as read at that moment, and, where the sheet was sorted or edited on disk meanwhile, says so on the page
("the sheet changed on disk: reloaded"). A sheet that is missing or unreadable, a clip no longer in the sheet, or a
table selection that names no clip is one sentence on the page and one line in the log, never an error dialog or a
traceback.
"""

from __future__ import annotations

import json
import logging
import numbers
import os
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..adaptation.errors import AdaptationError
from ..adaptation.sheet import (
    NOT_EMOTIONS,
    NOT_SPEECH,
    SKIP,
    ClipNotInSheet,
    SheetRow,
    answer_spelling,
    claim_sheet,
    read_sheet,
    record_answer,
    sheet_order,
)
from ..atomic_files import refuse_output_among
from ..run_record import ADAPTATION_FILE, read_adaptation_record

logger = logging.getLogger(__name__)

#: The keys that answer on the page: the model's emotions take 1, 2, ... in their order, then these.
SKIP_KEY, NOT_SPEECH_KEY = "s", "n"
#: How often the page asks how the adaptation is going, in seconds.
STATUS_SECONDS = 1.0
#: Loggers whose lines the page shows as the adaptation's progress.
PROGRESS_LOGGERS = ("ser_hf", "transformers.trainer")
#: What the page says when the sheet read for a request is not the one it showed (sorted, or rows added or removed).
SHEET_RELOADED = "The sheet changed on disk: reloaded"


@dataclass
class AdaptationJob:
    """One adaptation the page started: its folder, state (``running``, ``done``, ``failed``), last log line, and
    once done the adapted model (an :class:`~ser_hf.deploy.app.EmotionRecognizer`) and its report."""

    output_dir: Path
    started: float = field(default_factory=time.monotonic)
    state: str = "running"
    last_line: str = "starting"
    error: Optional[str] = None
    recognizer: Any = None
    #: The adaptation kept the model as it was (nothing new to try).
    unchanged: bool = False
    report: str = ""
    estimate: str = ""


class _LastLine(logging.Handler):
    def __init__(self, job: AdaptationJob):
        super().__init__(logging.INFO)
        self.job = job

    def emit(self, record: logging.LogRecord) -> None:
        self.job.last_line = record.getMessage().splitlines()[0][:300]


class LabellingSession:
    """The state behind the labelling page: the sheet (read from disk at every request, so that a reload or a second
    tab sees every answer) and the adaptations it started.

    Args:
        model (`str`): the trained model (folder or Hub id) the clips were suggested for and that is adapted.
        folder (`Path`): the recordings the sheet's paths are relative to.
        sheet (`Path`): the labelling sheet.
        labels (`Sequence[str]`): the model's emotions, the page's buttons.
        output_dir (`Path`): where the adapted models go (``adaptation-1``, ``adaptation-2``, ... inside it).
    """

    def __init__(
        self,
        model: str,
        folder: Path,
        sheet: Path,
        labels: Sequence[str],
        output_dir: Path,
        *,
        revision: Optional[str] = None,
        max_recording_minutes: Optional[float] = None,
    ):
        self.model, self.revision = model, revision
        self.folder = folder.expanduser().resolve()
        self.sheet, self.labels, self.output_dir = sheet, list(labels), output_dir
        self.max_recording_minutes = max_recording_minutes
        self.job: Optional[AdaptationJob] = None
        self._job_lock = threading.Lock()
        self.served = None  # the claim on the sheet (claim()), while this app serves it

    @property
    def answers(self) -> list[str]:
        return [*self.labels, SKIP, NOT_SPEECH]

    def rows(self) -> list[SheetRow]:
        return read_sheet(self.sheet)

    def clip_path(self, row: SheetRow) -> Path:
        """The recording of `row`, inside the folder; a path leading outside it is refused."""
        path = Path(os.path.normpath(self.folder / row.path))
        if not path.is_relative_to(self.folder):
            raise ValueError(f"{row.path!r} (in {self.sheet}) is not inside {self.folder}: not served.")
        return path

    def clip_audio(self, row: SheetRow):
        """The clip of `row` decoded for the player, ``(rate, samples)``: the page gets samples, never a path."""
        from ..data.decode import decode_waveform

        limit = None if self.max_recording_minutes is None else self.max_recording_minutes * 60
        samples = decode_waveform(str(self.clip_path(row)), 16000, max_seconds=limit)
        return 16000, (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)  # 16-bit, as the player sends it

    def answer(self, path: str, label: str) -> list[SheetRow]:
        """Write `label` as the answer of the clip `path` (the one the page played), at once, on that clip's row of
        the sheet as read now (:func:`~.sheet.record_answer`); returns the sheet's rows."""
        rows = record_answer(self.sheet, path, label, self.labels)
        logger.info("Answer: %s -> %s", path, label)
        return rows

    def claim(self) -> None:
        """Mark the sheet as served by this app (:func:`~.sheet.claim_sheet`: a second app on it warns at start)."""
        self.served = claim_sheet(self.sheet)

    def release(self) -> None:
        """Let another app serve the sheet without a warning (also done by the end of the process)."""
        served, self.served = self.served, None
        if served is not None:
            served.release()

    def progress(self, rows: Sequence[SheetRow]) -> str:
        """Answers so far per emotion, skipped and not speech, as one line of Markdown."""
        counts = {answer: 0 for answer in self.answers}
        for row in rows:
            spelling = answer_spelling(row.label)
            answer = spelling if spelling in NOT_EMOTIONS else row.label
            if answer in counts:
                counts[answer] += 1
        answered = sum(counts.values())
        parts = [f"{answer} **{count}**" for answer, count in counts.items()]
        return f"{answered} of {len(rows)} clips answered: " + " · ".join(parts)

    def start_adaptation(self, test_speakers: Sequence[str] = ()) -> AdaptationJob:
        """Adapt the model on the sheet's answers in a background thread, into the next ``adaptation-N`` folder; one
        at a time."""
        with self._job_lock:
            if self.job is not None and self.job.state == "running":
                raise ValueError("An adaptation is running already: wait for it to end.")
            number = 1
            while (self.output_dir / f"adaptation-{number}").exists():
                number += 1
            job = AdaptationJob(output_dir=self.output_dir / f"adaptation-{number}")
            self.job = job
        thread = threading.Thread(target=self._adapt, args=(job, list(test_speakers)), daemon=True)
        thread.start()
        return job

    def _adapt(self, job: AdaptationJob, test_speakers: list[str]) -> None:
        from ..adaptation.adapt import adapt
        from ..deploy.app import EmotionRecognizer
        from ..deploy.pipelines import load_classifier
        from ..run_folder import REPORT_MARKDOWN

        handler = _LastLine(job)
        progress_loggers = [logging.getLogger(name) for name in PROGRESS_LOGGERS]
        for progress_logger in progress_loggers:
            progress_logger.addHandler(handler)
        try:
            adapt(
                self.model,
                self.folder,
                job.output_dir,
                labels_csv=self.sheet,
                test_speakers=test_speakers,
                revision=self.revision,
            )
            # What the adaptation kept and how good it is expected to be on new speakers (ser-hf adapt's last line).
            record = read_adaptation_record(job.output_dir) or {}
            if not record:
                raise AdaptationError(f"{job.output_dir / ADAPTATION_FILE}: missing; the adaptation wrote no record.")
            job.estimate = record["selection"]["estimate_line"]
            job.unchanged = bool(record["selection"]["unchanged"])
            if not job.unchanged:  # a model kept as it was is the original: nothing new to try
                job.recognizer = EmotionRecognizer(
                    load_classifier(str(job.output_dir)), max_recording_minutes=self.max_recording_minutes
                )
            report = job.output_dir / REPORT_MARKDOWN
            job.report = report.read_text() if report.is_file() else ""
            job.state = "done"
            logger.info("Adapted model served beside the original: %s", job.output_dir)
        except (AdaptationError, ValueError, OSError, RuntimeError) as error:
            job.state, job.error = "failed", str(error)
            logger.warning("The adaptation failed: %s", error)
        except Exception as error:  # a bug must not leave the page saying "Adapting" for ever
            job.state, job.error = "failed", f"{type(error).__name__}: {error}"
            logger.exception("The adaptation failed")
        finally:
            for progress_logger in progress_loggers:
                progress_logger.removeHandler(handler)

    def adaptation_status(self) -> str:
        """The adaptation's state, as one Markdown paragraph."""
        job = self.job
        if job is None:
            return "No adaptation yet: answer some clips of each emotion, then press **Adapt**."
        elapsed = time.monotonic() - job.started
        if job.state == "running":
            return f"Adapting ({elapsed:.0f} s): {job.last_line}"
        if job.state == "failed":
            return f"The adaptation failed: {job.error}"
        if job.unchanged:
            return (
                "Kept unchanged: the adaptation found nothing that beats the model on your held-out speakers (the "
                f"estimate's line that follows says why), so the model stays as it was (saved as it is in "
                f"`{job.output_dir}`). {job.estimate} Label more clips, "
                "of more speakers and of every emotion, then press **Adapt** again."
            )
        return (
            f"Adapted: `{job.output_dir}`. {job.estimate} The **Try** tab scores a recording with it beside the "
            "original (ser-hf predict, app and push take the folder)."
        )

    def adapted_model(self) -> Optional[tuple[str, Any, str]]:
        """The last adapted model, for the "Try" tab: ``(title, recognizer, report)``, or `None`."""
        job = self.job
        if job is None or job.state != "done" or job.unchanged:
            return None
        return f"Adapted model ({job.output_dir.name})", job.recognizer, job.report


def _key_script(keys: Mapping[str, str]) -> str:
    """JavaScript that clicks the answer button of a key (`keys`: key -> button id), outside text fields."""

    return (
        "if (!window.serHfLabelKeys) { window.serHfLabelKeys = true;"
        f" const keys = {json.dumps(dict(keys))};"
        " document.addEventListener('keydown', (event) => {"
        "  const target = event.target; const tag = (target && target.tagName || '').toLowerCase();"
        "  if (tag === 'input' || tag === 'textarea' || event.ctrlKey || event.metaKey || event.altKey) return;"
        "  const id = keys[event.key.toLowerCase()]; if (!id) return;"
        "  const button = document.getElementById(id); if (button) { event.preventDefault(); button.click(); }"
        " }); }"
    )


def answer_keys(labels: Sequence[str]) -> dict[str, str]:
    """The key of each answer: 1, 2, ... for the model's emotions (then a, b, ... past nine), ``s`` and ``n``."""
    keys = [str(number) for number in range(1, 10)] + [chr(code) for code in range(ord("a"), ord("z") + 1)]
    keys = [key for key in keys if key not in (SKIP_KEY, NOT_SPEECH_KEY)]
    return {**dict(zip(labels, keys)), SKIP: SKIP_KEY, NOT_SPEECH: NOT_SPEECH_KEY}


def button_id(number: int) -> str:
    return f"answer-{number}"


def _first_open(rows: Sequence[SheetRow]) -> int:
    return next((index for index, row in enumerate(rows) if not row.answered), 0)


def _selected_row(event) -> Any:
    """The row a table selection names (``event.index``, ``[row, column]``), as the browser sent it."""
    index = getattr(event, "index", None)
    return index[0] if isinstance(index, (list, tuple)) and index else index


def _selected_path(event) -> Optional[str]:
    """The path of the row a table selection names (its second cell), where the browser sent one."""
    values = getattr(event, "row_value", None)
    return values[1] if isinstance(values, (list, tuple)) and len(values) > 1 and isinstance(values[1], str) else None


class LabellingPage:
    """What each request of the labelling page does. A page's state (``shown``, a ``gr.State`` kept on the server)
    is the clip it plays: ``{"index": row, "path": clip, "order": sheet_order(rows)}``. Every request reads the sheet
    again and returns the page's new content, :data:`PAGE_OUTPUTS` in order: ``shown``, a notice (one sentence, or
    empty), the clip's description, its audio, the progress line and the table.

    A request that cannot be done as asked (the sheet missing or unreadable, the clip answered no longer in the sheet,
    a selection that names no clip) returns the page with a notice saying so and logs it in one line; it never raises.
    """

    def __init__(self, session: LabellingSession):
        self.session = session

    def view(self, index: int, rows: Sequence[SheetRow], notice: str = "") -> tuple:
        """The page on the clip of row `index` of `rows` (the nearest row where there is none), with `notice`."""
        session = self.session
        order = sheet_order(rows)
        if not rows:
            shown = {"index": 0, "path": "", "order": order}
            return shown, notice, "The sheet lists no clip.", None, session.progress(rows), []
        index = min(max(index, 0), len(rows) - 1)
        row = rows[index]
        guess = (
            f" The model guesses **{row.model_guess}** ({row.model_probability:.0%})."
            if row.model_guess and row.model_probability is not None
            else ""
        )
        answer = f"**{row.label}**" if row.label else "none yet"
        about = f"Clip {index + 1} of {len(rows)}: `{row.path}` (speaker {row.speaker}).{guess} Your answer: {answer}."
        try:
            audio = session.clip_audio(row)
        except (ValueError, OSError) as error:
            logger.warning("Not played: %s", error)
            audio, about = None, f"{about} It cannot be played: {error}"
        table = [[number + 1, r.path, r.speaker, r.model_guess, r.label] for number, r in enumerate(rows)]
        shown = {"index": index, "path": row.path, "order": order}
        return shown, notice, about, audio, session.progress(rows), table

    def locate(self, shown: Any, rows: Sequence[SheetRow]) -> tuple[int, bool]:
        """The row of `rows` (the sheet read now) holding the clip the page shows, found by its path, and whether the
        sheet changed on disk since the page read it; a page that shows no clip yet gets the first unanswered one."""
        if not isinstance(shown, dict) or not shown.get("path"):
            return _first_open(rows), False
        changed = shown.get("order") != sheet_order(rows)
        for number, row in enumerate(rows):
            if row.path == shown["path"]:
                return number, changed
        index = shown.get("index")
        return (index if isinstance(index, int) else 0), True

    def _trouble(self, shown: Any, message: str) -> tuple:
        """The page after a request that could not be done: `message` as its notice and one line in the log; the
        clip it showed, where the sheet can still be read."""
        logger.warning("Labelling page: %s", message)
        try:
            rows = self.session.rows()
        except (AdaptationError, ValueError, OSError):
            return shown, message, "No clip to show until the sheet can be read again.", None, "", []
        return self.view(self.locate(shown, rows)[0], rows, notice=message)

    def _guarded(self, shown: Any, request) -> tuple:
        try:
            return request()
        except (AdaptationError, ValueError, OSError) as error:  # the sheet, as a user or another program left it
            return self._trouble(shown, str(error))

    def open(self, shown: Any = None) -> tuple:
        """The page opened or reloaded: the first clip without an answer."""

        def request():
            rows = self.session.rows()
            return self.view(_first_open(rows), rows)

        return self._guarded(shown, request)

    def step(self, shown: Any, move: int) -> tuple:
        """The clip `move` rows after (or before) the one the page shows, in the sheet as read now."""

        def request():
            rows = self.session.rows()
            index, changed = self.locate(shown, rows)
            return self.view(index + move, rows, notice=self._reloaded(changed))

        return self._guarded(shown, request)

    def answer(self, label: str, shown: Any) -> tuple:
        """`label` written as the answer of the clip the page shows (found by its path in the sheet as read now);
        then the next clip without an answer."""

        def request():
            path = shown.get("path") if isinstance(shown, dict) else None
            if not path:
                return self._trouble(shown, "No clip was shown, so the answer was not written: answer this one.")
            try:
                rows = self.session.answer(path, label)
            except ClipNotInSheet:
                return self._trouble(
                    shown, f"{SHEET_RELOADED}, and {path} is no longer in it: the answer was not written."
                )
            index, changed = self.locate(shown, rows)
            # The next clip without an answer, from the top again past the last one.
            following = next(
                (i for i in [*range(index + 1, len(rows)), *range(index)] if not rows[i].answered), index + 1
            )
            notice = f"{SHEET_RELOADED}; your answer went to {path}, the clip you heard." if changed else ""
            if notice:
                logger.info("Labelling page: %s", notice)
            return self.view(following, rows, notice=notice)

        return self._guarded(shown, request)

    def select(self, shown: Any, event) -> tuple:
        """The clip of the table's row the person chose: found by the row's path where the browser sent it, by the
        row number in a table that is still the sheet's order, and otherwise refused in a sentence."""

        def request():
            rows = self.session.rows()
            row, path = _selected_row(event), _selected_path(event)
            paths = [r.path for r in rows]
            outdated = isinstance(shown, dict) and shown.get("order") != sheet_order(rows)
            if path in paths:
                return self.view(paths.index(path), rows, notice=self._reloaded(outdated))
            if not (isinstance(row, numbers.Integral) and not isinstance(row, bool) and 0 <= row < len(rows)):
                return self._trouble(
                    shown, f"That selection ({row!r}) names no clip of the sheet: choose a row of the table."
                )
            if outdated:  # the row of a table the sheet no longer matches may hold another clip now
                return self._trouble(shown, f"{SHEET_RELOADED}: choose the clip again in the table below.")
            return self.view(int(row), rows)

        return self._guarded(shown, request)

    @staticmethod
    def _reloaded(changed: bool) -> str:
        if changed:
            logger.info("Labelling page: %s.", SHEET_RELOADED)
        return f"{SHEET_RELOADED}." if changed else ""


def labelling_tab(session: LabellingSession) -> tuple[list, LabellingPage]:
    """Render the "Label" tab of `session` (inside the app's ``gr.Tabs``); returns the components a request updates
    (in the order :class:`LabellingPage` returns them) and the page's requests."""
    import gradio as gr

    keys = answer_keys(session.labels)
    page = LabellingPage(session)

    with gr.Tab("Label", id="label"):
        gr.Markdown(
            "Listen to each clip and press the emotion you hear (or its key: "
            + ", ".join(f"`{key}` {answer}" for answer, key in keys.items())
            + "). Every answer is saved in the sheet at once; a reload starts at the first clip without one."
        )
        progress = gr.Markdown(elem_id="label-progress")
        notice = gr.Markdown(elem_id="label-notice")
        about = gr.Markdown(elem_id="label-clip")
        player = gr.Audio(label="Clip", type="numpy", interactive=False, elem_id="label-player")
        shown = gr.State(None)
        with gr.Row():
            answer_buttons = [
                (answer, gr.Button(f"{answer} ({key})", elem_id=button_id(number), size="sm"))
                for number, (answer, key) in enumerate(keys.items())
            ]
        with gr.Row():
            previous = gr.Button("◀ previous", size="sm", elem_id="label-previous")
            following = gr.Button("next ▶", size="sm", elem_id="label-next")
        table = gr.Dataframe(
            headers=["#", "path", "speaker", "model's guess", "answer"],
            label="The suggested clips, in labelling order",
            interactive=False,
            elem_id="label-table",
        )
        gr.HTML("", js_on_load=_key_script({key: button_id(number) for number, key in enumerate(keys.values())}))
        with gr.Row():
            test_speakers = gr.Textbox(
                label="Test speakers (optional, comma-separated): kept out of the adaptation and scored",
                elem_id="adapt-test-speakers",
            )
            adapt_button = gr.Button("Adapt", variant="primary", elem_id="adapt-button")
        status = gr.Markdown(session.adaptation_status(), elem_id="adapt-status")
        timer = gr.Timer(STATUS_SECONDS)

        outputs = [shown, notice, about, player, progress, table]
        for label, button in answer_buttons:
            button.click(partial(page.answer, label), inputs=shown, outputs=outputs, api_name=False)
        previous.click(partial(_step, page, -1), inputs=shown, outputs=outputs, api_name=False)
        following.click(partial(_step, page, 1), inputs=shown, outputs=outputs, api_name=False)

        def chosen(state, event):
            return page.select(state, event)

        chosen.__annotations__["event"] = gr.SelectData  # the object, which Gradio reads to pass the selected row

        table.select(chosen, inputs=shown, outputs=outputs, api_name=False)

        def start(speakers: str):
            try:
                session.start_adaptation([s.strip() for s in (speakers or "").split(",") if s.strip()])
            except ValueError as error:
                logger.warning("Labelling page: %s", error)
                return f"{error} {session.adaptation_status()}"
            return session.adaptation_status()

        adapt_button.click(start, inputs=test_speakers, outputs=status, api_name=False)
        timer.tick(session.adaptation_status, outputs=status, api_name=False, show_progress="hidden")
        return outputs, page


def _step(page: LabellingPage, move: int, shown: Any) -> tuple:
    return page.step(shown, move)


def build_labelling_app(
    model: str,
    folder: str | os.PathLike,
    sheet: str | os.PathLike,
    *,
    output_dir: Optional[str | os.PathLike] = None,
    speaker_regex: Optional[str] = None,
    per_emotion: int = 5,
    revision: Optional[str] = None,
    **app_options,
):
    """The web app of `model` (:func:`~ser_hf.deploy.app.build_app`, `app_options` its options) with the labelling
    page of the recordings in `folder` as its first tab. The sheet `sheet` is read if it exists; otherwise
    ``ser-hf suggest`` writes it first (`speaker_regex`, `per_emotion`). Adapted models go to `output_dir` (default:
    ``SHEET.adapted`` beside the sheet)."""
    from ..adaptation.adapt import resolve_model_folder
    from ..adaptation.trained_model import trained_model_facts
    from ..deploy.app import MAX_RECORDING_MINUTES, build_app

    folder = Path(folder).expanduser()
    sheet = Path(sheet).expanduser()
    if not folder.is_dir():
        raise AdaptationError(f"folder {folder}: no such folder of recordings.", parameter="folder")
    if not sheet.exists():
        from ..adaptation.suggest import suggest

        logger.info("No sheet %s yet: choosing the clips to label (ser-hf suggest).", sheet)
        suggest(model, folder, sheet, per_emotion=per_emotion, speaker_regex=speaker_regex, revision=revision)
    labels = trained_model_facts(resolve_model_folder(model, revision))["labels"]
    output = Path(output_dir).expanduser() if output_dir else sheet.with_name(f"{sheet.stem}.adapted")
    refuse_output_among(output, {"folder": folder})
    session = LabellingSession(
        model,
        folder,
        sheet,
        labels,
        output,
        revision=revision,
        max_recording_minutes=app_options.get("max_recording_minutes", MAX_RECORDING_MINUTES),
    )
    session.rows()  # a sheet that does not read is refused now, not on the page
    built: dict[str, Any] = {}

    def tabs():
        built["outputs"], built["page"] = labelling_tab(session)

    app = build_app(model, revision=revision, extra_tabs=tabs, second_model=session.adapted_model, **app_options)
    with app:
        # Opened (or reloaded) on the first clip without an answer, the sheet read from disk.
        app.load(built["page"].open, inputs=built["outputs"][0], outputs=built["outputs"], api_name=False)
    session.claim()  # a second app on the same sheet warns now
    close = app.close

    def close_and_release(*args, **kwargs):
        session.release()
        return close(*args, **kwargs)

    app.close = close_and_release
    app.labelling_session, app.labelling_page = session, built["page"]
    return app


__all__ = [
    "SHEET_RELOADED",
    "AdaptationJob",
    "LabellingPage",
    "LabellingSession",
    "answer_keys",
    "build_labelling_app",
    "labelling_tab",
]
