"""A web app to try a trained model: upload or record speech, see each emotion's score and, for a long recording, its
emotion over time. ``ser-hf app MODEL`` serves it, and a Hugging Face Space runs it through :mod:`ser_hf.space_app`
(the Space's ``app.py``, see ``docs/space.md``).
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..extras import install_hint

#: Recordings longer than this (seconds) also get their emotion over time: speech segments and their scores.
TIMELINE_SECONDS = 10.0
#: The largest upload the app accepts, in MB (2**20 bytes): about ten minutes of 16-bit mono WAV at 44.1 kHz, 27 at
#: 16 kHz, hours of compressed speech. Gradio refuses a larger file before storing it (``launch(max_file_size=...)``).
MAX_UPLOAD_MB = 50.0
#: The longest recording the app classifies, in minutes: longer ones (a compressed hour fits in the upload limit)
#: are refused before they are decoded; ``ser-hf predict`` takes recordings of any length.
MAX_RECORDING_MINUTES = 10.0
#: Gradio's ``delete_cache`` (frequency, age in seconds): every 10 minutes the recordings uploaded or recorded more
#: than an hour ago are deleted from Gradio's temporary folder, and all of this app's files when it stops.
DELETE_CACHE = (600, 3600)
#: What the app says when Gradio is not installed.
MISSING_GRADIO = f"the web app needs Gradio, which is not installed: {install_hint('app')}"

#: Text of Gradio's own interface keys that its locales lack, given to ``launch(i18n=...)``: Gradio 6 announces a
#: finished event to screen readers as ``common.complete``, which its English locale does not define, so the page
#: showed the raw key.
GRADIO_MISSING_TEXT = {"common.complete": "Complete"}

logger = logging.getLogger(__name__)


def require_gradio():
    """The ``gradio`` module, or an :class:`ImportError` saying how to install it (it is an optional dependency)."""
    try:
        import gradio
    except ImportError:
        raise ImportError(MISSING_GRADIO) from None
    return gradio


@dataclass
class AppResult:
    """What the app shows for one recording: every label's score, and for a long one its timeline (a plot, as a PIL
    image, and one row per speech segment)."""

    scores: dict[str, float]
    duration: float
    timeline_plot: Any = None
    timeline_rows: Optional[list[dict[str, Any]]] = None


class EmotionRecognizer:
    """Classifies one recording as ``ser-hf predict`` does (:func:`~ser_hf.deploy.classify.classify_files`: whole
    file, or 30-s windows averaged), and segments a long one into its emotion over time."""

    def __init__(
        self,
        classifier,
        timeline_seconds: Optional[float] = TIMELINE_SECONDS,
        max_recording_minutes: Optional[float] = MAX_RECORDING_MINUTES,
    ):
        from .pipelines import model_labels

        self.classifier = classifier
        self.labels = model_labels(classifier)
        self.timeline_seconds = timeline_seconds
        self.max_recording_minutes = max_recording_minutes

    def check_length(self, audio: str) -> None:
        """Refuse a recording longer than ``max_recording_minutes`` from its header, before it is decoded; one whose
        header gives no duration (a browser's WebM) is decoded up to the limit, never further, to tell."""
        from ..data.corpora import InvalidClipError, probe_audio
        from ..data.decode import decode_waveform
        from ..data.errors import RecordingTooLongError

        if self.max_recording_minutes is None:
            return
        limit = self.max_recording_minutes * 60
        try:
            duration = probe_audio(audio)["duration"]
        except InvalidClipError:
            try:
                duration = len(decode_waveform(audio, 16000, max_seconds=limit)) / 16000
            except RecordingTooLongError:
                duration = math.inf
            except InvalidClipError:
                return  # classify_files names what is wrong with it
        if duration > limit:
            raise ValueError(
                (
                    f"This recording is {duration / 60:.1f} minutes long"
                    if math.isfinite(duration)
                    else f"This recording is longer than {self.max_recording_minutes:g} minutes"
                )
                + f"; this app takes recordings of up to "
                f"{self.max_recording_minutes:g} minutes. Classify longer ones with `ser-hf predict MODEL FILE`, "
                "which windows recordings of any length."
            )

    def __call__(self, audio: Optional[str]) -> AppResult:
        from .classify import classify_files

        if not audio:
            raise ValueError("Upload or record a recording first.")
        self.check_length(audio)
        (prediction,) = classify_files(self.classifier, [audio], progress=False)
        if prediction.error is not None:
            raise ValueError(f"This recording cannot be classified: {prediction.error}.")
        result = AppResult(scores=prediction.scores, duration=prediction.duration)
        if self.timeline_seconds is not None and prediction.duration > self.timeline_seconds:
            result.timeline_plot, result.timeline_rows = self.timeline(audio)
        return result

    def timeline(self, audio: str):
        """The emotion-over-time plot (a PIL image, every label's score) and one row per speech segment of a recording:
        its start, end (and speaker), top label and that label's score."""
        from PIL import Image

        from .timeline import emotion_timeline, plot_timeline

        timeline = emotion_timeline(self.classifier, audio)
        with tempfile.TemporaryDirectory(prefix="ser-hf-app-") as folder:
            path = Path(folder) / "timeline.png"
            plot_timeline(timeline, path)  # drawn off screen and closed: the app holds no figure
            with Image.open(path) as image:
                plot = image.copy()
        rows = [
            {
                "start": round(segment.start, 2),
                "end": round(segment.end, 2),
                **({"speaker": segment.speaker} if timeline.has_speakers else {}),
                "label": segment.label,
                "score": round(segment.scores[segment.label], 3),
            }
            for segment in timeline.segments
        ]
        return plot, rows


def build_app(
    model: str,
    *,
    revision: Optional[str] = None,
    trust_remote_code: bool = False,
    timeline_seconds: Optional[float] = TIMELINE_SECONDS,
    audio: Optional[str] = None,
    classifier=None,
    max_recording_minutes: Optional[float] = MAX_RECORDING_MINUTES,
    extra_tabs: Optional[Callable[[], Any]] = None,
    second_model: Optional[Callable[[], Optional[tuple[str, "EmotionRecognizer", str]]]] = None,
):
    """The web app of ``model`` (a folder or Hub id, loaded as ``ser-hf predict`` loads it) as a ``gradio.Blocks``.
    Launch it with :func:`launch_options` (the upload limit); the recordings it receives are deleted an hour later,
    and all of them when it stops (Gradio's ``delete_cache``, :data:`DELETE_CACHE`). A recording it cannot classify
    is refused with a message on the page and one line in the log.

    Args:
        model (`str`): the model's folder or Hub id, also shown in the title.
        revision (`str`, *optional*): branch, tag or commit of a Hub model.
        trust_remote_code (`bool`, *optional*, defaults to `False`): run the model code stored with a Hub model
            (ser-hf models do not need it).
        timeline_seconds (`float`, *optional*, defaults to 10.0): recordings longer than this also get their
            emotion over time; `None` for never.
        audio (`str`, *optional*): a recording shown with its results when the page opens (a demo; classified
            once, when the app is built).
        classifier (*optional*): an ``audio-classification`` pipeline already loaded, used instead of loading
            ``model``.
        max_recording_minutes (`float`, *optional*, defaults to 10): longer recordings are refused before they are
            decoded; `None` for no limit.
        extra_tabs (`Callable`, *optional*): renders more tabs of the app (Gradio components built inside it), shown
            before the "Try" tab, which then becomes a tab too (the labelling page of
            :mod:`ser_hf.cli.labelling_page`).
        second_model (`Callable`, *optional*): asked at each classification for another model to score the recording
            with beside this one, ``(title, recognizer, report markdown)`` or `None` while there is none (an adapted
            model, served once its adaptation ends, without restarting the app).
    """
    gr = require_gradio()
    if classifier is None:
        from .pipelines import load_classifier

        classifier = load_classifier(model, revision=revision, trust_remote_code=trust_remote_code)
    recognizer = EmotionRecognizer(classifier, timeline_seconds, max_recording_minutes)
    # A demo recording is classified now, and its results are the page's first values: they show at once.
    shown = recognizer(audio) if audio is not None else AppResult(scores={}, duration=0.0)
    page = _TryPage(gr, recognizer, shown, audio, second_model)
    long_note = (
        f" Recordings longer than {timeline_seconds:g} s also get their emotion over time: the speech segments found "
        "by voice activity detection, each with its scores."
        if timeline_seconds is not None
        else ""
    )
    with gr.Blocks(title=f"ser-hf: {model}", analytics_enabled=False, delete_cache=DELETE_CACHE) as app:
        gr.Markdown(
            f"# Speech emotion recognition\n"
            f"Model: `{model}`{f' ({revision})' if revision else ''}. Upload or record speech; the model scores "
            f"each of its emotions ({', '.join(recognizer.labels)}).{long_note}"
        )
        if extra_tabs is None:
            page.render()
        else:
            with gr.Tabs():
                extra_tabs()
                with gr.Tab("Try", id="try"):
                    page.render()
    refuse_files_not_uploaded(app)
    return app


def _segment_table(result: AppResult) -> Optional[dict[str, list]]:
    """The speech segments of a recording's timeline as a Gradio table; `None` for a recording without one."""
    if result.timeline_rows is None:
        return None
    headers = list(result.timeline_rows[0]) if result.timeline_rows else ["start", "end", "label", "score"]
    return {"headers": headers, "data": [list(row.values()) for row in result.timeline_rows]}


class _TryPage:
    """The "Try" section of :func:`build_app`: a recording, its scores, its timeline and speech segments, and (with
    `second_model`) the scores of a second model beside them, filled when a recording is classified."""

    def __init__(
        self,
        gr,
        recognizer: EmotionRecognizer,
        shown: AppResult,
        audio: Optional[str],
        second_model: Optional[Callable[[], Optional[tuple[str, EmotionRecognizer, str]]]],
    ):
        self.gr = gr
        self.recognizer = recognizer
        self.shown = shown
        self.audio = audio
        self.second_model = second_model

    def classify(self, path):
        """The scores, plot and segment table of the recording at `path`; a recording the app refuses is answered on
        the page, and in one log line rather than Gradio's traceback of an expected refusal."""
        gr = self.gr
        try:
            result = self.recognizer(path)
        except ValueError as error:
            logger.warning("Refused %s: %s", Path(path).name if path else "an empty request", error)
            raise gr.Error(str(error), print_exception=False) from None
        has_timeline = result.timeline_rows is not None
        return (
            result.scores,
            gr.update(value=result.timeline_plot, visible=has_timeline),
            gr.update(value=_segment_table(result), visible=has_timeline),
        )

    def classify_with_both(self, path):
        """:meth:`classify`, then the second model's scores and report, hidden while there is no second model."""
        gr = self.gr
        own = self.classify(path)
        other = self.second_model()
        if other is None:
            return (*own, gr.update(visible=False), gr.update(visible=False))
        title, second, report = other
        try:
            result = second(path)
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from None
        return (*own, gr.update(value=result.scores, label=title, visible=True), gr.update(value=report, visible=True))

    def render(self) -> None:
        """Build the section's components inside the current Gradio `Blocks`, and classify on a click, a finished
        recording or an upload."""
        gr, shown = self.gr, self.shown
        has_timeline = shown.timeline_rows is not None
        with gr.Row():
            with gr.Column(scale=1):
                # Upload first: it is what the page opens on, and a server (or a browser without one) has no
                # microphone.
                recording = gr.Audio(
                    value=self.audio, sources=["upload", "microphone"], type="filepath", label="Recording"
                )
                button = gr.Button("Classify", variant="primary")
                segments = gr.Dataframe(
                    _segment_table(shown), label="Speech segments", visible=has_timeline, interactive=False
                )
            with gr.Column(scale=1):
                scores = gr.Label(
                    shown.scores or None, label="The whole recording", num_top_classes=len(self.recognizer.labels)
                )
                if self.second_model is not None:
                    second_scores = gr.Label(None, label="Adapted model", visible=False, elem_id="second-model")
                    second_report = gr.Markdown(visible=False, elem_id="second-model-report")
        plot = gr.Image(shown.timeline_plot, label="Emotion over time", format="png", visible=has_timeline, height=380)
        outputs = [scores, plot, segments]
        run = self.classify
        if self.second_model is not None:
            outputs += [second_scores, second_report]
            run = self.classify_with_both
        button.click(run, inputs=recording, outputs=outputs, api_name="classify")
        recording.stop_recording(run, inputs=recording, outputs=outputs, api_name=False)
        recording.upload(run, inputs=recording, outputs=outputs, api_name=False)


def _sent_names(inputs: Any) -> str:
    """The file names a request's inputs give (``{"path": ...}`` payloads), for the messages."""
    names = [Path(str(item["path"])).name for item in inputs or [] if isinstance(item, dict) and item.get("path")]
    return ", ".join(repr(name) for name in names) or "the file"


def refuse_files_not_uploaded(app) -> None:
    """Wrap ``app.process_api`` (where Gradio checks a request's files before :func:`build_app`'s ``classify`` runs)
    so that a file the app was never sent (a path never uploaded, ``../..``, absolute or URL-encoded) is answered in
    words and logged in one line. Gradio refuses it already (nothing is read), but with ``{"error": null}`` for the
    client and a traceback in the log."""
    gr = require_gradio()
    from gradio.exceptions import InvalidPathError

    process_api = app.process_api

    async def checked_process_api(*args, **kwargs):
        try:
            return await process_api(*args, **kwargs)
        except InvalidPathError:
            names = _sent_names(kwargs.get("inputs"))
            logger.warning("Refused %s: not a file uploaded to this app", names)
            raise gr.Error(
                f"This app classifies recordings uploaded to it or recorded on its page; {names} was not: upload it "
                "first.",
                print_exception=False,
            ) from None

    app.process_api = checked_process_api


class RefuseEmptyUploads:
    """ASGI middleware (``launch(app_kwargs=...)``, from :func:`launch_options`): Gradio answers an upload whose
    multipart body holds no file (cut short, or with no ``files`` field) with 200 and an empty list; here it is a 400
    that says so, and one log line."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/upload"):
            return await self.app(scope, receive, send)
        held: list[dict] = []

        async def hold(message):
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                start, body = held[0], b"".join(m.get("body", b"") for m in held[1:])
                if start.get("status") == 200 and body.strip() == b"[]":
                    logger.warning("Refused an upload: its multipart body holds no file")
                    text = b"The upload holds no file: send multipart/form-data with the recording in a 'files' field."
                    start = {
                        **start,
                        "status": 400,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(text)).encode()),
                        ],
                    }
                    body = text
                await send(start)
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, hold)


def launch_options(max_upload_mb: Optional[float] = MAX_UPLOAD_MB) -> dict[str, Any]:
    """The options of ``app.launch``: the text of Gradio's keys its locales lack (:data:`GRADIO_MISSING_TEXT`), and
    the bound of what a visitor may send: Gradio refuses an upload larger than ``max_upload_mb`` (MB of 2**20 bytes;
    `None` for no limit), in the browser and on the server, before storing it."""
    gr = require_gradio()
    from starlette.middleware import Middleware

    options = {"i18n": gr.I18n(en=GRADIO_MISSING_TEXT), "app_kwargs": {"middleware": [Middleware(RefuseEmptyUploads)]}}
    if max_upload_mb is None:
        return options
    if not max_upload_mb > 0:
        raise ValueError(f"The upload limit must be positive, got {max_upload_mb} MB.")
    return {**options, "max_file_size": max(1, int(max_upload_mb * 2**20))}


__all__ = [
    "DELETE_CACHE",
    "MAX_RECORDING_MINUTES",
    "MAX_UPLOAD_MB",
    "MISSING_GRADIO",
    "TIMELINE_SECONDS",
    "AppResult",
    "EmotionRecognizer",
    "RefuseEmptyUploads",
    "build_app",
    "launch_options",
    "refuse_files_not_uploaded",
    "require_gradio",
]
