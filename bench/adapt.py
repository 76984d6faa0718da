"""The adaptation learning curve of BENCHMARKS.md: ``ser-hf learning-curve`` (the code ``ser-hf adapt`` runs) from
the general model as it ships, left out corpus by corpus over RAVDESS (actors 01-20), TESS and nEMO in ../shared/data.

    python -m bench.adapt --model-path ../shared/models/whisper-base-encoder \\
        --results docs/results/adapt/learning-curve.json
    python -m bench.adapt --model-path ../shared/models/whisper-base-encoder --time \\
        --results docs/results/adapt/timing.json

For each corpus left out, recipes/general_whisper_base_speaker.yaml is trained as it ships (its settings, statistics,
validation speakers and the calibration temperature they fit) on the other corpora (as ``ser-hf train`` trains it; a
model already trained under ``--output-dir`` is read back): BanglaSER is always among them, as in the recipe, and never
left out (it has no fear, one of the emotions every direction is scored on). Its validation speakers are RAVDESS actors
17-20, as shipped; with RAVDESS left out, nEMO's TP0 and WR0 validate instead. The left-out corpus' speakers are then
split in two, as in every earlier curve: RAVDESS actors 01-10 adapt and 11-20 test; nEMO's first four speakers (sorted)
adapt and the other five test; TESS one speaker adapts and the other tests, each way round (TESS's figure is the mean
of the two). Each direction is one ``ser-hf learning-curve`` result (:func:`ser_hf.experiments.run_learning_curve`) on
the six emotions the three corpora share, and ``--results`` gathers them (the summary per scenario, arm and k: each
direction's mean over draws, TESS's two directions averaged, then the mean of the corpora; beside it the mean of the
adaptation's own cross-validated estimates and their mean absolute difference from the test speakers' UA). The
``few-emotions`` scenario (every speaker heard in two emotions) runs on RAVDESS and nEMO only: TESS has one adaptation
speaker, who cannot be heard in two emotions and cover six. Every result file is written after each cell, and the
command started again resumes.

``--time`` times one ``ser-hf adapt`` of each general model on 5 clips per emotion of its left-out corpus (draw 1),
laid out as a user's flat folder, in a fresh process with empty caches (the encoding included); run it on an idle
machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from bench.harness import means_over_corpora, write_json
from ser_hf.adaptation.trained_model import trained_model_facts
from ser_hf.atomic_files import write_text_atomic
from ser_hf.experiments import run_learning_curve
from ser_hf.experiments.constants import LEARNING_CURVE_ARMS, LEARNING_CURVE_DEFAULTS, LEARNING_CURVE_SCENARIOS
from ser_hf.experiments.learning_curve import (
    LABEL_REGEX,
    SPEAKER_REGEX,
    CurveCorpus,
    draw_clips,
    estimate_summary,
    scenario_of,
)
from ser_hf.experiments.loco import loco_values
from ser_hf.experiments.results import run_fields
from ser_hf.recipe import Recipe
from ser_hf.recipe.yaml_io import read_recipe_file
from ser_hf.training.run_recipe import run_parsed_recipe

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
#: The corpora left out in turn (the curve's columns): the three of every earlier curve.
CORPORA = {"ravdess": SHARED / "ravdess_16k", "tess": SHARED / "tess", "nemo": SHARED / "nemo"}
#: Every corpus the general recipe trains on (BanglaSER is never left out: it lacks fear, one of SHARED_LABELS).
TRAINING_CORPORA = {**CORPORA, "banglaser": SHARED / "banglaser"}
GENERAL_RECIPE = REPO / "recipes" / "general_whisper_base_speaker.yaml"
#: The emotions the three corpora share: every arm and direction is scored on them, as in every earlier curve.
SHARED_LABELS = ["neutral", "happy", "sad", "angry", "fearful", "surprised"]
#: Validation speakers where the recipe's own (RAVDESS 17-20) are left out with their corpus.
VALIDATION_WITHOUT_RAVDESS = ["nemo:TP0", "nemo:WR0"]
NEMO_SPEAKERS = ["EB0", "IC0", "KD0", "KS0", "MK0", "MP0", "SM0", "TP0", "WR0"]
RAVDESS_ACTORS = [f"{actor:02d}" for actor in range(1, 21)]
#: (direction, corpus left out, adaptation speakers, test speakers).
DIRECTIONS = [
    ("ravdess", "ravdess", RAVDESS_ACTORS[:10], RAVDESS_ACTORS[10:]),
    ("tess:OAF->YAF", "tess", ["OAF"], ["YAF"]),
    ("tess:YAF->OAF", "tess", ["YAF"], ["OAF"]),
    ("nemo", "nemo", NEMO_SPEAKERS[:4], NEMO_SPEAKERS[4:]),
]
LEFT_OUT = {name: left_out for name, left_out, _, _ in DIRECTIONS}
TIME_K = 5
#: The corpus the adaptation settings were chosen on (RAVDESS left out, choice draws): the summary also gives the mean
#: of the other corpora.
CHOICE_CORPUS = "ravdess"


def general_values(left_out: str, model_path: str, output_dir: Path) -> dict:
    """recipes/general_whisper_base_speaker.yaml as it ships on the corpora other than `left_out` (taken out as
    ``ser-hf loco`` takes them out, :func:`~ser_hf.experiments.loco.loco_values`), with the recipe's split where its
    speakers remain."""
    shipped = read_recipe_file(GENERAL_RECIPE)
    paths = {"data_dir": [str(TRAINING_CORPORA[name]) for name in shipped["corpus"]], "model_name_or_path": model_path}
    values, _ = loco_values(GENERAL_RECIPE, paths, corpora=[name for name in shipped["corpus"] if name != left_out])
    train_only = [corpus for corpus in shipped["train_only_corpora"] if corpus != left_out]
    split = {key: shipped[key] for key in ("train_speakers", "validation_speakers")}
    if left_out == "ravdess":  # the recipe's training and validation speakers are RAVDESS's: nEMO's two validate
        train_only.remove("nemo")
        split["train_speakers"] = [f"nemo:{s}" for s in NEMO_SPEAKERS if f"nemo:{s}" not in VALIDATION_WITHOUT_RAVDESS]
        split["validation_speakers"] = VALIDATION_WITHOUT_RAVDESS
    # The recipe's test actors (RAVDESS 21-24) are not in ../shared's RAVDESS (actors 01-20): no test split.
    return {**values, **split, "train_only_corpora": train_only, "test_speakers": [], "output_dir": str(output_dir)}


def trained_general_model(left_out: str, model_path: str, work: Path) -> Path:
    """The general model without `left_out`, trained once (as ``ser-hf train`` trains a recipe) and read back."""
    output_dir = work / f"general-without-{left_out}"
    if not (output_dir / "model.safetensors").is_file():
        values = general_values(left_out, model_path, output_dir)
        run_parsed_recipe(Recipe.from_values({**values, "overwrite_output_dir": True, "disable_tqdm": True}))
    return output_dir


def summary(directions: Mapping[str, Mapping[str, Any]]) -> list[dict]:
    """Per scenario, arm and k: each direction's mean, lowest and highest UA over draws, TESS's two directions
    averaged into TESS's figure, the mean of the corpora measured (with the range of that mean over draws), and the
    adaptation's own estimates: their mean, and their mean absolute difference from the test UA over the cells."""

    def key(cell: Mapping[str, Any]) -> tuple:
        return scenario_of(cell), cell["arm"], cell["k"]

    def mean(values) -> Optional[float]:
        values = list(values)
        return round(float(np.mean(values)), 2) if values else None

    cells = [(name, cell) for name, document in directions.items() for cell in document["cells"]]
    keys = sorted(
        {key(cell) for _, cell in cells},
        key=lambda k: (LEARNING_CURVE_SCENARIOS.index(k[0]), LEARNING_CURVE_ARMS.index(k[1]), k[2]),
    )
    rows = []
    for scenario, arm, k in keys:
        chosen = [(name, cell) for name, cell in cells if key(cell) == (scenario, arm, k)]
        by_direction = {}  # in the directions' order, as `cells` comes
        for name, cell in chosen:
            by_direction.setdefault(name, []).append(cell["unweighted_accuracy"])
        by_direction = {
            name: {"mean": mean(v), "min": min(v), "max": max(v), "draws": len(v)} for name, v in by_direction.items()
        }
        # TESS's two directions averaged into its figure; a draw's mean over the corpora counts once every corpus has
        # a figure of that draw.
        by_corpus, by_draw = means_over_corpora(
            (LEFT_OUT[name], cell["draw"], cell["unweighted_accuracy"]) for name, cell in chosen
        )
        corpora = {corpus: round(by_corpus[corpus], 2) for corpus in CORPORA if corpus in by_corpus}
        rows.append(
            {
                "scenario": scenario,
                "arm": arm,
                "k": k,
                "by_direction": by_direction,
                "by_corpus": corpora,
                "corpora": sorted(corpora),
                "loco_mean": mean(corpora.values()),
                "mean_without_choice_corpus": mean(v for c, v in corpora.items() if c != CHOICE_CORPUS),
                "loco_draw_range": [round(min(by_draw.values()), 2), round(max(by_draw.values()), 2)]
                if by_draw
                else None,
                **estimates(cell for _, cell in chosen),
                "kept_unchanged": sum(cell.get("kept") in ("unchanged", "not adapted") for _, cell in chosen),
                "cells": len(chosen),
            }
        )
    return rows


def estimates(cells) -> dict[str, Any]:
    """The adaptation's own estimates over `cells` (:func:`~ser_hf.experiments.learning_curve.estimate_summary`):
    their mean (``estimate_mean``), mean absolute error, coverage and count."""
    summary = estimate_summary(list(cells))
    return {"estimate_mean": summary.pop("estimate"), **summary}


def write_results(path: Path, directions: Mapping[str, Mapping[str, Any]], models: Mapping[str, str]) -> None:
    document = {
        "benchmark": "bench/adapt.py",
        "protocol": "leave-one-corpus-out, adaptation speakers apart from test speakers (ser-hf learning-curve)",
        **run_fields(),
        "general_recipe": str(GENERAL_RECIPE.relative_to(REPO)),
        "general_models": dict(models),
        "settings": {
            key: value for key, value in next(iter(directions.values()))["settings"].items() if key != "model"
        },
        "summary": {"": summary(directions)},
        "direction_commands": {name: document["command"] for name, document in directions.items()},
        "sources": {name: document.get("sources", {}) for name, document in directions.items()},
        "directions": {name: document["cells"] for name, document in directions.items()},
    }
    write_text_atomic(path, json.dumps(document, indent=2) + "\n")
    write_text_atomic(path.with_suffix(".md"), markdown(document))


def markdown(document: Mapping[str, Any]) -> str:
    """The summary as a table: UA (%) per corpus left out, their mean with its range over draws, and the
    adaptation's own estimate beside it."""
    lines = [
        f"# Adaptation learning curve ({document['date']}, commit {document['commit'][:7]})",
        "",
        f"`{document['command']}`",
        "",
        "k: clips per emotion of the oracle arm; the random and suggested arms label as many clips (k x 6), whatever "
        "their emotions. Own estimate: the adaptation's cross-validated UA on the labelled speakers (mean), and its "
        "mean absolute difference from the test speakers' UA; coverage: the share of its 90 % intervals that hold the "
        "test UA, of the cells with an estimate (none is printed below 3 clips per emotion or 2 speakers).",
        "",
        "| scenario | arm | k | RAVDESS left out | TESS left out | nEMO left out | mean (draws' range) | "
        "own estimate (error) | coverage | kept unchanged |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in document["summary"][""]:
        corpora = [f"{row['by_corpus'][c]:.1f}" if c in row["by_corpus"] else "-" for c in CORPORA]
        low, high = row["loco_draw_range"] or (row["loco_mean"], row["loco_mean"])
        mean = f"{row['loco_mean']:.1f} ({low:.1f}-{high:.1f})" if row["loco_mean"] is not None else "-"
        estimate, coverage = "-", "-"
        if row.get("estimate_mean") is not None:
            estimate = f"{row['estimate_mean']:.1f} ({row['estimate_error']:.1f})"
        if row.get("coverage") is not None:
            coverage = f"{row['coverage']:.0f} % of {row['estimated']}"
        kept = f"{row.get('kept_unchanged', 0)} of {row.get('cells', 0)}" if row["arm"] != "zero-shot" else "-"
        lines.append(
            f"| {row['scenario']} | {row['arm']} | {row['k']} | {' | '.join(corpora)} | {mean} | {estimate} | "
            f"{coverage} | {kept} |"
        )
    return "\n".join(lines) + "\n"


def time_adaptation(general: Path, corpus: str, adapt: Sequence[str], work: Path) -> dict:
    """Wall and CPU time of one ``ser-hf adapt`` on TIME_K clips per emotion of `corpus`'s adaptation speakers (draw
    1) in a user's flat folder, in a fresh process with empty caches (the encoding included)."""
    clips = CurveCorpus(corpus, CORPORA[corpus], {}, trained_model_facts(general)["labels"], SHARED_LABELS)
    rows = draw_clips(clips.label_of, clips.speaker_of, adapt, TIME_K, 1)
    folder = clips.link_folder(work / f"my_recordings-{corpus}", rows)
    command = [sys.executable, "-m", "ser_hf.cli", "adapt", str(general), "--data_dir", str(folder)]
    command += ["--output_dir", str(work / f"adapted-{corpus}"), "--label_regex", LABEL_REGEX]
    command += ["--speaker_regex", SPEAKER_REGEX]
    environment = {**os.environ, "HF_DATASETS_CACHE": str(work / f"cache-{corpus}"), "OMP_NUM_THREADS": "2"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, env=environment, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "corpus": corpus,
        "clips": len(rows),
        "command": " ".join(command[2:]),
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
    }


def curve_file(output_dir: Path, direction: str) -> Path:
    """The result file of one direction's ``ser-hf learning-curve``."""
    return output_dir / f"curve-{direction.replace(':', '_').replace('->', '-')}.json"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--model-path", required=True, help="the Whisper base encoder (openai/whisper-base's folder)")
    parser.add_argument("--results", type=Path, required=True, help="the JSON gathered from every direction")
    parser.add_argument("--output-dir", type=Path, default=REPO / "outputs" / "bench_adapt")
    parser.add_argument("--directions", nargs="+", choices=[d[0] for d in DIRECTIONS], help="default: all")
    parser.add_argument("--ks", type=int, nargs="+", default=list(LEARNING_CURVE_DEFAULTS["ks"]))
    parser.add_argument("--draws", type=int, nargs="+", default=list(LEARNING_CURVE_DEFAULTS["draws"]))
    parser.add_argument("--arms", nargs="+", default=["zero-shot", "random", "suggested", "oracle"])
    parser.add_argument("--scenarios", nargs="+", default=list(LEARNING_CURVE_SCENARIOS))
    parser.add_argument("--time", action="store_true", help="time one ser-hf adapt per corpus left out (module doc)")
    parser.add_argument(
        "--gather",
        action="store_true",
        help="train and adapt nothing: gather the directions' result files already under --output-dir into --results",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")  # a line per cell
    missing = [str(path) for path in TRAINING_CORPORA.values() if not path.is_dir()]
    if missing:
        raise SystemExit(f"{', '.join(missing)} missing: bench/adapt.py needs ../shared/data.")
    chosen = [d for d in DIRECTIONS if args.directions is None or d[0] in args.directions]
    # Each general model is trained when its first direction comes (trained_general_model reads it back after).
    if args.time:
        work = args.output_dir / f"timing-{time.strftime('%Y%m%d-%H%M%S')}"
        timings = []
        for _, left_out, adapt, _ in chosen:
            if left_out not in {timing["corpus"] for timing in timings}:
                general = trained_general_model(left_out, args.model_path, args.output_dir)
                timings.append(time_adaptation(general, left_out, adapt, work))
                print(timings[-1], flush=True)
        write_json(args.results, {"benchmark": "bench/adapt.py --time", "timings": timings})
        return json.loads(args.results.read_text())
    directions, models = {}, {}
    for scenario in args.scenarios:
        for name, left_out, adapt, test in chosen:
            path = curve_file(args.output_dir, f"{scenario}-{name}")
            if scenario == "few-emotions" and len(adapt) < 2 or args.gather and not path.is_file():
                continue  # one adaptation speaker heard in two emotions cannot cover six (module text)
            models[left_out] = str(args.output_dir / f"general-without-{left_out}")
            if args.gather:
                document = json.loads(path.read_text())
            else:
                document = run_learning_curve(
                    trained_general_model(left_out, args.model_path, args.output_dir),
                    CORPORA[left_out],
                    path,
                    corpus=left_out,
                    adapt_speakers=adapt,
                    test_speakers=test,
                    labels=SHARED_LABELS,
                    ks=args.ks,
                    draws=args.draws,
                    arms=args.arms,
                    scenarios=[scenario],
                )
            # A direction's files (one per scenario) as one: every scenario's cells, the first file's settings.
            entry = directions.setdefault(name, {"settings": document["settings"], "command": document["command"]})
            entry["cells"] = entry.get("cells", []) + document["cells"]
            # Gathered files may come from several runs: each scenario's commit and date stay with its cells.
            entry.setdefault("sources", {})[scenario] = {key: document.get(key) for key in ("commit", "date")}
            write_results(args.results, directions, models)
    return json.loads(args.results.read_text())


if __name__ == "__main__":
    main()
