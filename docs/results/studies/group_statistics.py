"""How many recordings a speaker's statistics need: a model trained on speaker-normalised features (or
corpus-normalised ones) classifying each speaker's clips in groups of k, each group standardised with its own
statistics as ``ser-hf predict --speakers`` computes them, against the same clips standardised with the training
statistics the model stores (what a single recording falls back to).

    python -m bench.accuracy recipes/ravdess_whisper_base_fast_speaker.yaml \\
        --model-path openai/whisper-base=../shared/models/whisper-base-encoder --output-dir outputs/bench_accuracy
    python -m docs.results.studies.group_statistics \\
        outputs/bench_accuracy/ravdess_whisper_base_fast_speaker-seed42/fold-0 --sizes 1 2 3 5 10 --threads 1

The clips are the fold's test clips (its ``metrics.json``), each speaker's shuffled (``--seed``) and cut into groups of
k (the last group of a speaker may be smaller); every size classifies every clip through
:func:`ser_hf.deploy.classify.classify_files`, so a size's time is a pass of statistics and a pass of classification
over the clips. Prints the UA (unweighted accuracy) of each size, of the speakers' whole sets of clips and of the
training statistics; ``--json`` writes them.

Archived study (issue 77): kept beside docs/results/LOG.md's account of it as the record of how its result file was
made; not run by the tests and not kept in step with bench/. Run it from the repository root as a module,
``python -m docs.results.studies.group_statistics``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.harness import set_threads
from ser_hf.experiments.results import machine_description, run_fields

WHOLE = "whole"
TRAINING = "training"


def unweighted_accuracy(predicted: dict[str, str], labels: dict[str, str]) -> float:
    correct = defaultdict(list)
    for path, label in labels.items():
        correct[label].append(predicted.get(path) == label)
    return float(100 * np.mean([np.mean(values) for values in correct.values()]))


def groups_of(speakers: dict[str, str], size: int, rng: np.random.Generator) -> dict[str, str]:
    """Each clip's group: its speaker's clips shuffled and cut into groups of `size`."""
    by_speaker = defaultdict(list)
    for path, speaker in speakers.items():
        by_speaker[speaker].append(path)
    groups = {}
    for speaker, paths in sorted(by_speaker.items()):
        for index, path in enumerate(rng.permutation(sorted(paths))):
            groups[str(path)] = f"{speaker}-{index // size}"
    return groups


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="a trained fold's folder (its model and metrics.json)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 2, 3, 5, 10], help="clips per group")
    parser.add_argument("--seed", type=int, default=0, help="the shuffle of each speaker's clips")
    parser.add_argument("--threads", type=int, help="torch threads")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if any(size < 1 for size in args.sizes):
        parser.error(f"--sizes must be positive, got {args.sizes}")
    set_threads(args.threads)
    from ser_hf.deploy.classify import classify_files
    from ser_hf.deploy.pipelines import load_classifier

    clips = json.loads((args.model / "metrics.json").read_text())["evaluation"]["test"]["clip_predictions"]
    labels = {clip["path"]: clip["label"] for clip in clips}
    speakers = {clip["path"]: clip["speaker_id"] for clip in clips}
    classifier = load_classifier(str(args.model))
    print(machine_description())
    print(f"{args.model}: {len(clips)} test clips of {len(set(speakers.values()))} speakers")
    rng = np.random.default_rng(args.seed)
    results = {}
    for size in [TRAINING, *args.sizes, WHOLE]:
        groups = None if size == TRAINING else speakers if size == WHOLE else groups_of(speakers, size, rng)
        started = time.perf_counter()
        predicted = {
            prediction.file: prediction.label
            # Each group's own statistics however few its clips (what the measurement is of): no fallback.
            for prediction in classify_files(
                classifier, list(labels), speakers=groups, progress=False, min_statistics_rows=1
            )
        }
        results[str(size)] = {
            "unweighted_accuracy": round(unweighted_accuracy(predicted, labels), 2),
            "minutes": round((time.perf_counter() - started) / 60, 2),
        }
        what = {TRAINING: "the training statistics", WHOLE: "each speaker's clips together"}.get(size)
        print(f"  {what or f'groups of {size} clips'}: UA {results[str(size)]['unweighted_accuracy']:.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({**run_fields(), **results}, indent=2))
    return results


if __name__ == "__main__":
    main()
