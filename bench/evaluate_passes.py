"""``ser-hf evaluate`` of a model standardised by corpus or speaker statistics: one encoder pass against two, on the
same clips in one run (issue 69).

    OMP_NUM_THREADS=1 python -m bench.evaluate_passes --threads 1 \\
        --model outputs/bench_adapt/<whisper run>/fold-1 --corpus ravdess \\
        --data-dir ../shared/data/ravdess_16k --speakers 01 --results docs/results/evaluate/passes-whisper_base.json

Timing (``--speakers``, every label): ``one pass`` is :func:`~ser_hf.evaluation.evaluate_model.evaluate_on_dataset`
as it runs now (each clip's pooled encoder states computed once into an empty FAST cache, statistics and head both
read them); ``two passes`` is the same call with the one-pass path turned off, as evaluation ran before issue 69 (the
statistics through the model, then the whole model on every clip). Both arms score the same clips: their scores must
agree (the largest difference of any clip's probability is recorded), and their wall times are measured in this one
run, the two-pass arm first, so that the cache cannot serve it.

"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from bench.harness import add_threads_argument, set_threads, write_json
from ser_hf.experiments.protocol import METRICS

logger = logging.getLogger("bench.evaluate_passes")


def _scores(report) -> np.ndarray:
    (metrics,) = report["evaluation"].values()
    return np.array([[row["scores"][label] for label in report["labels"]] for row in metrics["clip_predictions"]])


def _figures(report) -> dict:
    (metrics,) = report["evaluation"].values()
    return {"clips": metrics["clips"], **{key: round(metrics[key], 4) for key in METRICS}}


def timed(run) -> tuple[dict, float]:
    start = time.perf_counter()
    report = run()
    return report, round(time.perf_counter() - start, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a trained model standardised by corpus or speaker statistics")
    parser.add_argument("--corpus", default="ravdess")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--speakers", required=True, help="comma-separated speakers of the timing arms")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--results", type=Path, help="write the figures as JSON here")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    set_threads(args.threads)

    import datasets.config

    import ser_hf.evaluation.evaluate_model as evaluate_module
    from ser_hf.evaluation.evaluate_model import (
        CorpusSource,
        evaluate_on_dataset,
        load_evaluation_corpus,
        load_trained_model,
    )

    trained = load_trained_model(args.model, device="cpu")
    normalization = getattr(trained.feature_extractor, "normalization", None)
    if normalization not in ("corpus", "speaker"):
        raise SystemExit(f"{args.model} standardises with {normalization!r} statistics, not corpus or speaker.")
    source = CorpusSource(args.corpus, args.data_dir)
    speakers = args.speakers.split(",")
    timing_clips = load_evaluation_corpus(source, trained.feature_extractor.sampling_rate, speakers=speakers)

    def evaluate():
        return evaluate_on_dataset(trained, timing_clips, source, split="all", batch_size=args.batch_size)

    # An empty cache of its own: no encoder state of an earlier run is read back.
    with tempfile.TemporaryDirectory(prefix="ser_hf_evaluate_passes_") as cache:
        with mock.patch.object(datasets.config, "HF_DATASETS_CACHE", Path(cache)):
            with mock.patch.object(evaluate_module, "encodes_once", lambda model, feature_extractor: False):
                two, two_seconds = timed(evaluate)
            one, one_seconds = timed(evaluate)
    difference = float(np.abs(_scores(one) - _scores(two)).max())
    logger.info("one pass %.1f s, two passes %.1f s (%d clips)", one_seconds, two_seconds, len(timing_clips))

    command = ["OMP_NUM_THREADS=1 python -m bench.evaluate_passes", *(sys.argv[1:] if argv is None else argv)]
    result = {
        "benchmark": "evaluate_passes",
        "model": args.model,
        "normalization": normalization,
        "corpus": source.identity,
        "timing": {
            "speakers": speakers,
            "clips": len(timing_clips),
            "one_pass_seconds": one_seconds,
            "two_passes_seconds": two_seconds,
            "speed_up": round(two_seconds / one_seconds, 2) if one_seconds else None,
            "largest_score_difference": difference,
            "figures_one_pass": _figures(one),
            "figures_two_passes": _figures(two),
        },
    }
    print(json.dumps(result["timing"], indent=2))
    write_json(args.results, result, command=" ".join(command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
