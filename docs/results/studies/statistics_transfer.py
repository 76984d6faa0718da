"""Which statistics, computed without labels, carry emotion from one corpus to another: each corpus' own (the
``corpus`` normalisation), each corpus whitened (its features decorrelated as well, CORAL-like), or statistics of
clusters of each corpus' clips standing in for its speakers (pseudo-speakers: speaker statistics without speaker
labels), against each speaker's own (the ``speaker`` normalisation, which needs to know who spoke each clip).

    python -m docs.results.studies.statistics_transfer recipes/ravdess_whisper_base_fast.yaml --threads 1 \\
        --model-path openai/whisper-base=../shared/models/whisper-base-encoder \\
        --results docs/results/crosscorpus/statistics_transfer-whisper_base.json

The recipe's FAST cache of the merged corpora (RAVDESS actors 01-20, TESS, nEMO on the labels all three share, as
the former ``bench/crosscorpus.py`` loaded them) is read once. For every ordered pair of corpora and every candidate
(``--candidates``: ``corpus``, ``whitened``, ``speaker``, ``clusters:K``, ``speaker_space:K``), every layer's
statistics are standardised as the candidate says and a probe (class-balanced logistic regression, C 0.1, as in
``layer_transfer``) is trained on one corpus and scored (UA) on the other. ``clusters:K`` groups each corpus'
clips into K clusters (k-means on the mean states of ``--cluster-layers``, standardised by corpus) and standardises
each cluster with its own statistics; how well the clusters follow the speakers and the emotions is printed as the
adjusted Rand index (1: the same partition, 0: chance). ``speaker_space:K`` clusters each corpus in a space that
separates the speakers of the *other* corpora (linear discriminant analysis of their speaker labels on the same mean
states), so that the clusters follow who speaks rather than the emotion. ``whitened`` standardises each corpus and
layer, then decorrelates it with its Ledoit-Wolf covariance. A left-out corpus gets the label-free candidate (any but
``speaker``, the yardstick) with the best mean over the pairs of the other corpora; ``general`` the best over all
pairs. A probe, not the recipe's head: only the ranking is used.

Archived study (issue 77): kept beside docs/results/LOG.md's account of it as the record of how its result file was
made; not run by the tests and not kept in step with bench/. Run it from the repository root as a module,
``python -m docs.results.studies.statistics_transfer``.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np

from bench.harness import set_threads
from docs.results.studies.layer_transfer import (
    PROBE_C,
    choice_table,
    choices,
    merged_columns,
    pair_scores,
    pair_table,
    parse_layers,
    probe_parser,
    probe_report,
    standardised,
)
from ser_hf.cli.flags import model_paths as parse_model_paths
from ser_hf.errors import RecipeError
from ser_hf.experiments.results import machine_description
from ser_hf.inputs.speaker_normalization import ENCODER_STATES_COLUMN

DEFAULT_CANDIDATES = (
    "corpus",
    "whitened",
    "speaker",
    "clusters:2",
    "clusters:4",
    "clusters:8",
    "speaker_space:2",
    "speaker_space:4",
    "speaker_space:8",
)


def parse_candidate(spec: str) -> tuple[str, int]:
    """``"corpus"`` -> ``("corpus", 0)``; ``"clusters:4"`` -> ``("clusters", 4)``."""
    kind, _, count = spec.partition(":")
    if kind in ("corpus", "whitened", "speaker") and not count:
        return kind, 0
    if kind in ("clusters", "speaker_space") and count.isdigit() and int(count) >= 2:
        return kind, int(count)
    raise RecipeError(
        f"--candidates: {spec!r} is none of corpus, whitened, speaker, clusters:K, speaker_space:K (K 2 or more, "
        "e.g. clusters:4)"
    )


def cluster_groups(states: np.ndarray, corpora: np.ndarray, count: int, layers: Sequence[int]) -> np.ndarray:
    """Each clip's pseudo-speaker: ``CORPUS-N``, its cluster among `count` k-means clusters of its corpus' clips on
    the mean states of `layers` (standardised by corpus; no label read). `states`: `(clips, layers, 2 x width)`."""
    from sklearn.cluster import KMeans

    width = states.shape[2] // 2
    groups = np.empty(len(states), dtype=object)
    for corpus in dict.fromkeys(corpora):
        rows = np.flatnonzero(corpora == corpus)
        key = states[rows][:, list(layers), :width].reshape(len(rows), -1).astype(np.float64)
        key = (key - key.mean(0)) / (key.std(0) + 1e-5)
        clusters = KMeans(n_clusters=count, n_init=4, random_state=0).fit_predict(key)
        groups[rows] = [f"{corpus}-{cluster}" for cluster in clusters]
    return groups


def speaker_space_groups(
    states: np.ndarray, corpora: np.ndarray, speakers: np.ndarray, count: int, layers: Sequence[int]
) -> np.ndarray:
    """Each clip's pseudo-speaker: ``CORPUS-N``, its cluster among `count` clusters of its corpus' clips in a
    speaker space learnt on the *other* corpora's speakers (linear discriminant analysis of their speaker labels on
    the mean states of `layers`, standardised by corpus; Ward clustering of its first 16 directions): directions
    that separate speakers against everything that varies within a speaker, emotion included. Reads no label of the
    clustered corpus."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    width = states.shape[2] // 2
    key = states[:, list(layers), :width].reshape(len(states), -1).astype(np.float64)
    key = standardised(key, corpora, "corpus", train="")
    groups = np.empty(len(states), dtype=object)
    for corpus in dict.fromkeys(corpora):
        rows, others = corpora == corpus, corpora != corpus
        others_speakers = np.char.add(np.char.add(corpora[others].astype(str), "-"), speakers[others].astype(str))
        space = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(key[others], others_speakers)
        clusters = AgglomerativeClustering(n_clusters=count, linkage="ward").fit_predict(
            space.transform(key[rows])[:, :16]
        )
        groups[rows] = [f"{corpus}-{cluster}" for cluster in clusters]
    return groups


def whitened(states: np.ndarray, corpora: np.ndarray) -> np.ndarray:
    """Every corpus and layer standardised, then decorrelated with its own Ledoit-Wolf covariance (ZCA whitening),
    flattened to `(clips, layers x 2 x width)`."""
    from sklearn.covariance import LedoitWolf

    out = np.empty(states.shape, np.float64)
    for corpus in dict.fromkeys(corpora):
        rows = corpora == corpus
        for layer in range(states.shape[1]):
            x = states[rows, layer].astype(np.float64)
            x = (x - x.mean(0)) / (x.std(0) + 1e-5)
            values, vectors = np.linalg.eigh(LedoitWolf().fit(x).covariance_)
            out[rows, layer] = x @ (vectors / np.sqrt(np.maximum(values, 1e-8))) @ vectors.T
    return out.reshape(len(states), -1)


def candidate_scores(
    columns: Mapping[str, np.ndarray], candidates: Mapping[str, tuple[str, int]], cluster_layers: Sequence[int]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """``({candidate: {"a>b": ua}}, {candidate: {corpus: {"speakers": ari, "emotions": ari}}})``: the probe's UA on
    every ordered pair of corpora, and for each ``clusters`` candidate how its clusters match each corpus' speakers
    and emotions."""
    from sklearn.metrics import adjusted_rand_score

    states, labels, corpora = columns[ENCODER_STATES_COLUMN], columns["label"], columns["corpus"]
    flat = states.reshape(len(states), -1)
    scores, agreement = {}, {}
    for name, (kind, count) in candidates.items():
        if kind == "whitened":
            features = whitened(states, corpora)
        else:
            if kind == "corpus":
                groups = corpora
            elif kind == "speaker":
                groups = np.char.add(np.char.add(corpora.astype(str), "-"), columns["speaker_id"].astype(str))
            else:
                groups = (
                    cluster_groups(states, corpora, count, cluster_layers)
                    if kind == "clusters"
                    else speaker_space_groups(states, corpora, columns["speaker_id"], count, cluster_layers)
                )
                agreement[name] = {
                    corpus: {
                        "speakers": round(adjusted_rand_score(columns["speaker_id"][rows], groups[rows]), 3),
                        "emotions": round(adjusted_rand_score(labels[rows], groups[rows]), 3),
                    }
                    for corpus in dict.fromkeys(corpora)
                    for rows in [corpora == corpus]
                }
            features = standardised(flat, groups, "corpus", train="")
        # Standardised already: into pair_scores as one "layer", with no statistics of its own.
        scores[name] = pair_scores(features[:, None, :], labels, corpora, {name: [0]}, "none")[name]
        print(f"{name}: " + ", ".join(f"{pair} {ua:.1f}" for pair, ua in scores[name].items()), flush=True)
    return scores, agreement


def label_free_choices(
    scores: Mapping[str, Mapping[str, float]], candidates: Mapping[str, tuple[str, int]], corpora: Sequence[str]
) -> dict[str, dict]:
    """:func:`layer_transfer.choices` among the candidates that need no label: the speakers' own statistics are the
    yardstick, never chosen (they need to know who spoke each clip)."""
    label_free = {name: values for name, values in scores.items() if candidates[name][0] != "speaker"}
    if not label_free:
        raise RecipeError(
            "--candidates: name at least one besides speaker (corpus, whitened, clusters:K, speaker_space:K)"
        )
    return choices(label_free, corpora, key="statistics")


def markdown(scores: Mapping[str, Mapping[str, float]], agreement: Mapping[str, dict], chosen: Mapping) -> str:
    lines = pair_table(scores, "statistics")
    if agreement:
        corpora = list(next(iter(agreement.values())))
        lines += [
            "",
            "| clusters: adjusted Rand index with the speakers / the emotions | " + " | ".join(corpora) + " |",
            "|---|" + "---:|" * len(corpora),
        ]
        for name, by_corpus in agreement.items():
            cells = " | ".join(f"{by_corpus[c]['speakers']:.2f} / {by_corpus[c]['emotions']:.2f}" for c in corpora)
            lines.append(f"| {name} | {cells} |")
    return "\n".join([*lines, "", *choice_table(chosen, "statistics")]) + "\n"


def main(argv: Sequence[str] | None = None) -> dict:
    parser = probe_parser(__doc__)
    parser.add_argument("--candidates", nargs="+", default=list(DEFAULT_CANDIDATES), help="the statistics to compare")
    parser.add_argument("--cluster-layers", default="0-1", help="layers whose mean states the clusters are drawn on")
    args = parser.parse_args(argv)
    try:
        model_paths = parse_model_paths(args.model_paths, "--model-path")
        candidates = {spec: parse_candidate(spec) for spec in args.candidates}
        cluster_layers = parse_layers(args.cluster_layers)
        set_threads(args.threads)
        logging.basicConfig(level=logging.WARNING)
        print(machine_description())
        columns = merged_columns(args.recipe, model_paths)
    except RecipeError as error:
        parser.error(str(error))
    scores, agreement = candidate_scores(columns, candidates, cluster_layers)
    chosen = label_free_choices(scores, candidates, list(dict.fromkeys(columns["corpus"])))
    table = markdown(scores, agreement, chosen)
    print(table)
    results = {"scores": scores, "cluster_agreement": agreement, "choices": chosen, "probe_c": PROBE_C}
    return probe_report("docs/results/studies/statistics_transfer.py", argv, results, table, args.results)


if __name__ == "__main__":
    main()
