"""A Hugging Face Space's ``app.py``: serves a trained model's web app (:mod:`ser_hf.deploy.app`), as ``ser-hf app``
does on your machine.

Copy this file into the Space as ``app.py`` (see ``docs/space.md``), set :data:`MODEL` below (or the Space variable
``SER_HF_MODEL``) to the model's Hub id, and list ``ser-hf[app]`` in its ``requirements.txt``. The imports are absolute
(``ser_hf.deploy.app``, not ``.deploy.app``) so that the file runs as a script outside the package.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

#: The model a Space serves (a Hub id such as ``"me/ravdess-crnn"``, or a folder); the environment variable
#: ``SER_HF_MODEL`` overrides it, and ``SER_HF_REVISION`` picks a branch, tag or commit.
MODEL = ""
MODEL_VARIABLE = "SER_HF_MODEL"
REVISION_VARIABLE = "SER_HF_REVISION"


def model_from_environment() -> tuple[str, Optional[str]]:
    """The model (and revision) a Space serves: ``SER_HF_MODEL`` or :data:`MODEL`, and ``SER_HF_REVISION``."""
    model = os.environ.get(MODEL_VARIABLE) or MODEL
    if not model:
        raise ValueError(
            f"No model to serve: set {MODEL_VARIABLE} (a Hub id or a folder; in a Space, a variable in its "
            f"settings), or MODEL at the top of {__file__}."
        )
    return model, os.environ.get(REVISION_VARIABLE) or None


def main() -> None:
    """``python app.py``: serve the model named by ``SER_HF_MODEL`` (or :data:`MODEL`), as a Space runs it. Gradio
    takes the address from ``GRADIO_SERVER_NAME`` and ``GRADIO_SERVER_PORT`` (a Space sets them). Errors are one
    line, as the command line prints them."""
    from ser_hf.cli.errors import run_reporting_errors
    from ser_hf.deploy.app import build_app, launch_options

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def serve():
        model, revision = model_from_environment()
        build_app(model, revision=revision).launch(**launch_options())

    raise SystemExit(run_reporting_errors(serve, Path(__file__).name))


__all__ = ["MODEL", "MODEL_VARIABLE", "REVISION_VARIABLE", "main", "model_from_environment"]


if __name__ == "__main__":
    main()
