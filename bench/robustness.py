"""Accuracy under the recordings users make: every model of a ``ser-hf loco`` result file (one per left-out corpus and
seed, each trained without the corpus it is scored on) scored on its left-out corpus clean and under the recording
conditions of ``ser-hf evaluate --conditions`` (:func:`ser_hf.evaluation.evaluate_model`, the code users run).

    ser-hf loco recipes/general_whisper_base_speaker.yaml --seeds 42 7 43 --run_dir outputs/loco4/speaker \\
        --data_dir RAVDESS TESS NEMO BANGLASER --score_labels neutral happy sad angry fearful surprised \\
        --model_path openai/whisper-base=../shared/models/whisper-base-encoder --output LOCO.json
    python -m bench.robustness --loco speaker=LOCO.json [augmented=LOCO2.json ...] \\
        --results docs/results/robustness/loco4-general_whisper_base_speaker.json

Each left-out corpus is scored on a fixed, seeded sample of ``--clips-per-label`` clips of each of its emotions among
the loco run's ``score_labels`` (from every speaker, laid out as a folder of links, as ``ser-hf learning-curve`` lays
out its cells), the same sample for every model, so that six passes (clean and five conditions, each re-encoded, and
the encodings cached under the condition's key for the next model) fit a 2-core machine; every condition is seeded
(``condition_seed`` 0), so a run again gives the same figures. The result file is written after every model, and a
model it holds is not scored again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench.harness import means_over_corpora
from ser_hf.adaptation.trained_model import trained_model_facts
from ser_hf.atomic_files import write_text_atomic
from ser_hf.cli.flags import key_value_pairs
from ser_hf.errors import RecipeError
from ser_hf.evaluation.evaluate_model import CorpusSource, evaluate_model
from ser_hf.experiments.learning_curve import LABEL_REGEX, SPEAKER_REGEX, CurveCorpus
from ser_hf.experiments.results import read_result_file, run_fields
from ser_hf.inputs.degradations import parse_conditions

REPO = Path(__file__).resolve().parent.parent
#: The conditions of issue 86's targets: noise at 10 and 0 dB SNR, telephone, Opus at 12 kbit/s, a room of RT60 0.6 s
#: (the default of ``--conditions``; a result file records its own, and every table reads them from it).
CONDITIONS = ["pink_noise:snr=10", "pink_noise:snr=0", "telephone", "opus:bitrate=12k", "reverb:rt60=0.6"]


def sample_folder(corpus: str, data_dir: str, labels: list[str], folder: Path, clips_per_label: int) -> Path:
    """A folder of links to `clips_per_label` clips of each of `labels` that `corpus` holds, drawn with seed 0; made
    once, so that every model reads the same files (and the encodings cached for them)."""
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    clips = CurveCorpus(corpus, data_dir, {}, labels, None)
    generator = np.random.default_rng(0)
    rows = []
    for label in clips.labels:
        pool = [row for row, name in enumerate(clips.label_of) if name == label]
        rows += generator.choice(pool, size=min(clips_per_label, len(pool)), replace=False).tolist()
    return clips.link_folder(folder, sorted(rows))


def score(model: Path, folder: Path, labels: list[str], conditions: list[str] = CONDITIONS) -> dict:
    """The model on the folder, clean and under every condition of `conditions`: UA and its change against clean,
    with intervals."""
    source = CorpusSource("folder", str(folder), options={"label_regex": LABEL_REGEX, "speaker_regex": SPEAKER_REGEX})
    report = evaluate_model(str(model), source, split="all", labels=labels, conditions=parse_conditions(conditions))
    scored = report["recording_conditions"]
    if scored.get("failed"):  # a cell with a condition missing would not compare with the others
        raise RuntimeError(
            f"{model}: not scored under "
            + "; ".join(f"{row['condition']} ({row['error']})" for row in scored["failed"])
        )
    row = {"clean": round(100 * scored["clean"]["unweighted_accuracy"], 2), "clips": scored["clean"]["clips"]}
    for name, condition in zip(conditions, scored["conditions"]):
        change = condition["change"]
        row[name] = {
            "unweighted_accuracy": round(100 * condition["unweighted_accuracy"], 2),
            "change": round(100 * change["unweighted_accuracy_difference"], 2),
            "change_interval": [round(100 * v, 2) for v in change["interval"]] if change.get("interval") else None,
            "condition": condition["condition"],
        }
    return row


def summary(cells: dict, conditions: list[str] = CONDITIONS) -> dict:
    """Per left-out corpus, the mean over seeds of clean UA and of each condition's UA (of `conditions`); then the
    mean over corpora of each seed, and those seed means' mean and range (clean, each condition, and the conditions'
    mean)."""

    def value(cell: dict, column: str) -> float:
        if column == "clean":
            return cell["clean"]
        if column == "conditions":
            return float(np.mean([cell[name]["unweighted_accuracy"] for name in conditions]))
        return cell[column]["unweighted_accuracy"]

    columns = {
        column: means_over_corpora((cell["test"], cell["seed"], value(cell, column)) for cell in cells.values())
        for column in ["clean", *conditions, "conditions"]
    }
    by_corpus, by_seed = columns["clean"]
    return {
        "corpora": list(by_corpus),
        "seeds": list(by_seed),
        "by_corpus": {corpus: {c: round(means[0][corpus], 2) for c, means in columns.items()} for corpus in by_corpus},
        "mean": {
            column: {"mean": round(float(np.mean(list(seeds.values()))), 2), "range": _range(seeds.values())}
            for column, (_, seeds) in columns.items()
            if seeds
        },
    }


def _range(values) -> list[float]:
    return [round(min(values), 2), round(max(values), 2)]


def markdown(document: dict) -> str:
    lines = [
        f"# Accuracy under recording conditions ({document['date']}, commit {document['commit'][:7]})",
        "",
        f"`{document['command']}`",
        "",
        f"UA (%) of each leave-one-corpus-out model on the corpus it never trained on ({document['clips_per_label']} "
        "clips of each emotion), clean and under each condition; per corpus the mean over seeds, and the mean over "
        "corpora with its range over seeds (change against clean in brackets).",
    ]
    conditions = document.get("conditions", CONDITIONS)
    for name, run in document["runs"].items():
        facts = summary(run["cells"], conditions)
        lines += ["", f"## {name} ({run['loco']}; seeds {', '.join(map(str, facts['seeds'])) or 'incomplete'})", ""]
        lines += ["| corpus left out | clean | " + " | ".join(conditions) + " | conditions' mean |"]
        lines += ["|---|---:|" + "---:|" * (len(conditions) + 1)]
        for corpus, row in facts["by_corpus"].items():
            cells = [f"{row[c]:.1f} ({row[c] - row['clean']:+.1f})" for c in [*conditions, "conditions"]]
            lines.append(f"| {corpus} | {row['clean']:.1f} | " + " | ".join(cells) + " |")
        if facts["mean"]:
            mean = facts["mean"]
            cells = [
                f"{mean[c]['mean']:.1f} ({mean[c]['mean'] - mean['clean']['mean']:+.1f}; "
                f"{mean[c]['range'][0]:.1f}-{mean[c]['range'][1]:.1f})"
                for c in [*conditions, "conditions"]
            ]
            clean = mean["clean"]
            lines.append(
                f"| **mean** | {clean['mean']:.1f} ({clean['range'][0]:.1f}-{clean['range'][1]:.1f}) | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines) + "\n"


def loco_cells(path: Path) -> tuple[dict, dict]:
    """The settings of a ``ser-hf loco`` result file and its cells by key, refused in one line when it is not one."""
    try:
        document = read_result_file(path, "loco", "give --loco a ser-hf loco result file")
    except RecipeError as error:
        raise SystemExit(f"--loco {error}") from None
    return document["settings"], {cell["key"]: cell for cell in document["cells"]}


def write_results(path: Path, document: dict) -> None:
    """The result file and its table beside it (``.md``), each written whole or not at all."""
    write_text_atomic(path, json.dumps(document, indent=2) + "\n")
    write_text_atomic(path.with_suffix(".md"), markdown(document))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--loco", nargs="+", required=True, metavar="NAME=RESULT.json", help="ser-hf loco results")
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--clips-per-label", type=int, default=40)
    parser.add_argument("--samples-dir", type=Path, default=REPO / "outputs" / "robustness_samples")
    parser.add_argument(
        "--conditions",
        nargs="+",
        default=CONDITIONS,
        help="the conditions of ser-hf evaluate --conditions scored (default: issue 86's five)",
    )
    args = parser.parse_args(argv)
    try:
        parse_conditions(args.conditions)
    except ValueError as error:
        parser.error(f"--conditions: {error}")
    try:
        runs = {name: Path(path) for name, path in key_value_pairs(args.loco, "--loco", "NAME=RESULT.json").items()}
    except RecipeError as error:
        parser.error(str(error))
    document = json.loads(args.results.read_text()) if args.results.is_file() else {"runs": {}}
    if document.get("clips_per_label", args.clips_per_label) != args.clips_per_label:
        raise SystemExit(f"{args.results} holds samples of {document['clips_per_label']} clips a label: --restart")
    if document.get("conditions", args.conditions) != args.conditions:
        raise SystemExit(
            f"{args.results} holds the conditions {' '.join(document['conditions'])}: give the same --conditions, or "
            "another --results"
        )
    document.update(
        run_fields(),
        conditions=args.conditions,
        clips_per_label=args.clips_per_label,
    )
    for name, path in runs.items():
        settings, cells = loco_cells(path)
        data_dirs = dict(zip(settings["corpora"], settings["data_dir"]))
        run = document["runs"].setdefault(name, {"loco": str(path), "cells": {}})
        for key, cell in cells.items():
            if key in run["cells"]:
                continue
            model = Path(cell["run"])
            labels = [label for label in settings["score_labels"] if label in trained_model_facts(model)["labels"]]
            corpus = cell["test"]
            folder = sample_folder(
                corpus,
                data_dirs[corpus],
                labels,
                args.samples_dir / f"{corpus}-{args.clips_per_label}",
                args.clips_per_label,
            )
            row = score(model, folder, [label for label in labels if label in cell["scored_labels"]], args.conditions)
            run["cells"][key] = {"test": corpus, "seed": cell["seed"], "model": str(model), **row}
            print(name, key, row["clean"], {c: row[c]["change"] for c in args.conditions}, flush=True)
            write_results(args.results, document)
    for run in document["runs"].values():
        run["summary"] = summary(run["cells"], args.conditions)
    write_results(args.results, document)
    return document


if __name__ == "__main__":
    main()
