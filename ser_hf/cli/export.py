"""``ser-hf export MODEL --format onnx OUT``: a trained model as an ONNX graph beside its config and feature extractor,
checked against torch with onnxruntime on real clips before anything is written. The parser imports nothing heavy;
torch, onnx and onnxruntime are imported when the command runs.

The command prints ser-hf's own lines only: the exporter's libraries log a note per optimisation pass (onnx_ir,
onnxscript) and torch.onnx warns about torchvision operators that audio models never use, and transformers draws a bar
while it loads the weights. ``--verbose`` shows all of it (with ser-hf's debug lines).
"""

from __future__ import annotations

import argparse
import contextlib
import logging

from ..extras import install_hint
from .commands import COMMANDS

#: Formats ``ser-hf export`` writes.
EXPORT_FORMATS = ("onnx",)
#: The exporter's loggers, which show their errors only without ``--verbose``: onnx_ir's and onnxscript's notes on
#: their optimisation passes (INFO) and on how they built an attribute (WARNING), torch.onnx's warnings naming the
#: torchvision operators it cannot register. Whether the graph is right is the parity check's to say.
EXPORTER_LOGGERS = ("onnx_ir", "onnxscript", "torch.onnx")


def add_export_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf export`` on the ``ser-hf`` sub-command parsers."""
    export = commands.add_parser(
        "export",
        help=COMMANDS["export"].help,
        description="Export a trained model (LoRA adapters merged) to OUT/model.onnx with its config.json, its "
        "feature extractor (which runs in Python before the graph) and onnx_export.json, which describes the "
        "graph. onnxruntime's logits are compared with torch's on --parity-audio first: when they differ by more "
        "than --tolerance or pick another label, the export fails and OUT is left as it was. `ser-hf predict` and "
        f"`ser-hf evaluate` take OUT as a model. Needs {install_hint('onnx')}.",
    )
    export.add_argument("model", help="folder or Hub id of a trained model (or a folder of LoRA adapters)")
    export.add_argument("output_dir", metavar="OUT", help="the folder to write (new, or an earlier export)")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="onnx", help="the format (default: onnx)")
    export.add_argument(
        "--parity-audio",
        action="append",
        metavar="PATH",
        help="audio files or folders whose clips check the graph against torch (repeatable; default: generated "
        "noise, e.g. give data/ravdess_sample)",
    )
    export.add_argument(
        "--tolerance", type=float, default=1e-3, help="largest |logit difference| accepted (default: 1e-3)"
    )
    export.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18)")
    export.add_argument(
        "--exporter",
        choices=("auto", "dynamo", "torchscript"),
        default="auto",
        help="torch.onnx's exporter: auto tries dynamo, then TorchScript's where dynamo cannot trace the model",
    )
    export.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # `ser-hf --verbose export ...` says the same; this default keeps its value
        help="also show what the exporter's libraries log (optimisation passes, torch.onnx's warnings) and "
        "transformers' progress bars, with ser-hf's debug lines",
    )
    export.add_argument("--revision", help="branch, tag or commit of a Hub model")
    export.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model code stored with a Hub model (not needed for ser-hf models)",
    )
    export.set_defaults(run=export_command)
    return export


def export_command(args: argparse.Namespace) -> int:
    """Export, check parity, print where the export is and how close it is to torch."""
    from ..deploy.onnx_export import export_onnx

    if args.tolerance <= 0:
        raise ValueError(f"--tolerance must be positive, got {args.tolerance}.")
    with contextlib.nullcontext() if getattr(args, "verbose", False) else exporter_libraries_quiet():
        export = export_onnx(
            args.model,
            args.output_dir,
            parity_audio=args.parity_audio or (),
            tolerance=args.tolerance,
            opset=args.opset,
            exporter=args.exporter,
            revision=args.revision,
            trust_remote_code=args.trust_remote_code,
        )
    print(f"Exported {args.model} to {export.path} ({export.manifest['exporter']}, opset {args.opset})")
    print(export.parity.summary())
    return 0


@contextlib.contextmanager
def exporter_libraries_quiet():
    """Within the block, the loggers of :data:`EXPORTER_LOGGERS` show their errors only and transformers draws no
    progress bar; both are put back after it."""
    from transformers.utils import logging as transformers_logging

    levels = {logging.getLogger(name): logging.getLogger(name).level for name in EXPORTER_LOGGERS}
    bars = transformers_logging.is_progress_bar_enabled()
    for logger in levels:
        logger.setLevel(max(logging.ERROR, logger.getEffectiveLevel()))
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        for logger, level in levels.items():
            logger.setLevel(level)
        if bars:
            transformers_logging.enable_progress_bar()


__all__ = ["EXPORTER_LOGGERS", "EXPORT_FORMATS", "add_export_parser", "export_command", "exporter_libraries_quiet"]
