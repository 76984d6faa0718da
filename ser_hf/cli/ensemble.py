"""``ser-hf ensemble MODEL MODEL... --output-dir OUT``: trained models saved as one ensemble (the weighted mean of
their probabilities) that ``pipeline`` and every ser-hf command load like any other model. The parser imports nothing
heavy; torch and transformers are imported when the command runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .commands import COMMANDS


def add_ensemble_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf ensemble`` on the ``ser-hf`` sub-command parsers."""
    parser = commands.add_parser(
        "ensemble",
        help=COMMANDS["ensemble"].help,
        description="Save two or more trained models with the same labels (run folders, fold folders or Hub ids; "
        "any input each: log-mels, openSMILE functionals, raw audio) as one EnsembleForAudioClassification in OUT: "
        "its scores are the weighted mean of its members' softmax probabilities, and its feature extractor runs each "
        "member's own. The ensemble is not evaluated here: score it with `ser-hf evaluate --model OUT ...`. To "
        "train the members on the same splits and report the ensemble by fold, write an ensemble recipe "
        "(ensemble_members, see recipes/ravdess_ensemble.yaml).",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="folders or Hub ids of the trained members")
    parser.add_argument(
        "--output-dir", required=True, metavar="OUT", help="a new (or empty) folder, or an earlier ser-hf ensemble"
    )
    parser.add_argument(
        "--weights", type=float, nargs="+", metavar="W", help="one positive weight per member (default: equal)"
    )
    parser.add_argument("--names", nargs="+", metavar="NAME", help="one name per member (default: its folder's)")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model code stored with a Hub member (not needed for ser-hf models)",
    )
    parser.set_defaults(run=ensemble_command)
    return parser


def check_ensemble_output(output_dir: Path, models: list[str]) -> None:
    """Refuse an output folder that is one of the members, or that holds anything but an earlier ``ser-hf
    ensemble``: its files would be mixed with the ensemble's (a trained run's report, its checkpoints)."""
    if any(Path(model).is_dir() and Path(model).resolve() == output_dir.resolve() for model in models):
        raise ValueError(f"--output-dir {output_dir} is one of the members: give the ensemble a folder of its own.")
    if not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise ValueError(f"--output-dir {output_dir} is a file, not a folder.")
    entries = {path.name for path in output_dir.iterdir()}
    if not entries:
        return
    from ..models.configuration_ensemble import EnsembleConfig
    from ..run_folder import METRICS_FILE, MODEL_CONFIG_FILE

    config_path = output_dir / MODEL_CONFIG_FILE
    try:
        model_type = json.loads(config_path.read_text()).get("model_type") if config_path.is_file() else None
    except (OSError, ValueError):
        model_type = None
    if model_type != EnsembleConfig.model_type or METRICS_FILE in entries:
        raise ValueError(
            f"--output-dir {output_dir} already holds other files ({', '.join(sorted(entries)[:5])}"
            f"{', ...' if len(entries) > 5 else ''}): give a new or empty folder, or one that an earlier "
            "`ser-hf ensemble` wrote."
        )


def ensemble_command(args: argparse.Namespace) -> int:
    from ..training.ensemble import save_ensemble

    output_dir = Path(args.output_dir)
    check_ensemble_output(output_dir, args.models)
    model = save_ensemble(
        args.models, output_dir, weights=args.weights, names=args.names, trust_remote_code=args.trust_remote_code
    )
    members = ", ".join(
        f"{name} ({weight:g})" for name, weight in zip(model.config.member_names, model.config.member_weights)
    )
    print(
        f"Ensemble of {len(args.models)} models saved in {output_dir}: {members}; labels "
        f"{', '.join(model.config.id2label[index] for index in range(model.config.num_labels))}. Not evaluated: "
        f"`ser-hf evaluate --model {output_dir} --corpus ... --data-dir ...` scores it on a corpus."
    )
    return 0


__all__ = ["add_ensemble_parser", "check_ensemble_output", "ensemble_command"]
