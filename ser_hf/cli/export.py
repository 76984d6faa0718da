"""``ser-hf export MODEL --format onnx OUT``: a trained model as an ONNX graph beside its config and feature extractor,
checked against torch with onnxruntime on real clips before anything is written. The parser imports nothing heavy;
torch, onnx and onnxruntime are imported when the command runs."""

from __future__ import annotations

import argparse

#: Formats ``ser-hf export`` writes.
EXPORT_FORMATS = ("onnx",)


def add_export_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf export`` on the ``ser-hf`` sub-command parsers."""
    export = commands.add_parser(
        "export",
        help="export a trained model to ONNX (checked against torch with onnxruntime)",
        description="Export a trained model (LoRA adapters merged) to OUT/model.onnx with its config.json, its "
        "feature extractor (which runs in Python before the graph) and onnx_export.json, which describes the "
        "graph. onnxruntime's logits are compared with torch's on --parity-audio first: when they differ by more "
        "than --tolerance or pick another label, the export fails and OUT is left as it was. `ser-hf predict` and "
        "`ser-hf evaluate` take OUT as a model. Needs pip install 'ser-hf[onnx]'.",
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
    from ..export.onnx import export_onnx

    if args.tolerance <= 0:
        raise ValueError(f"--tolerance must be positive, got {args.tolerance}.")
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


__all__ = ["EXPORT_FORMATS", "add_export_parser", "export_command"]
