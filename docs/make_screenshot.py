"""Retake docs/app.png: the web app (``ser-hf app``) with a long recording classified, shot by headless Chromium.

    python docs/make_screenshot.py runs/ravdess_crnn          # the model of recipes/ravdess_crnn.yaml
    python docs/make_screenshot.py MODEL --output docs/app.png --chromium chromium

The recording is four clips of the shipped RAVDESS sample (actor 08, strong intensity: calm, happy, fearful, disgust,
clips the RAVDESS CRNN labels right on their own, so that the plot shows the emotion change; actor 08 is one of its
training speakers: the screenshot shows the app, not the model's accuracy) with a second of silence after each, over
10 s, so the app shows the emotion over time too. The app loads and
classifies it when the page opens (``build_app(..., audio=...)``), so a static screenshot shows the result. The
PNG is reduced to a 256-colour palette to keep it small. Not part of the test suite: it needs a trained model and
Chromium (Debian package ``chromium``).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[1]
#: Actor 08's strong-intensity clips of four emotions, in this order.
CLIPS = ["03-01-02-02-01-01-08", "03-01-03-02-01-01-08", "03-01-06-02-02-01-08", "03-01-07-02-01-01-08"]
SAMPLING_RATE = 16000


def write_recording(path: Path, silence_seconds: float = 1.0) -> Path:
    """The shipped clips of :data:`CLIPS`, each followed by ``silence_seconds`` of silence, as one WAV file."""
    import soundfile

    silence = np.zeros(int(silence_seconds * SAMPLING_RATE), dtype=np.float32)
    parts = []
    for name in CLIPS:
        audio, rate = soundfile.read(REPO / "data" / "ravdess_sample" / "Actor_08" / f"{name}.flac", dtype="float32")
        assert rate == SAMPLING_RATE, (name, rate)
        parts += [audio, silence]
    soundfile.write(path, np.concatenate(parts), SAMPLING_RATE)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="folder or Hub id of a trained model")
    parser.add_argument("--output", default=str(REPO / "docs" / "app.png"))
    parser.add_argument("--chromium", default="chromium", help="the Chromium executable")
    parser.add_argument("--window-size", default="1280,1100")
    parser.add_argument("--wait-ms", type=int, default=20000, help="virtual time Chromium lets the page run")
    args = parser.parse_args()

    from PIL import Image

    from ser_hf.deploy.app import build_app, launch_options

    with tempfile.TemporaryDirectory(prefix="ser-hf-screenshot-") as folder:
        recording = write_recording(Path(folder) / "four_emotions.wav")
        app = build_app(args.model, audio=str(recording))
        _, url, _ = app.launch(
            server_name="127.0.0.1",
            server_port=free_port(),
            prevent_thread_lock=True,
            quiet=True,
            share=False,
            **launch_options(),  # as ser-hf app launches it
        )
        try:
            shot = Path(folder) / "app.png"
            subprocess.run(
                [
                    args.chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    "--autoplay-policy=no-user-gesture-required",
                    f"--window-size={args.window_size}",
                    f"--virtual-time-budget={args.wait_ms}",
                    f"--screenshot={shot}",
                    url,
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
        finally:
            app.close()
        with Image.open(shot) as image:
            image.convert("RGB").quantize(256).save(args.output, optimize=True)
    print(f"{args.output}: {Path(args.output).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
