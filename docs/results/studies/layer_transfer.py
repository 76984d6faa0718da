"""Which encoder layers carry emotion from one corpus to another: the choice of ``model_config.pooled_layers`` for
leave-one-corpus-out, made without the left-out corpus.

    python -m docs.results.studies.layer_transfer recipes/ravdess_whisper_base_fast.yaml \\
        --model-path openai/whisper-base=../shared/models/whisper-base-encoder \\
        --results docs/results/crosscorpus/layer_transfer-whisper_base.json

The recipe's FAST cache of the merged corpora (RAVDESS actors 01-20, TESS, nEMO on the labels all three share, as the
former ``bench/crosscorpus.py`` loaded them; every layer's mean and standard deviation per clip) is read once. For
every ordered pair of corpora (train on one, test on the other) and every candidate set of layers (``--layers``, e.g.
``0-6 1-3 2-4``; 0 is the input embeddings), a probe, a class-balanced logistic regression (C 0.1) on those layers'
statistics, is trained and scored (UA on the test corpus), with the statistics standardised as each normalisation does
(``global``: the training corpus' statistics; ``corpus``: each corpus with its own). A probe, not the recipe's head: 24
fits a normalisation take a minute where the recipe would take an hour, and only the ranking is used.

The choice for a left-out corpus is the candidate with the best mean UA over the pairs of the *other* corpora (both
directions): the left-out corpus is never read, so ``ser-hf loco --model_config.pooled_layers ...``
with that choice reports an honest figure for it. The choice for a general recipe (trained on every corpus, scored
on corpora nobody here has) is the best mean over all pairs. Printed: the table of pairs, and the choices; with
``--results``, the same as JSON and a Markdown table beside it.

Archived study (issue 77): kept beside docs/results/LOG.md's account of it as the record of how its result file was
made; not run by the tests and not kept in step with bench/. Run it from the repository root as a module,
``python -m docs.results.studies.layer_transfer``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from bench.harness import SHARED_CORPORA, add_threads_argument, set_threads
from ser_hf.cli.flags import model_paths as parse_model_paths
from ser_hf.cli.loco import add_model_path_argument
from ser_hf.data.corpora import CORPORA
from ser_hf.data.dataset_info import column_values
from ser_hf.errors import RecipeError
from ser_hf.experiments.loco import loco_values, shared_labels
from ser_hf.experiments.results import machine_description, run_fields
from ser_hf.inputs.speaker_normalization import ENCODER_STATES_COLUMN
from ser_hf.recipe import Recipe
from ser_hf.training.data_stage import prepare_recipe_data

#: The candidates when ``--layers`` is not given (Whisper base: layers 0-6).
DEFAULT_CANDIDATES = ("0-6", "1-6", "0-3", "1-3", "2-4", "2-5", "3-5", "4-6")
PROBE_C = 0.1


def parse_layers(spec: str) -> list[int]:
    """``"1-3"`` -> ``[1, 2, 3]``; ``"1,4,6"`` -> ``[1, 4, 6]``."""
    try:
        if "-" in spec:
            first, last = (int(part) for part in spec.split("-"))
            layers = list(range(first, last + 1))
        else:
            layers = [int(part) for part in spec.split(",")]
    except ValueError:
        raise RecipeError(f"--layers: {spec!r} is neither FIRST-LAST nor a comma-separated list of layers") from None
    if not layers or min(layers) < 0:
        raise RecipeError(f"--layers: {spec!r} names no layer, or a negative one")
    return layers


def standardised(features: np.ndarray, corpora: np.ndarray, normalization: str, train: str) -> np.ndarray:
    """`features` standardised with the training corpus' statistics (``global``) or each corpus' own (``corpus``);
    ``none``: as they are (standardised already)."""
    if normalization == "none":
        return features
    if normalization == "global":
        rows = corpora == train
        return (features - features[rows].mean(0)) / (features[rows].std(0) + 1e-5)
    out = np.empty_like(features)
    for name in np.unique(corpora):
        rows = corpora == name
        out[rows] = (features[rows] - features[rows].mean(0)) / (features[rows].std(0) + 1e-5)
    return out


def pair_scores(
    states: np.ndarray,
    labels: np.ndarray,
    corpora: np.ndarray,
    candidates: Mapping[str, Sequence[int]],
    normalization: str,
) -> dict[str, dict[str, float]]:
    """UA (%) of the probe trained on one corpus and tested on another, ``{candidate: {"a>b": ua}}``, for every
    ordered pair of corpora. `states`: `(clips, layers, width)`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score  # unweighted accuracy: the mean of per-class recalls

    names = list(dict.fromkeys(corpora))
    scores: dict[str, dict[str, float]] = {}
    for candidate, layers in candidates.items():
        if max(layers) >= states.shape[1]:
            raise RecipeError(
                f"--layers: {candidate} names layer {max(layers)}; the encoder has 0-{states.shape[1] - 1}"
            )
        features = states[:, list(layers)].reshape(len(states), -1)
        scores[candidate] = {}
        for train, test in itertools.permutations(names, 2):
            x = standardised(features, corpora, normalization, train)
            probe = LogisticRegression(C=PROBE_C, max_iter=1000, class_weight="balanced")
            probe.fit(x[corpora == train], labels[corpora == train])
            predicted = probe.predict(x[corpora == test])
            scores[candidate][f"{train}>{test}"] = round(
                100 * balanced_accuracy_score(labels[corpora == test], predicted), 2
            )
    return scores


def choices(scores: Mapping[str, Mapping[str, float]], corpora: Sequence[str], key: str = "layers") -> dict[str, dict]:
    """For each corpus left out, the candidate with the best mean over the pairs of the other corpora; under
    ``"general"``, the best over every pair. Ties go to the candidate listed first. Each choice names the candidate
    under `key`."""

    def best(pairs: list[str]) -> dict:
        means = {name: float(np.mean([values[pair] for pair in pairs])) for name, values in scores.items()}
        chosen = max(means, key=means.get)  # the first of equal means
        return {key: chosen, "mean": round(means[chosen], 2), "pairs": pairs}

    every = [f"{a}>{b}" for a, b in itertools.permutations(corpora, 2)]
    chosen = {left_out: best([pair for pair in every if left_out not in pair.split(">")]) for left_out in corpora}
    chosen["general"] = best(every)
    return chosen


def merged_states(recipe: Path, model_paths: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(states, labels, corpora)`` of every clip of the corpora the former ``bench/crosscorpus.py`` merged, read from
    the FAST `recipe`'s cache (encoded first where it is not cached): states `(clips, layers, 2 x width)`, each
    layer's mean and standard deviation."""
    columns = merged_columns(recipe, model_paths)
    return columns[ENCODER_STATES_COLUMN], columns["label"], columns["corpus"]


def merged_columns(recipe: Path, model_paths: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The columns of :func:`merged_states` (``encoder_states``, ``label``, ``corpus``) and each clip's
    ``speaker_id``, as arrays."""
    missing = [str(path) for path in SHARED_CORPORA.values() if not path.is_dir()]
    if missing:
        raise SystemExit(f"{', '.join(missing)} missing: this benchmark needs ../shared/data.")
    with tempfile.TemporaryDirectory() as folder:
        in_play = {
            "corpus": list(SHARED_CORPORA),
            "data_dir": [str(path) for path in SHARED_CORPORA.values()],
            "labels": shared_labels(
                {name: CORPORA[name].emotion_codes.values() for name in SHARED_CORPORA}, list(SHARED_CORPORA)
            ),
            "feature_extractor_config.normalization": "global",
        }
        values, _ = loco_values(recipe, in_play, model_paths=model_paths)
        if not values.get("cache_encoder_outputs") or values.get("pooling_mode") != "layer_statistics":
            raise RecipeError(f"{recipe} is not a FAST recipe with pooling_mode: layer_statistics")
        _, dataset = prepare_recipe_data(Recipe.from_values({**values, "output_dir": folder}))
    columns = {name: np.asarray(column_values(dataset, name)) for name in ("label", "corpus", "speaker_id")}
    columns[ENCODER_STATES_COLUMN] = np.asarray(dataset.with_format("numpy")[ENCODER_STATES_COLUMN], np.float32)
    corpora = columns["corpus"]
    counts = ", ".join(f"{name} {(corpora == name).sum()}" for name in dict.fromkeys(corpora))
    print(f"{len(corpora)} clips ({counts}), {columns[ENCODER_STATES_COLUMN].shape[1]} layers")
    return columns


def pair_table(scores: Mapping[str, Mapping[str, float]], header: str) -> list[str]:
    """The lines of a Markdown table of `scores` (``{candidate: {"a>b": ua}}``): a row per candidate (`header` names
    the column), a column per ordered pair of corpora and their mean."""
    pairs = list(next(iter(scores.values())))
    lines = [
        f"| {header} | " + " | ".join(pair.replace(">", " → ") for pair in pairs) + " | mean |",
        "|---|" + "---:|" * (len(pairs) + 1),
    ]
    for name, values in scores.items():
        cells = " | ".join(f"{values[pair]:.1f}" for pair in pairs)
        lines.append(f"| {name} | {cells} | {np.mean(list(values.values())):.1f} |")
    return lines


def choice_table(chosen: Mapping[str, dict], key: str) -> list[str]:
    """The lines of a Markdown table of :func:`choices`: each left-out corpus' choice (under `key`) and its mean."""
    lines = ["| left out | chosen (on the other corpora's pairs) | its mean there |", "|---|---|---:|"]
    return lines + [f"| {name} | {choice[key]} | {choice['mean']:.1f} |" for name, choice in chosen.items()]


def markdown(results: Mapping[str, dict]) -> str:
    lines = []
    for normalization, result in results.items():
        pairs = list(next(iter(result["scores"].values())))
        lines += [
            f"**{normalization} statistics**",
            "",
            "| layers | " + " | ".join(pair.replace(">", " → ") for pair in pairs) + " | mean |",
            "|---|" + "---:|" * (len(pairs) + 1),
        ]
        for candidate, values in result["scores"].items():
            cells = " | ".join(f"{values[pair]:.1f}" for pair in pairs)
            lines.append(f"| {candidate} | {cells} | {np.mean(list(values.values())):.1f} |")
        lines += [
            "",
            "| left out | chosen layers (on the other corpora's pairs) | their mean there |",
            "|---|---|---:|",
        ]
        lines += [
            f"| {name} | {choice['layers']} | {choice['mean']:.1f} |" for name, choice in result["choices"].items()
        ]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = probe_parser(__doc__)
    parser.add_argument("--layers", nargs="+", default=list(DEFAULT_CANDIDATES), help="candidate layer sets")
    parser.add_argument("--normalizations", nargs="+", default=["global", "corpus"], choices=["global", "corpus"])
    args = parser.parse_args(argv)
    try:
        model_paths = parse_model_paths(args.model_paths, "--model-path")
        candidates = {spec: parse_layers(spec) for spec in args.layers}
    except RecipeError as error:
        parser.error(str(error))
    set_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    print(machine_description())
    try:
        states, labels, corpora = merged_states(args.recipe, model_paths)
    except RecipeError as error:
        parser.error(str(error))
    names = list(dict.fromkeys(corpora))
    results = {}
    for normalization in args.normalizations:
        scores = pair_scores(states, labels, corpora, candidates, normalization)
        results[normalization] = {"scores": scores, "choices": choices(scores, names)}
    table = markdown(results)
    print(table)
    return probe_report("docs/results/studies/layer_transfer.py", argv, results, table, args.results)


def probe_parser(description: str) -> argparse.ArgumentParser:
    """The arguments of a probe benchmark on a FAST recipe's merged cache: the recipe, ``--model-path``,
    ``--threads`` and ``--results``."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recipe", type=Path, help="a FAST recipe with pooling_mode: layer_statistics")
    add_model_path_argument(parser)
    add_threads_argument(parser)
    parser.add_argument("--results", type=Path, help="write the results to this .json and a table beside it (.md)")
    return parser


def probe_report(
    script: str, argv: Optional[Sequence[str]], results: Mapping, table: str, path: Optional[Path]
) -> dict:
    """The command, machine and `results` of a probe benchmark, written to `path` (.json, `table` beside it as .md)
    when given."""
    report = {**run_fields(command=" ".join([script, *(argv or sys.argv[1:])])), **results}
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        path.with_suffix(".md").write_text(table)
        print(f"wrote {path} and {path.with_suffix('.md')}")
    return report


if __name__ == "__main__":
    main()
