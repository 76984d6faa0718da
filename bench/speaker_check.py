"""Statistics under speakers heard in few emotions: leave-one-corpus-out models evaluated with speaker, corpus and
checked speaker statistics, in the ordinary condition and with each speaker keeping one or two emotions.

The models are the leave-one-corpus-out runs of bench/crosscorpus.py (``--output-dir``: one folder per recipe and
seed, ``fold-N`` in it, each trained as its recipe trains): the speaker general recipe's, evaluated three ways through
``ser_hf.evaluation.evaluate_on_dataset`` (the function ``ser-hf evaluate`` runs) on its left-out corpus:

* ``speaker``: each speaker's own statistics (the model as trained);
* ``checked``: ``speaker_statistics_check`` on (:mod:`ser_hf.evaluation.speaker_check`);
* ``corpus``: the statistics of the whole left-out corpus (its extractor's ``normalization`` set to ``corpus``);

and, where ``--corpus-runs`` gives them, the corpus general recipe's own models (``corpus model``). The conditions
(:mod:`ser_hf.evaluation.conditions`): ``ordinary`` (every clip), ``one emotion`` and ``two emotions`` (every
speaker keeps the clips of one or two emotions, every emotion still tested), ``mixed`` (half the speakers keep one
emotion, the others every clip); each reduced condition drawn ``--draws`` times. Scored as bench/crosscorpus.py
scores leave-one-corpus-out: the left-out corpus' own emotions that the model has among the six RAVDESS, TESS and
nEMO share, the model's choice restricted to them.

    python -m bench.speaker_check \\
        --runs outputs/bench_crosscorpus_loco4/general_whisper_base_speaker_*seed=* \\
        --corpus-runs outputs/bench_crosscorpus_loco4/general_whisper_base_corpus_*seed=* \\
        --results docs/results/crosscorpus/speaker_check-loco4.json

The result file is written after every model and read back by a run started again (finished models are skipped).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from bench.crosscorpus import scored_labels
from ser_hf.evaluation.conditions import keep_emotions_per_speaker
from ser_hf.evaluation.evaluate_model import (
    CorpusSource,
    evaluate_on_dataset,
    load_evaluation_corpus,
    load_trained_model,
)
from ser_hf.experiments.results import ResultFile

EXPERIMENT = "speaker-check"
#: The conditions: ``(name, emotions per speaker or None for every clip, share of the speakers reduced)``.
CONDITIONS = (
    ("ordinary", None, 1.0),
    ("one emotion", 1, 1.0),
    ("two emotions", 2, 1.0),
    ("mixed", 1, 0.5),
)
SPEAKER_ARMS = ("speaker", "checked", "corpus")
CORPUS_ARM = "corpus model"


def fold_corpus(fold_dir: Path) -> tuple[str, str]:
    """The left-out corpus of a leave-one-corpus-out fold (its test speakers' prefix) and its folder."""
    report = json.loads((fold_dir / "metrics.json").read_text())
    test = report["split"]["speakers"]["test"]
    corpus = test[0].split(":", 1)[0]
    config = json.loads((fold_dir / "run_config.json").read_text())["data"]
    return corpus, dict(zip(config["corpus"], config["data_dir"]))[corpus]


def run_seed(run: Path) -> str:
    """The training seed in a bench/crosscorpus.py run folder's name (``..._seed=42_...``)."""
    found = re.search(r"seed=(\d+)", run.name)
    if not found:
        raise SystemExit(f"{run}: no seed=N in the folder's name (a bench/crosscorpus.py run folder).")
    return found.group(1)


def evaluate(trained, dataset, source, scored: list[str], arm: str) -> float:
    """The UA (%) of one arm: the model's extractor set as the arm says, restored afterwards."""
    extractor = trained.feature_extractor
    saved = (extractor.normalization, getattr(extractor, "speaker_statistics_check", False))
    try:
        if arm == "checked":
            extractor.speaker_statistics_check = True
        elif arm == "corpus":
            extractor.normalization, extractor.speaker_statistics_check = "corpus", False
        elif arm == "speaker":
            extractor.speaker_statistics_check = False
        report = evaluate_on_dataset(trained, dataset, source, split="all", labels=scored, batch_size=32)
    finally:
        extractor.normalization, extractor.speaker_statistics_check = saved
    return 100 * next(iter(report["evaluation"].values()))["unweighted_accuracy"]


def conditions_of(dataset, scored: list[str], draws: int):
    """``(condition, draw, clips)`` of every condition and draw."""
    for name, per_speaker, share in CONDITIONS:
        if per_speaker is None:
            yield name, 0, dataset
            continue
        for draw in range(draws):
            yield name, draw, keep_emotions_per_speaker(dataset, per_speaker, draw, scored, speaker_share=share)


def model_cell(fold_dir: Path, arms: tuple[str, ...], draws: int) -> dict[str, Any]:
    """One model's UA under every condition (mean over draws, and each draw) and arm."""
    corpus, data_dir = fold_corpus(fold_dir)
    trained = load_trained_model(str(fold_dir))
    source = CorpusSource(corpus, data_dir)
    dataset = load_evaluation_corpus(source, trained.feature_extractor.sampling_rate)
    scored = scored_labels(corpus, trained.labels)
    draws_of: dict[str, dict[str, list[float]]] = {}
    for condition, _, clips in conditions_of(dataset, scored, draws):
        for arm in arms:
            score = evaluate(trained, clips, source, scored, arm)
            draws_of.setdefault(condition, {}).setdefault(arm, []).append(round(score, 2))
            print(f"  {corpus} {condition} {arm}: {score:.1f}", flush=True)
    return {
        "left_out": corpus,
        "scored_labels": scored,
        "ua": {c: {arm: round(float(np.mean(v)), 2) for arm, v in by_arm.items()} for c, by_arm in draws_of.items()},
        "draws": draws_of,
    }


def summarize(cells: list[dict]) -> dict[str, Any]:
    """Each condition's and arm's UA per left-out corpus (mean over the seeds) and over corpora; the loss of each arm
    against the better of ``speaker`` and the best corpus arm."""
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for cell in cells:
        for condition, by_arm in cell["ua"].items():
            for arm, value in by_arm.items():
                table.setdefault(condition, {}).setdefault(arm, {}).setdefault(cell["left_out"], []).append(value)
    summary: dict[str, Any] = {}
    for condition, by_arm in table.items():
        means = {arm: {corpus: float(np.mean(v)) for corpus, v in per.items()} for arm, per in by_arm.items()}
        order = list(dict.fromkeys(cell["left_out"] for cell in cells))  # the folds' order
        corpora = [corpus for corpus in order if all(corpus in per for per in means.values())]
        rows = {}
        for arm, per in means.items():
            seeds = min(len(by_arm[arm][corpus]) for corpus in corpora) if corpora else 0
            # Each seed's mean over the corpora (cells in the same seed order for every corpus).
            seed_means = [float(np.mean([by_arm[arm][c][index] for c in corpora])) for index in range(seeds)]
            rows[arm] = {
                **{corpus: round(per[corpus], 1) for corpus in corpora},
                "mean": round(float(np.mean([per[c] for c in corpora])), 1) if corpora else None,
                "seed_range": [round(min(seed_means), 1), round(max(seed_means), 1)] if seed_means else None,
                "seeds": seeds,
            }
        corpus_arms = [arm for arm in rows if arm in ("corpus", CORPUS_ARM)]
        if "speaker" in rows and corpus_arms:
            better = max(rows["speaker"]["mean"], *(rows[arm]["mean"] for arm in corpus_arms))
            for arm in rows:
                rows[arm]["loss_against_better"] = round(better - rows[arm]["mean"], 1)
        summary[condition] = {"corpora": corpora, "arms": rows}
    return summary


def markdown(document: dict[str, Any]) -> str:
    draws = document["settings"]["draws"]
    lines = [
        f"`{document['command']}` ({document['date']}, commit {document['commit'][:10]})",
        "",
        "UA (%) on each left-out corpus, mean of the training seeds; `mean`: over the corpora, with the range of the "
        f"seeds' means; each reduced condition averaged over {draws} draws. `below the better`: points below the "
        "best of speaker statistics and the two corpus arms. Scored on the left-out corpus' own emotions among the "
        "six RAVDESS, TESS and nEMO share, the model's choice restricted to them. TESS has two speakers: with one "
        "emotion each, two of its emotions are tested per draw.",
        "",
    ]
    for condition, part in document["summary"].items():
        corpora = part["corpora"]
        lines += [
            f"**{condition}**",
            "",
            "| statistics | " + " | ".join(f"{c} left out" for c in corpora) + " | mean | below the better |",
            "|---|" + "---:|" * (len(corpora) + 2),
        ]
        for arm, row in part["arms"].items():
            values = " | ".join(f"{row[c]:.1f}" for c in corpora)
            loss = row.get("loss_against_better")
            low, high = row["seed_range"]
            below = "" if loss is None else f"{loss:.1f}"
            lines.append(f"| {arm} | {values} | {row['mean']:.1f} ({low:.1f}-{high:.1f}) | {below} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--runs", nargs="+", required=True, help="the speaker recipe's run folders (one per seed)")
    parser.add_argument("--corpus-runs", nargs="*", default=[], help="the corpus recipe's run folders (optional)")
    parser.add_argument("--draws", type=int, default=3, help="draws of each reduced condition")
    parser.add_argument("--results", required=True, help="the result file (JSON; a .md table beside it)")
    args = parser.parse_args(argv)
    settings = {"draws": args.draws, "conditions": [list(c) for c in CONDITIONS]}
    command = " ".join(["python -m bench.speaker_check", *(argv if argv is not None else sys.argv[1:])])
    results = ResultFile(args.results, EXPERIMENT, settings, summarize, command=command)
    jobs = [(Path(run), SPEAKER_ARMS) for run in args.runs] + [(Path(run), (CORPUS_ARM,)) for run in args.corpus_runs]
    for run, arms in jobs:
        for fold_dir in sorted(run.glob("fold-*")):
            if not (fold_dir / "model.safetensors").is_file():
                continue
            key = f"{run.name}/{fold_dir.name}"
            if results.done(key):
                continue
            print(f"{key}:", flush=True)
            cell = model_cell(fold_dir, tuple(a if a != CORPUS_ARM else "model" for a in arms), args.draws)
            if arms == (CORPUS_ARM,):
                cell["ua"] = {c: {CORPUS_ARM: v["model"]} for c, v in cell["ua"].items()}
                cell["draws"] = {c: {CORPUS_ARM: v["model"]} for c, v in cell["draws"].items()}
            results.add({"key": key, "seed": run_seed(run), **cell})
    Path(args.results).with_suffix(".md").write_text(markdown(results.document()) + "\n")
    print(markdown(results.document()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
