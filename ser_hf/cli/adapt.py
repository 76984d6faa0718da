"""``ser-hf adapt MODEL --data_dir FOLDER --output_dir OUT``: adapt a trained ser-hf model to a user's recordings
with a few labelled clips (and, with ``--unlabelled_dir``, their unlabelled recordings of the same set-up).

The adaptation is an ordinary training run of the recipe :func:`ser_hf.recipe.adaptation.adaptation_values` makes:
the model's frozen encoder (its states of the folder's clips cached, FAST), its head, labels and statistics kept,
L2-SP holding the head near the trained one. ``--unlabelled_dir`` adds one self-training round: the adapted model
classifies the unlabelled recordings, the surest share of each predicted emotion joins the labelled clips with the
predicted labels, and the model is adapted again from MODEL on both. The run folder is an ordinary ser-hf model (card,
push, ``pipeline``, predict, app). bench/adapt.py measures how many labelled clips it needs (docs/guides/your-data.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..atomic_files import write_text_atomic
from ..errors import RecipeError
from .commands import COMMANDS
from .corpus_arguments import csv_list, key_values, speaker_ids
from .errors import RESUME_HINT

logger = logging.getLogger(__name__)

#: Beside ``--output_dir`` when ``--unlabelled_dir`` adds a self-training round (``OUT.self-training``): the first
#: adaptation's run (on the labelled clips alone) and the corpus the round trains on.
SELF_TRAINING_SUFFIX = ".self-training"
LABELLED_ONLY_FOLDER = "labelled-only"
#: The recipe of an adaptation, written beside its output folder (``OUT.adapt.yaml``).
RECIPE_SUFFIX = ".adapt.yaml"
SELF_TRAINING_CORPUS_FOLDER = "clips"
#: The corpus the self-training round trains on: the labelled clips and the picked unlabelled ones, with their labels.
SELF_TRAINING_CSV = "self_training_clips.csv"


def add_adapt_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf adapt`` on the ``ser-hf`` sub-command parsers."""
    parser = commands.add_parser(
        "adapt",
        help=COMMANDS["adapt"].help,
        description=__doc__.split("\n\n")[0],
        allow_abbrev=False,
    )
    parser.add_argument("model", help="folder of a trained ser-hf model (a run's output_dir) on a speech encoder")
    parser.add_argument(
        "--data_dir", "--data-dir", required=True, help="your labelled recordings: a folder corpus (see --label_regex)"
    )
    parser.add_argument("--output_dir", "--output-dir", required=True, help="where the adapted model is saved")
    parser.add_argument(
        "--label_regex",
        "--label-regex",
        help="read each file's emotion from its name, e.g. '_(?P<label>[a-z]+)_\\d+\\.wav$' (default: the folder "
        "layout FOLDER/<emotion>/<file>)",
    )
    parser.add_argument(
        "--speaker_regex",
        "--speaker-regex",
        help="read each file's speaker from its path, e.g. '^(?P<speaker>[A-Z]+\\d)_' (a speaker per file: "
        "'(?P<speaker>[^/]+)$'); needed unless --option csv_path=... gives a speaker_column",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another folder-corpus option (csv_path, label_column, speaker_column, corpus_name, ...), repeatable",
    )
    parser.add_argument("--labels", help="keep only these emotions of the folder, comma-separated")
    parser.add_argument(
        "--test_speakers",
        "--test-speakers",
        help="speakers kept out of the adaptation and scored (comma-separated); default: every speaker adapts",
    )
    parser.add_argument(
        "--unlabelled_dir",
        "--unlabelled-dir",
        help="unlabelled recordings of the same set-up: one self-training round on them after the adaptation",
    )
    parser.add_argument("--seed", type=int, default=42, help="training seed (default 42)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a recipe value of the adaptation (e.g. num_train_epochs=50), repeatable; values read as YAML",
    )
    parser.set_defaults(run=adapt_command, interrupted_hint=RESUME_HINT)
    return parser


def corpus_options(args: argparse.Namespace) -> dict[str, Any]:
    """The folder-corpus options of the command line; a speaker pattern (or a CSV speaker column) is needed."""
    options: dict[str, Any] = {
        key: yaml.safe_load(value) for key, value in key_values(args.option, "--option").items()
    }
    if args.label_regex:
        options["label_regex"] = args.label_regex
    if args.speaker_regex:
        options["speaker_regex"] = args.speaker_regex
    if "speaker_regex" not in options and "speaker_column" not in options:
        raise RecipeError(
            "--speaker_regex is needed (the corpus statistics and any --test_speakers are per speaker): e.g. "
            "'^(?P<speaker>[A-Z]+\\d)_' for files named SPEAKER_..., or '(?P<speaker>[^/]+)$' for a speaker per file."
        )
    return options


def recipe_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` as recipe values (a dotted key sets one entry of a mapping), every key checked against the
    recipe's keys before anything loads."""
    from ..recipe.errors import unknown_key_message
    from ..recipe.keys import recipe_keys_before_imports

    known = recipe_keys_before_imports()
    overrides = {}
    for key, value in key_values(items, "--set").items():
        top = key.partition(".")[0]
        if known is not None and top not in known:
            raise RecipeError(f"--set: unknown recipe key {unknown_key_message(top, known)}.")
        overrides[key] = yaml.safe_load(value)
    return overrides


def check_inputs(args: argparse.Namespace) -> None:
    """What needs no heavy import, answered at once: the folders exist, the model is a trained ser-hf classifier, the
    corpus options are complete."""
    from ..recipe.adaptation import trained_model_facts

    trained_model_facts(args.model)
    corpus_options(args)
    for flag, folder in (("--data_dir", args.data_dir), ("--unlabelled_dir", args.unlabelled_dir)):
        if folder is not None and not Path(folder).expanduser().is_dir():
            raise RecipeError(f"{flag} {folder}: no such folder.")
    if Path(args.output_dir).expanduser().resolve() == Path(args.model).expanduser().resolve():
        raise RecipeError("--output_dir is the model's own folder: save the adapted model elsewhere.")


def adapt_command(args: argparse.Namespace) -> int:
    overrides = recipe_overrides(args.overrides)
    check_inputs(args)
    options = corpus_options(args)
    output_dir = Path(args.output_dir).expanduser()
    record = check_labelled_clips(args, options)
    if args.unlabelled_dir:
        work = output_dir.parent / f"{output_dir.name}{SELF_TRAINING_SUFFIX}"
        first_output = work / LABELLED_ONLY_FOLDER
        run_adaptation(args, args.data_dir, options, first_output, overrides)
        corpus, pseudo = self_training_corpus(args, first_output, options, work / SELF_TRAINING_CORPUS_FOLDER)
        record.update(pseudo)
        options = {"csv_path": str(corpus / SELF_TRAINING_CSV), "label_column": "label", "speaker_column": "speaker"}
        run_adaptation(args, corpus, options, output_dir, overrides)
    else:
        run_adaptation(args, args.data_dir, options, output_dir, overrides)
    # What the card says it was adapted from and on (the report alone cannot tell the model's labels, nor labelled
    # clips from pseudo-labelled ones).
    from ..hub.card import write_model_card
    from ..recipe.adaptation import ADAPTATION_FILE

    write_text_atomic(output_dir / ADAPTATION_FILE, json.dumps(record, indent=2) + "\n")
    write_model_card(output_dir)
    return 0


def check_labelled_clips(args: argparse.Namespace, options: dict) -> dict[str, Any]:
    """The labelled folder read (file names and folders only, nothing decoded) before the model loads: every label
    has a clip of a speaker who adapts, two labels at least, and the test speakers exist. Returns the adaptation's
    record so far: the model's labels, the folder's, which are new to the model and which it loses."""
    from collections import Counter

    from ..data.corpora import load_corpus
    from ..data.dataset_info import column_values
    from ..recipe.adaptation import trained_model_facts

    labelled = load_corpus("folder", args.data_dir, labels=csv_list(args.labels), **options)
    names = labelled.features["label"].names
    speakers = column_values(labelled, "speaker_id")
    test_speakers = speaker_ids(args.test_speakers, "--test_speakers") or []
    unknown = sorted(set(test_speakers) - set(speakers))
    if unknown:
        raise RecipeError(
            f"--test_speakers {', '.join(unknown)}: not among {args.data_dir}'s speakers {sorted(set(speakers))}."
        )
    if set(speakers) <= set(test_speakers):
        raise RecipeError(f"--test_speakers names every speaker of {args.data_dir}: none is left to adapt on.")
    counts = Counter(
        names[label]
        for label, speaker in zip(column_values(labelled, "label"), speakers)
        if speaker not in test_speakers
    )
    missing = [name for name in names if not counts[name]]
    if missing:
        raise RecipeError(
            f"{args.data_dir}: no clip of {', '.join(missing)} among the speakers who adapt (clips per label: "
            f"{dict(counts) or 'none'}): label at least one clip of every emotion, or leave it out with --labels."
        )
    if len(names) < 2:
        raise RecipeError(f"{args.data_dir}: clips of one emotion only ({names[0]}); label two emotions at least.")
    model_labels = trained_model_facts(args.model)["labels"]
    return {
        "adapted_from": str(args.model),
        "model_labels": model_labels,
        "labels": names,
        "new_labels": [name for name in names if name not in model_labels],
        "dropped_labels": [name for name in model_labels if name not in names],
        "labelled_clips": sum(counts.values()),
        "clips_per_label": {name: counts[name] for name in names},
    }


def run_adaptation(
    args: argparse.Namespace, data_dir, options: dict, output_dir: Path, overrides: dict[str, Any]
) -> None:
    """One adaptation run of MODEL on the corpus in `data_dir` into `output_dir`, through ``ser_hf.train``."""
    from ..recipe.adaptation import adaptation_values

    values = adaptation_values(
        args.model,
        data_dir,
        output_dir,
        corpus_options=options,
        test_speakers=speaker_ids(args.test_speakers, "--test_speakers") or (),
        labels=csv_list(args.labels),
        seed=args.seed,
    )
    from ..recipe.overrides import set_value

    for key, value in overrides.items():
        values = set_value(values, key, value)
    from ..train import main as train_main

    # Kept beside the adapted model: errors name a file that exists, and `ser-hf train` runs it again as it is.
    recipe = output_dir.parent / f"{output_dir.name}{RECIPE_SUFFIX}"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(recipe, yaml.safe_dump(values, sort_keys=False))
    logger.info("Adaptation recipe: %s (ser-hf train %s runs it again).", recipe, recipe)
    train_main([str(recipe)])


def self_training_corpus(
    args: argparse.Namespace, adapted: Path, options: dict, corpus: Path
) -> tuple[Path, dict[str, Any]]:
    """Classify ``--unlabelled_dir`` (its speakers read as the labelled folder's) with the adapted model in
    `adapted`, keep the surest share of each predicted emotion
    (:func:`~ser_hf.training.self_training.pick_pseudo_labels`) and make the corpus of the self-training round in the
    folder `corpus`: links to the labelled clips and to the kept recordings (with the predicted labels), listed in a
    CSV with their speakers. Returns the folder and the record of the adaptation's clips
    (:data:`~ser_hf.recipe.adaptation.ADAPTATION_FILE`)."""
    import numpy as np

    from ..data.corpora import load_corpus
    from ..data.corpora.spec import find_audio_files
    from ..data.dataset_info import column_values
    from ..deploy.predict import predict_files
    from ..recipe.adaptation import ADAPTATION_SELF_TRAINING_SHARE
    from ..training.self_training import pick_pseudo_labels

    labelled = load_corpus("folder", args.data_dir, labels=csv_list(args.labels), **options)
    names = labelled.features["label"].names
    columns = (column_values(labelled, name) for name in ("path", "label", "speaker_id"))
    clips = [(Path(path), names[label], speaker) for path, label, speaker in zip(*columns)]
    corpus.mkdir(parents=True, exist_ok=True)
    recordings = [str(path) for path in find_audio_files(args.unlabelled_dir)]  # links keep their own names
    speakers = unlabelled_speakers(recordings, Path(args.unlabelled_dir), options)
    speakers_csv = corpus / "unlabelled_speakers.csv"
    write_text_atomic(speakers_csv, csv_text([("path", "speaker_id"), *speakers.items()]))
    predictions = []
    predict_files(adapted, speakers_csv=speakers_csv, progress=False, on_prediction=predictions.append)
    scored = [prediction for prediction in predictions if prediction.scores]
    if not scored:
        raise RecipeError(f"--unlabelled_dir {args.unlabelled_dir}: no recording in it could be classified.")
    labels = list(scored[0].scores)
    probabilities = np.array([[p.scores[label] for label in labels] for p in scored], dtype=np.float64)
    picked, predicted = pick_pseudo_labels(np.log(np.clip(probabilities, 1e-12, None)), ADAPTATION_SELF_TRAINING_SHARE)
    clips += [(Path(scored[i].file), labels[label], scored[i].speaker) for i, label in zip(picked, predicted)]
    rows = [("path", "label", "speaker")]
    for number, (path, label, speaker) in enumerate(clips):
        link = corpus / f"{number:05d}_{path.name}"
        if not link.is_symlink():
            link.symlink_to(path.resolve())
        rows.append((link.name, label, speaker))
    write_text_atomic(corpus / SELF_TRAINING_CSV, csv_text(rows))
    logger.warning(
        "Self-training: %d of %d unlabelled recordings kept with their predicted emotions (the surest %d %% of each), "
        "beside the %d labelled clips.",
        len(picked),
        len(scored),
        round(100 * ADAPTATION_SELF_TRAINING_SHARE),
        len(labelled),
    )
    record = {
        "unlabelled_recordings": len(scored),
        "pseudo_labelled_clips": len(picked),
        "self_training_share": ADAPTATION_SELF_TRAINING_SHARE,
    }
    return corpus, record


def csv_text(rows: Sequence[Sequence[Any]]) -> str:
    """`rows` as CSV text."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def unlabelled_speakers(recordings: Sequence[str], root: Path, options: dict) -> dict[str, str]:
    """Each unlabelled recording's speaker, read with the labelled folder's ``speaker_regex`` from its path relative
    to ``--unlabelled_dir``; a recording it does not match is named in the error."""
    import re

    pattern = options.get("speaker_regex")
    if pattern is None:
        raise RecipeError("--unlabelled_dir needs --speaker_regex: each recording's speaker is read with it.")
    compiled = re.compile(pattern)
    speakers = {}
    for recording in recordings:
        searched = Path(recording).relative_to(root.expanduser().resolve()).as_posix()
        match = compiled.search(searched)
        speaker = (match.group("speaker") if "speaker" in compiled.groupindex else match.group(1)) if match else None
        if not speaker:
            raise RecipeError(f"--unlabelled_dir: --speaker_regex {pattern!r} finds no speaker in {searched!r}.")
        speakers[recording] = speaker
    return speakers


__all__ = ["add_adapt_parser", "adapt_command"]
