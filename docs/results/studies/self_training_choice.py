"""How much self-training (``self_training_rounds``, ``self_training_share``) to use for leave-one-corpus-out, chosen
without the left-out corpus, as ``layer_transfer`` chooses layers.

    python -m docs.results.studies.self_training_choice recipes/ravdess_whisper_base_fast.yaml --threads 1 \\
        --model-path openai/whisper-base=../shared/models/whisper-base-encoder \\
        --results docs/results/crosscorpus/self_training_choice-whisper_base.json

The recipe's FAST cache of the merged corpora is read once, every layer's statistics standardised with each corpus'
own (corpus statistics). For every ordered pair of corpora and every candidate (``--candidates SHARE:ROUNDS``; 0
rounds is no self-training), a probe (class-balanced logistic regression, C 0.1, as in ``layer_transfer``)
is trained on one corpus, picks the other corpus' clips as ser-hf's self-training does
(:func:`ser_hf.training.self_training.pick_pseudo_labels` on its log-probabilities), is trained again from scratch
on the first corpus and the picks, round after round, and is scored (UA) on the other corpus. A left-out corpus gets
the candidate with the best mean over the pairs of the other corpora, never read; ``general`` the best over all
pairs. A probe, not the recipe's head: only the ranking is used.

Archived study (issue 77): kept beside docs/results/LOG.md's account of it as the record of how its result file was
made; not run by the tests and not kept in step with bench/. Run it from the repository root as a module,
``python -m docs.results.studies.self_training_choice``.
"""

from __future__ import annotations

import itertools
import logging
from typing import Mapping, Sequence

import numpy as np

from bench.harness import set_threads
from docs.results.studies.layer_transfer import (
    PROBE_C,
    choice_table,
    choices,
    merged_states,
    pair_table,
    probe_parser,
    probe_report,
    standardised,
)
from ser_hf.cli.flags import model_paths as parse_model_paths
from ser_hf.errors import RecipeError
from ser_hf.experiments.results import machine_description
from ser_hf.training.self_training import pick_pseudo_labels

DEFAULT_CANDIDATES = ("0.3:0", "0.3:1", "0.3:2", "0.5:1", "0.5:2", "0.8:1", "0.8:2")


def parse_candidate(spec: str) -> tuple[float, int]:
    """``"0.3:2"`` -> share 0.3, 2 rounds."""
    try:
        share, rounds = spec.split(":")
        share, rounds = float(share), int(rounds)
    except ValueError:
        raise RecipeError(f"--candidates: {spec!r} is not SHARE:ROUNDS (e.g. 0.3:2)") from None
    if not 0 < share <= 1 or rounds < 0:
        raise RecipeError(f"--candidates: {spec!r} needs a share in (0, 1] and 0 or more rounds")
    return share, rounds


def self_trained_ua(train_x, train_y, test_x, test_y, share: float, rounds: int) -> float:
    """UA (%) on the test clips of the probe after `rounds` rounds of self-training on them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    def fit(x, y):
        return LogisticRegression(C=PROBE_C, max_iter=1000, class_weight="balanced").fit(x, y)

    probe = fit(train_x, train_y)
    for _ in range(rounds):
        rows, picked = pick_pseudo_labels(probe.predict_log_proba(test_x), share)
        probe = fit(np.concatenate([train_x, test_x[rows]]), np.concatenate([train_y, probe.classes_[picked]]))
    return round(100 * balanced_accuracy_score(test_y, probe.predict(test_x)), 2)


def pair_scores(
    features: np.ndarray, labels: np.ndarray, corpora: np.ndarray, candidates: Mapping[str, tuple[float, int]]
) -> dict[str, dict[str, float]]:
    """``{candidate: {"a>b": ua}}`` for every ordered pair of corpora; `features` already standardised."""
    names = list(dict.fromkeys(corpora))
    scores: dict[str, dict[str, float]] = {name: {} for name in candidates}
    for train, test in itertools.permutations(names, 2):
        rows, other = corpora == train, corpora == test
        for name, (share, rounds) in candidates.items():
            scores[name][f"{train}>{test}"] = self_trained_ua(
                features[rows], labels[rows], features[other], labels[other], share, rounds
            )
        print(f"{train} -> {test}: " + ", ".join(f"{n} {v[f'{train}>{test}']:.1f}" for n, v in scores.items()))
    return scores


def markdown(scores: Mapping[str, Mapping[str, float]], chosen: Mapping[str, dict]) -> str:
    return "\n".join([*pair_table(scores, "share:rounds"), "", *choice_table(chosen, "candidate")]) + "\n"


def main(argv: Sequence[str] | None = None) -> dict:
    parser = probe_parser(__doc__)
    parser.add_argument("--candidates", nargs="+", default=list(DEFAULT_CANDIDATES), help="SHARE:ROUNDS each")
    args = parser.parse_args(argv)
    try:
        model_paths = parse_model_paths(args.model_paths, "--model-path")
        candidates = {spec: parse_candidate(spec) for spec in args.candidates}
        set_threads(args.threads)
        logging.basicConfig(level=logging.WARNING)
        print(machine_description())
        states, labels, corpora = merged_states(args.recipe, model_paths)
    except RecipeError as error:
        parser.error(str(error))
    features = standardised(states.reshape(len(states), -1), corpora, "corpus", train="")
    scores = pair_scores(features, labels, corpora, candidates)
    chosen = choices(scores, list(dict.fromkeys(corpora)), key="candidate")
    table = markdown(scores, chosen)
    print(table)
    return probe_report(
        "docs/results/studies/self_training_choice.py",
        argv,
        {"scores": scores, "choices": chosen},
        table,
        args.results,
    )


if __name__ == "__main__":
    main()
