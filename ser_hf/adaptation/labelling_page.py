"""The labelling page of the web app (``ser-hf app MODEL --label FOLDER``): the clips ``ser-hf suggest`` chose, each
with a player and a button (and a key) per emotion of the model, "skip" and "not speech"; every answer written to the
sheet at once; an "Adapt" button that adapts the model on the answers in the background, then serves the adapted
model in the app's "Try" tab beside the original, with its report.

It extends the app of :func:`ser_hf.deploy.app.build_app` (its "Try" tab, limits and refusals unchanged) from this
stage, which may run an adaptation; the deploy stage never imports it. The page only plays clips listed in the sheet
and lying inside FOLDER: the browser names a clip by its row, never by a path, and a row whose path leads outside
FOLDER (a hand-edited sheet) is refused.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..errors import RecipeError
from .sheet import NOT_SPEECH, SKIP, SheetRow, read_sheet, record_answer

logger = logging.getLogger(__name__)

#: The keys that answer on the page: the model's emotions take 1, 2, ... in their order, then these.
SKIP_KEY, NOT_SPEECH_KEY = "s", "n"
#: How often the page asks how the adaptation is going, in seconds.
STATUS_SECONDS = 1.0
#: Loggers whose lines the page shows as the adaptation's progress.
PROGRESS_LOGGERS = ("ser_hf", "transformers.trainer")


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
    report: str = ""


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
        overrides (`Mapping`, *optional*): recipe values the adaptation changes (``ser-hf app --set``).
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
        overrides: Optional[Mapping[str, Any]] = None,
        max_recording_minutes: Optional[float] = None,
    ):
        self.model, self.revision = model, revision
        self.folder = folder.expanduser().resolve()
        self.sheet, self.labels, self.output_dir = sheet, list(labels), output_dir
        self.overrides = dict(overrides or {})
        self.max_recording_minutes = max_recording_minutes
        self.job: Optional[AdaptationJob] = None
        self._job_lock = threading.Lock()

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

    def answer(self, index: int, label: str) -> list[SheetRow]:
        """Write `label` as the answer of the clip in row `index`, at once."""
        rows = self.rows()
        if not 0 <= index < len(rows):
            raise ValueError(f"No clip {index + 1} in {self.sheet} ({len(rows)} clips).")
        rows = record_answer(self.sheet, rows[index].path, label, self.labels)
        logger.info("Answer: %s -> %s", rows[index].path, label)
        return rows

    def progress(self, rows: Sequence[SheetRow]) -> str:
        """Answers so far per emotion, skipped and not speech, as one line of Markdown."""
        counts = {answer: 0 for answer in self.answers}
        for row in rows:
            if row.label in counts:
                counts[row.label] += 1
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
        from ..deploy.app import EmotionRecognizer
        from ..deploy.pipelines import load_classifier
        from ..run_folder import REPORT_MARKDOWN
        from .adapt import adapt

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
                overrides=self.overrides,
                revision=self.revision,
            )
            job.recognizer = EmotionRecognizer(
                load_classifier(str(job.output_dir)), max_recording_minutes=self.max_recording_minutes
            )
            report = job.output_dir / REPORT_MARKDOWN
            job.report = report.read_text() if report.is_file() else ""
            job.state = "done"
            logger.info("Adapted model served beside the original: %s", job.output_dir)
        except (RecipeError, ValueError, OSError, RuntimeError) as error:
            job.state, job.error = "failed", str(error)
            logger.warning("The adaptation failed: %s", error)
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
        return (
            f"Adapted: `{job.output_dir}`. The **Try** tab scores a recording with it beside the original "
            "(ser-hf predict, app and push take the folder)."
        )

    def adapted_model(self) -> Optional[tuple[str, Any, str]]:
        """The last adapted model, for the "Try" tab: ``(title, recognizer, report)``, or `None`."""
        job = self.job
        if job is None or job.state != "done":
            return None
        return f"Adapted model ({job.output_dir.name})", job.recognizer, job.report


def _key_script(keys: Mapping[str, str]) -> str:
    """JavaScript that clicks the answer button of a key (`keys`: key -> button id), outside text fields."""
    import json

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


def labelling_tab(session: LabellingSession):
    """Render the "Label" tab of `session` (inside the app's ``gr.Tabs``); returns what the page's load event needs:
    the components a clip is shown in, the row of the first clip without an answer, and the view of a row."""
    import gradio as gr

    keys = answer_keys(session.labels)

    def first_open(rows: Sequence[SheetRow]) -> int:
        return next((index for index, row in enumerate(rows) if not row.answered), 0)

    def view(index: int, rows: Optional[list[SheetRow]] = None):
        rows = session.rows() if rows is None else rows
        if not rows:
            return index, "The sheet lists no clip.", "", None, session.progress(rows), []
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
        return index, about, row.path, audio, session.progress(rows), table

    with gr.Tab("Label", id="label"):
        gr.Markdown(
            "Listen to each clip and press the emotion you hear (or its key: "
            + ", ".join(f"`{key}` {answer}" for answer, key in keys.items())
            + "). Every answer is saved in the sheet at once; a reload starts at the first clip without one."
        )
        progress = gr.Markdown(elem_id="label-progress")
        about = gr.Markdown(elem_id="label-clip")
        current_path = gr.Textbox(visible=False)
        player = gr.Audio(label="Clip", type="numpy", interactive=False, elem_id="label-player")
        index = gr.State(0)
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

        outputs = [index, about, current_path, player, progress, table]

        def answer(label: str, number: int):
            try:
                rows = session.answer(number, label)
            except ValueError as error:
                raise gr.Error(str(error), print_exception=False) from None
            following_open = next(
                (i for i in range(number + 1, len(rows)) if not rows[i].answered), min(number + 1, len(rows) - 1)
            )
            return view(following_open, rows)

        for label, button in answer_buttons:
            button.click(partial(answer, label), inputs=index, outputs=outputs, api_name=False)
        previous.click(lambda number: view(number - 1), inputs=index, outputs=outputs, api_name=False)
        following.click(lambda number: view(number + 1), inputs=index, outputs=outputs, api_name=False)

        def chosen(event):
            return view(event.index[0])

        chosen.__annotations__["event"] = gr.SelectData  # the object, which Gradio reads to pass the selected row

        table.select(chosen, inputs=None, outputs=outputs, api_name=False)

        def start(speakers: str):
            try:
                session.start_adaptation([s.strip() for s in (speakers or "").split(",") if s.strip()])
            except ValueError as error:
                raise gr.Error(str(error), print_exception=False) from None
            return session.adaptation_status()

        adapt_button.click(start, inputs=test_speakers, outputs=status, api_name=False)
        timer.tick(session.adaptation_status, outputs=status, api_name=False, show_progress="hidden")
        return outputs, first_open, view


def build_labelling_app(
    model: str,
    folder: str | os.PathLike,
    sheet: str | os.PathLike,
    *,
    output_dir: Optional[str | os.PathLike] = None,
    speaker_regex: Optional[str] = None,
    per_emotion: int = 5,
    overrides: Optional[Mapping[str, Any]] = None,
    revision: Optional[str] = None,
    **app_options,
):
    """The web app of `model` (:func:`~ser_hf.deploy.app.build_app`, `app_options` its options) with the labelling
    page of the recordings in `folder` as its first tab. The sheet `sheet` is read if it exists; otherwise
    ``ser-hf suggest`` writes it first (`speaker_regex`, `per_emotion`). Adapted models go to `output_dir` (default:
    ``SHEET.adapted`` beside the sheet)."""
    from ..deploy.app import MAX_RECORDING_MINUTES, build_app
    from ..recipe.adaptation import trained_model_facts
    from .adapt import resolve_model_folder

    folder = Path(folder).expanduser()
    sheet = Path(sheet).expanduser()
    if not folder.is_dir():
        raise RecipeError(f"--label {folder}: no such folder of recordings.")
    if not sheet.exists():
        from .suggest import suggest

        logger.info("No sheet %s yet: choosing the clips to label (ser-hf suggest).", sheet)
        suggest(model, folder, sheet, per_emotion=per_emotion, speaker_regex=speaker_regex, revision=revision)
    labels = trained_model_facts(resolve_model_folder(model, revision))["labels"]
    output = Path(output_dir).expanduser() if output_dir else sheet.with_name(f"{sheet.stem}.adapted")
    if output.resolve().is_relative_to(folder.resolve()):
        raise RecipeError(
            f"The adapted models' folder {output} is inside {folder}: ser-hf never writes its outputs among audio "
            "files."
        )
    session = LabellingSession(
        model,
        folder,
        sheet,
        labels,
        output,
        revision=revision,
        overrides=overrides,
        max_recording_minutes=app_options.get("max_recording_minutes", MAX_RECORDING_MINUTES),
    )
    session.rows()  # a sheet that does not read is refused now, not on the page
    built: dict[str, Any] = {}

    def tabs():
        built["outputs"], built["first_open"], built["view"] = labelling_tab(session)

    app = build_app(model, revision=revision, extra_tabs=tabs, second_model=session.adapted_model, **app_options)
    with app:
        # Opened (or reloaded) on the first clip without an answer, the sheet read from disk.
        def opened():
            rows = session.rows()
            return built["view"](built["first_open"](rows), rows)

        app.load(opened, inputs=None, outputs=built["outputs"], api_name=False)
    app.labelling_session = session
    return app


__all__ = [
    "AdaptationJob",
    "LabellingSession",
    "answer_keys",
    "build_labelling_app",
    "labelling_tab",
]
