"""Leave-one-corpus-out accuracy, the headline benchmark: each recipe trained on every speaker of every corpus but one
of the real corpora in ``../shared/data`` (RAVDESS actors 01-20, TESS, nEMO) and tested on every speaker of the one
left out, on the emotions all of them share, for each corpus in turn and each normalisation asked for.

    python bench/crosscorpus.py recipes/ravdess_whisper_base_fast.yaml \\
        --normalizations global utterance corpus speaker \\
        --model-path openai/whisper-base=../shared/models/whisper-base-encoder \\
        --results docs/results/crosscorpus/loco-whisper_base.json

The corpora are loaded merged (``corpus: [ravdess, tess, nemo]``, speakers prefixed ``ravdess:01``, ``tess:OAF``,
``nemo:EB0``) on the labels all three share (neutral, happy, sad, angry, fearful, surprised: RAVDESS's calm and disgust
and TESS's disgust are left out), so a FAST recipe encodes every clip once for every left-out corpus and every
normalisation (its cache key leaves the statistics out). Each left-out corpus is a fold: the recipe trains on the other
corpora's speakers for its fixed epochs (no validation speakers: the recipes choose nothing on them) and is tested on
the left-out corpus' speakers; an ensemble recipe (``ensemble_members``) trains each member so and fuses their
probabilities with its ``member_weights``. Normalisations (``feature_extractor_config.normalization``): ``global``
standardises everything with the training clips' statistics (what a single clip gets); ``utterance`` each clip with its
own layers' statistics (a single clip too); ``corpus`` each corpus with its own unlabelled clips' statistics, the
training corpora each with theirs (transductive for the left-out corpus); ``speaker`` each speaker with their own
(transductive). Printed per fold: UA, WA and macro-F1 on the left-out corpus, with a speaker-bootstrap 95 % interval
where it has enough speakers (TESS has 2: none, said so); then one table, recipe x normalisation against left-out
corpus, with the mean. ``--results`` is written after every fold, and a run started again with it skips the folds it
holds.

``--corpora`` puts only some corpora in play, on the same labels: with two, each is left out in turn and the model
trains on the other, so an option for the benchmark's fold "nEMO left out" can be chosen on RAVDESS -> TESS and TESS
-> RAVDESS without reading nEMO (the variant's name carries ``corpora=[...]``, and its folds their own folder).

``--corpora ravdess tess nemo banglaser`` adds BanglaSER (``../shared/data/banglaser``), a fourth corpus and a second
language besides English: in play only when named (the variant's name carries ``corpora=[...]``). A left-out corpus is
scored on its own emotions that the model has, among the benchmark's six (those RAVDESS, TESS and nEMO share), with
the model's choice restricted to them: RAVDESS, TESS and nEMO on the six as in the three-corpus benchmark, so their
directions compare with it; BanglaSER, which has no fear, on five (chance 20 %, not 16.7 %). Each row records the
emotions it was scored on, the table says them under it, and with four corpora it adds the mean of the three
directions the three-corpus benchmark reports.

``--train-labels all`` trains on every emotion of the training corpora, as a recipe without ``labels`` (the general
recipe) trains, instead of the shared ones only: RAVDESS's calm and disgust and TESS's disgust join the training clips
where their corpus trains. The left-out corpus is still tested on its clips of the shared emotions, each corpus'
statistics still over its clips in play, and the model's choice is restricted to the shared emotions, as ``ser-hf
evaluate`` scores a corpus on the labels it shares with a model (the variant's name carries ``train_labels=all``).

``--seeds 42 7 43`` trains each variant once per training seed (its rows under ``<variant> seed=N``) and adds a row
of their mean, each corpus' with the range over the seeds: a single-clip figure on one left-out corpus can move by
several points from seed to seed, more than many options change it.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import yaml

from bench.accuracy import (
    METRICS,
    SPLIT_KEYS,
    add_model_path_argument,
    add_override_argument,
    parse_model_paths,
    parse_overrides,
    prepare_recipe,
    train_split,
    variant_folder,
    variant_name,
)
from bench.harness import EXTRA_CORPORA, REPO, SHARED_CORPORA, machine_line, run_fields
from ser_hf.atomic_files import write_text_atomic
from ser_hf.data.corpora import CORPORA
from ser_hf.data.dataset_info import column_values
from ser_hf.data.splits import speaker_split
from ser_hf.emotions import EMOTIONS
from ser_hf.errors import RecipeError
from ser_hf.evaluation.bootstrap import format_interval, pooled_intervals
from ser_hf.evaluation.metrics import classification_metrics, clip_predictions
from ser_hf.recipe.keys import ENSEMBLE_MEMBERS_KEY, check_recipe_keys, recipe_keys_before_imports
from ser_hf.recipe.overrides import set_value
from ser_hf.recipe.yaml_io import read_recipe_file
from ser_hf.run_folder import fold_folder
from ser_hf.run_record import RunReport
from ser_hf.training.ensemble import (
    ensemble_report,
    fuse_clip_predictions,
    is_ensemble_recipe,
    member_recipes,
    member_weights,
)

#: What each normalisation needs besides the clip itself.
NORMALIZATIONS = {
    "global": "single clip",
    "utterance": "single clip",
    "corpus": "the corpus' unlabelled clips",
    "speaker": "the speaker's unlabelled clips",
}


def shared_labels(corpora: Sequence[str]) -> list[str]:
    """The emotions every corpus of `corpora` holds, in ser-hf's order."""
    sets = [set(CORPORA[name].emotion_codes.values()) for name in corpora]
    return [emotion for emotion in EMOTIONS if all(emotion in labels for labels in sets)]


def corpus_labels(corpora: Sequence[str]) -> list[str]:
    """The emotions any corpus of `corpora` holds, in ser-hf's order: what a recipe without ``labels`` trains on."""
    held = {emotion for name in corpora for emotion in CORPORA[name].emotion_codes.values()}
    return [emotion for emotion in EMOTIONS if emotion in held]


def benchmark_corpora() -> dict[str, Path]:
    """Every corpus the benchmark can put in play, by name, in the order of its folds: ``SHARED_CORPORA``, then
    ``EXTRA_CORPORA``."""
    return {**SHARED_CORPORA, **EXTRA_CORPORA}


def benchmark_labels() -> list[str]:
    """The emotions the benchmark scores: those every corpus of ``SHARED_CORPORA`` holds."""
    return shared_labels(list(SHARED_CORPORA))


def scored_labels(left_out: str, model_labels: Sequence[str]) -> list[str]:
    """The emotions the left-out corpus `left_out` is scored on: its own that the model has (`model_labels`), among
    :func:`benchmark_labels` (so that RAVDESS, TESS and nEMO are scored as in the three-corpus benchmark)."""
    own = set(CORPORA[left_out].emotion_codes.values())
    return [label for label in benchmark_labels() if label in own and label in model_labels]


#: The override that names the corpora in play where they are not all of ``SHARED_CORPORA`` (``--corpora``): part of
#: the variant's name and folder, so that a subset's runs never mix with the full benchmark's.
CORPORA_KEY = "corpora"
#: The override that trains on every emotion of the training corpora (``--train-labels all``), not only the shared
#: ones: part of the variant's name and folder, as `CORPORA_KEY` is.
TRAIN_LABELS_KEY = "train_labels"
#: The recipe key ``--seeds`` sets, one run per seed (``--set`` refuses it: k-fold sets it itself).
SEED_KEY = "seed"


def corpora_in_play(overrides: Optional[Mapping[str, Any]]) -> list[str]:
    """The corpora a variant trains and tests on: ``--corpora`` (`CORPORA_KEY` in `overrides`) or every one."""
    return list((overrides or {}).get(CORPORA_KEY, SHARED_CORPORA))


def trains_on_all_labels(overrides: Optional[Mapping[str, Any]]) -> bool:
    """Whether a variant trains on every emotion of its training corpora (``--train-labels all``)."""
    return (overrides or {}).get(TRAIN_LABELS_KEY) == "all"


def merged_values(
    recipe: Path, output_dir: Path, model_paths: dict[str, str], overrides: Optional[Mapping[str, Any]] = None
) -> dict:
    """The recipe's values (changed by `overrides`, ``--set``) on the merged corpora in play and the labels all of
    ``SHARED_CORPORA`` share (a subset's runs are scored on the benchmark's labels; :func:`train_left_out` sets each
    fold's own under ``--train-labels all``), its own split and corpus keys dropped."""
    corpora = corpora_in_play(overrides)
    values = {
        key: value
        for key, value in yaml.safe_load(recipe.read_text()).items()
        if key not in SPLIT_KEYS + ("validation_size", "label_map", "labels", "train_only_corpora", "corpus_weights")
    }
    for key, value in (overrides or {}).items():
        if key not in (CORPORA_KEY, TRAIN_LABELS_KEY):
            values = set_value(values, key, value)
    if values.get("load_best_model_at_end", True) or values.get("early_stopping_patience") is not None:
        raise RecipeError(
            f"{recipe} chooses its epoch on validation speakers; the cross-corpus benchmark trains on every source "
            "speaker for fixed epochs (load_best_model_at_end: false)."
        )
    if values.get("model_name_or_path") in model_paths:
        values["model_name_or_path"] = model_paths[values["model_name_or_path"]]
    values.update(
        corpus=corpora,
        data_dir=[str(benchmark_corpora()[name]) for name in corpora],
        labels=benchmark_labels(),
        split_protocol="speaker",
        output_dir=str(output_dir),
        disable_tqdm=True,
        report_to="none",
        push_to_hub=False,
    )
    return values


def row_key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return row["variant"], row["normalization"], row["test"]


def train_left_out(
    recipe: Path,
    output_root: Path,
    model_paths: dict[str, str],
    normalization: str,
    corpora: Sequence[str],
    overrides: Optional[Mapping[str, Any]] = None,
):
    """Train and test `recipe` with `normalization` once for each corpus of `corpora` left out, yielding ``(corpus,
    row, report, fold folder)`` as each finishes; a fold whose folder holds a finished run is read back by the training
    stages, not trained again."""
    overrides = {**(overrides or {}), "feature_extractor_config.normalization": normalization}
    variant = variant_name(recipe, {key: value for key, value in overrides.items() if "normalization" not in key})
    output_dir = output_root / variant_folder(recipe, overrides)
    values = merged_values(recipe, output_dir, model_paths, overrides)
    in_play = corpora_in_play(overrides)
    prepared = None if trains_on_all_labels(overrides) else prepare_recipe(values)
    for corpus in corpora:
        fold = list(benchmark_corpora()).index(corpus)
        sources = [name for name in in_play if name != corpus]
        # Every emotion of the training corpora: a label set of its own for each corpus left out.
        model_labels = corpus_labels(sources) if trains_on_all_labels(overrides) else values["labels"]
        parsed, input_mode, dataset = prepared or prepare_recipe({**values, "labels": model_labels})
        test_labels = scored_labels(corpus, model_labels)
        speakers = column_values(dataset, "speaker_id")
        of = {name: sorted({s for s in speakers if s.startswith(f"{name}:")}) for name in in_play}
        splits = speaker_split(
            dataset, train_speakers=[s for name in sources for s in of[name]], test_speakers=of[corpus]
        )
        splits.pop("validation", None)  # none: the recipe trains on every source speaker for fixed epochs
        restricted = test_labels != list(model_labels)
        if restricted:
            splits["test"] = shared_label_clips(splits["test"], test_labels)
        report = train_split(parsed, input_mode, splits, fold)
        if restricted:
            report["evaluation"]["test"] = on_shared_labels(report["evaluation"]["test"], test_labels)
        row = {
            "recipe": str(recipe),
            "variant": variant,
            "normalization": normalization,
            "train": "+".join(sources),
            "test": corpus,
            "train_speakers": sum(len(of[name]) for name in sources),
            "test_speakers": len(of[corpus]),
            "train_clips": len(splits["train"]),
            "test_clips": len(splits["test"]),
            "scored_labels": test_labels,
            **row_scores(report),
        }
        yield corpus, row, report, output_dir / fold_folder(fold)


def shared_label_clips(split, labels: Optional[Sequence[str]] = None):
    """The clips of `split` whose emotion is one of `labels` (by default :func:`benchmark_labels`): a left-out
    corpus' test clips of the emotions it is scored on (:func:`scored_labels`)."""
    names = split.features["label"].names
    keep = {names.index(label) for label in (labels or benchmark_labels()) if label in names}
    return split.filter(lambda label: label in keep, input_columns="label")


def on_shared_labels(evaluation: Mapping[str, Any], labels: Optional[Sequence[str]] = None) -> dict:
    """An evaluation of clips of `labels` (by default :func:`benchmark_labels`) by a model trained on more, scored
    again with the model's choice restricted to them (as ``ser-hf evaluate`` restricts it to the labels a corpus shares
    with a model): its metrics and speaker-bootstrap intervals from its ``clip_predictions``, each clip's scores of
    those emotions renormalised."""
    shared = list(labels or benchmark_labels())
    clips = evaluation["clip_predictions"]
    foreign = sorted({clip["label"] for clip in clips} - set(shared))
    if foreign:
        raise ValueError(f"clips of {', '.join(foreign)} in an evaluation meant for the shared emotions only")
    # The shared emotions' scores, as an ensemble of one member reads them: metrics and clip scores softmax them.
    paths, speakers, labels, log_scores = fuse_clip_predictions([clips], shared)
    metrics = classification_metrics(labels, log_scores, shared, speakers=speakers)
    metrics["clip_predictions"] = clip_predictions(paths, speakers, labels, log_scores, shared)
    return metrics


def row_scores(report: Mapping[str, Any]) -> dict:
    """A row's minutes, test metrics and pooled intervals, from a run's report."""
    test = report["evaluation"]["test"]
    return {
        "minutes": round(report["bench_minutes"], 2),
        **{name: round(100 * test[name], 2) for name in METRICS},
        "confidence_intervals": pooled_intervals([test]),
    }


def print_row(row: Mapping[str, Any]) -> None:
    ua = f"{row['unweighted_accuracy']:.1f} {format_interval(row['confidence_intervals'], 'unweighted_accuracy')}"
    print(
        f"  left out {row['test']} (train {row['train']}, {row['train_speakers']} speakers -> "
        f"{row['test_speakers']} speakers): UA {ua}, WA {row['accuracy']:.1f}, macro-F1 {row['macro_f1']:.1f}; "
        f"{row['minutes']:.1f} min",
        flush=True,
    )


def add_row(row: dict, rows: list[dict], on_row=None) -> None:
    """Print a finished row, add it to `rows` and hand it to `on_row` (which writes the results file)."""
    print_row(row)
    rows.append(row)
    if on_row is not None:
        on_row(row)


def pending(
    recipe: Path, normalization: str, left_out: Sequence[str], overrides, done
) -> tuple[str, list[str], list[dict]]:
    """The row variant of `recipe`, the corpora of `left_out` still to run, and the rows `done` already holds."""
    variant = variant_name(recipe, overrides or {})
    todo = [corpus for corpus in left_out if (variant, normalization, corpus) not in (done or {})]
    rows = [done[(variant, normalization, corpus)] for corpus in left_out if corpus not in todo]
    for row in rows:
        print(f"  left out {row['test']}: read back from the results (UA {row['unweighted_accuracy']:.1f})")
    return variant, todo, rows


def run_recipe(
    recipe: Path,
    output_root: Path,
    model_paths: dict[str, str],
    normalization: str,
    left_out: Sequence[str],
    overrides: Optional[Mapping[str, Any]] = None,
    done: Optional[Mapping[tuple, dict]] = None,
    on_row=None,
) -> list[dict]:
    """Train and test `recipe` with `normalization` once for each corpus of `left_out`; rows already in `done` (by
    :func:`row_key`) are read back, not trained again. An ensemble recipe (``ensemble_members``) trains each member
    so and fuses their scores on the left-out corpus (:func:`ser_hf.training.ensemble.ensemble_report`)."""
    if is_ensemble_recipe(read_recipe_file(recipe)):
        return run_ensemble(recipe, output_root, model_paths, normalization, left_out, overrides, done, on_row)
    _, todo, rows = pending(recipe, normalization, left_out, overrides, done)
    if todo:
        for _, row, _, _ in train_left_out(recipe, output_root, model_paths, normalization, todo, overrides):
            add_row(row, rows, on_row)
    return rows


def run_ensemble(
    recipe: Path,
    output_root: Path,
    model_paths: dict[str, str],
    normalization: str,
    left_out: Sequence[str],
    overrides: Optional[Mapping[str, Any]] = None,
    done: Optional[Mapping[tuple, dict]] = None,
    on_row=None,
) -> list[dict]:
    """An ensemble recipe: each member recipe (with the same `overrides` and `normalization`) trained with each corpus
    of `left_out` left out, as :func:`run_recipe` trains a recipe (a member's finished folds under `output_root` read
    back), then the members' scores on the left-out corpus fused with the recipe's ``member_weights`` into one saved
    ensemble model. A member's own row is added to the results where `done` does not hold it."""
    variant, todo, rows = pending(recipe, normalization, left_out, overrides, done)
    if not todo:
        return rows
    values = read_recipe_file(recipe)
    members = member_recipes(recipe, values)
    weights = member_weights(recipe, values, len(members))
    runs = []
    for member in members:
        print(f"  member {member.name}:", flush=True)
        runs.append({})
        for corpus, row, report, folder in train_left_out(
            member, output_root, model_paths, normalization, todo, overrides
        ):
            print_row(row)
            if on_row is not None and row_key(row) not in (done or {}):
                on_row(row)
            runs[-1][corpus] = (row, report, folder)
    output_dir = output_root / variant_folder(
        recipe, {**(overrides or {}), "feature_extractor_config.normalization": normalization}
    )
    for corpus in todo:
        member_runs = [run[corpus] for run in runs]
        report = ensemble_report(
            [RunReport.from_dict(report) for _, report, _ in member_runs],
            [folder for _, _, folder in member_runs],
            output_dir / fold_folder(list(benchmark_corpora()).index(corpus)),
            weights,
        ).to_dict()
        report["bench_minutes"] = sum(member["bench_minutes"] for _, member, _ in member_runs)
        row = {**member_runs[0][0], "recipe": str(recipe), "variant": variant, **row_scores(report)}
        add_row(row, rows, on_row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Recipe x normalisation against the left-out corpus (pooled UA and its interval), with the mean UA; where a
    corpus beyond ``SHARED_CORPORA`` is left out, the mean of ``SHARED_CORPORA``'s directions beside it (what the
    three-corpus benchmark reports), and under the table the emotions each left-out corpus was scored on."""
    corpora = [corpus for corpus in benchmark_corpora() if any(row["test"] == corpus for row in rows)]
    three = list(SHARED_CORPORA) if set(corpora) > set(SHARED_CORPORA) else []
    header = " | ".join(f"{CORPORA[corpus].full_name} left out" for corpus in corpora) + " | mean"
    if three:
        header += f" | mean of {', '.join(CORPORA[corpus].full_name for corpus in three)}"
    lines = [
        f"| recipe | statistics (needs) | {header} |",
        "|---|---|" + "---:|" * (len(corpora) + 1 + bool(three)),
    ]
    groups: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        groups.setdefault((row["variant"], row["normalization"]), {})[row["test"]] = row
    for (variant, normalization), by_corpus in groups.items():
        cells = []
        for corpus in corpora:
            row = by_corpus.get(corpus)
            if row is None:
                cells.append("–")
                continue
            interval = format_interval(row["confidence_intervals"], "unweighted_accuracy")
            cells.append(f"{row['unweighted_accuracy']:.1f}" + (f" {interval}" if interval.startswith("[") else ""))
        for columns in [corpora] + ([three] if three else []):
            cells.append(
                f"{sum(by_corpus[c]['unweighted_accuracy'] for c in columns) / len(columns):.1f}"
                if all(c in by_corpus for c in columns)
                else "–"
            )
        needs = NORMALIZATIONS.get(normalization, "")
        lines.append(f"| `{variant}` | {normalization} ({needs}) | {' | '.join(cells)} |")
    lines += seed_mean_lines(groups, corpora, three)
    scored = {row["test"]: tuple(row["scored_labels"]) for row in rows if row.get("scored_labels")}
    if scored and set(scored.values()) != {tuple(benchmark_labels())}:
        lines += [
            "",
            "Scored on each left-out corpus' own emotions that the model has, among those "
            f"{', '.join(CORPORA[corpus].full_name for corpus in SHARED_CORPORA)} share (the model's choice "
            "restricted to them): "
            + "; ".join(
                f"{CORPORA[corpus].full_name} {', '.join(scored[corpus])} (chance {100 / len(scored[corpus]):.1f} %)"
                for corpus in corpora
                if corpus in scored
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


def seed_of(variant: str) -> tuple[str, Optional[int]]:
    """A row variant's name without its training seed, and the seed (`None`: the recipe's own): ``--seeds`` names
    each seed's variant ``<variant> seed=N``."""
    match = re.fullmatch(rf"(.*) {SEED_KEY}=(-?\d+)", variant)
    return (match[1], int(match[2])) if match else (variant, None)


def seed_mean_lines(
    groups: Mapping[tuple[str, str], Mapping[str, dict]], corpora: Sequence[str], three: Sequence[str] = ()
) -> list[str]:
    """A table line for each variant and statistics run with two training seeds or more on every left-out corpus:
    each corpus' UA as the mean over the seeds and its range, and the mean of the seeds' means (and of their means
    over `three`, where given)."""
    seeds: dict[tuple[str, str], dict[Optional[int], Mapping[str, dict]]] = {}
    for (variant, normalization), by_corpus in groups.items():
        if all(corpus in by_corpus for corpus in corpora):
            family, seed = seed_of(variant)
            seeds.setdefault((family, normalization), {})[seed] = by_corpus
    lines = []
    for (family, normalization), by_seed in seeds.items():
        if len(by_seed) < 2:
            continue
        cells = []
        for corpus in corpora:
            values = [by_corpus[corpus]["unweighted_accuracy"] for by_corpus in by_seed.values()]
            cells.append(f"{np.mean(values):.1f} ({min(values):.1f}-{max(values):.1f})")
        for columns in [corpora] + ([three] if three else []):
            means = [np.mean([by[c]["unweighted_accuracy"] for c in columns]) for by in by_seed.values()]
            cells.append(f"{np.mean(means):.1f} ({min(means):.1f}-{max(means):.1f})")
        names = ", ".join("the recipe's" if seed is None else str(seed) for seed in by_seed)
        needs = NORMALIZATIONS.get(normalization, "")
        lines.append(
            f"| `{family}`, mean of seeds {names} (range) | {normalization} ({needs}) | {' | '.join(cells)} |"
        )
    return lines


#: What a results row must hold to be read back: its key (:func:`row_key`) and what the table shows.
ROW_KEYS = ("variant", "normalization", "test", "unweighted_accuracy", "confidence_intervals")


def write_results(path: Path, rows: list[dict]) -> None:
    """The rows as JSON and the table beside it (.md), each written whole or not at all: a run stopped while writing
    leaves the previous file, which the next run reads back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({**run_fields(), "rows": rows}, indent=2) + "\n")
    write_text_atomic(path.with_suffix(".md"), markdown_table(rows))


def read_results(path: Optional[Path]) -> list[dict]:
    """The rows of the results file an earlier run wrote (none without one). A file that does not read back (cut
    short, edited, or of an older format) is a `ValueError` naming it and what is wrong, before anything is trained:
    it is moved aside by its owner, never overwritten."""
    if path is None or not path.is_file():
        return []
    aside = "move it aside or give another --results"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"--results {path} is not valid JSON ({error}), perhaps written in part: {aside}.") from None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"--results {path} holds no list of rows under 'rows': {aside}.")
    for number, row in enumerate(rows, start=1):
        missing = [key for key in ROW_KEYS if key not in row]
        if missing:
            raise ValueError(
                f"--results {path}: row {number} lacks {', '.join(map(repr, missing))} (written by an older "
                f"bench/crosscorpus.py?): {aside}."
            )
    return rows


def check_recipe(recipe: Path, output_root: Path, model_paths: dict[str, str], overrides: Mapping[str, Any]) -> None:
    """Stop on a recipe the benchmark cannot run (not a YAML mapping, an unknown key, one that chooses its epoch on
    validation speakers; an ensemble's members alike) before any corpus is read: a `RecipeError` naming the file."""
    values = read_recipe_file(recipe)
    recipes = member_recipes(recipe, values) if is_ensemble_recipe(values) else [recipe]
    known_keys = recipe_keys_before_imports()
    for path in recipes:
        member = read_recipe_file(path)
        if known_keys is not None and ENSEMBLE_MEMBERS_KEY not in member:
            check_recipe_keys(member, known_keys, path)
        merged_values(path, output_root, model_paths, overrides)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("recipes", nargs="+", type=Path)
    parser.add_argument(
        "--normalizations",
        nargs="+",
        default=["global", "corpus", "speaker"],
        choices=list(NORMALIZATIONS),
        help="feature_extractor_config.normalization values to run, each a row (default: global corpus speaker)",
    )
    parser.add_argument(
        "--corpora",
        nargs="+",
        default=list(SHARED_CORPORA),
        choices=list(benchmark_corpora()),
        help=f"the corpora in play (default: {' '.join(SHARED_CORPORA)}; {' '.join(EXTRA_CORPORA)} only when named); "
        "two give the pairs one corpus -> the other, on which an "
        "option can be chosen for the corpus left out of them without reading it",
    )
    parser.add_argument(
        "--left-out",
        nargs="+",
        choices=list(benchmark_corpora()),
        help="the corpora to leave out, each in turn (default: every one in play)",
    )
    add_model_path_argument(parser)
    add_override_argument(parser)
    parser.add_argument(
        "--train-labels",
        choices=["shared", "all"],
        default="shared",
        help="the emotions the model trains on: those all three corpora share (the default), or every emotion of "
        "the training corpora, as a recipe without labels (the general recipe) trains, scored on the shared ones "
        "with the model's choice restricted to them",
    )
    parser.add_argument(
        "--seeds",
        "--seed",
        nargs="+",
        type=int,
        help="training seeds, each run in turn (the recipe's when not given; the split is by corpus, so no split "
        "changes): each seed's rows are reported under the variant with seed=N, and the table adds the mean over "
        "the seeds of every variant run with two or more",
    )
    parser.add_argument("--output-dir", type=Path, default=REPO / "outputs" / "bench_crosscorpus")
    parser.add_argument(
        "--results",
        type=Path,
        help="write the rows to this .json and the table beside it (.md) after every fold; the folds it already "
        "holds are read back, not trained again",
    )
    args = parser.parse_args(argv)
    try:
        model_paths = parse_model_paths(args.model_paths)
        overrides = parse_overrides(args.overrides)
    except RecipeError as error:
        parser.error(str(error))
    if any("normalization" in key for key in overrides):
        parser.error("choose the statistics with --normalizations, not --set ...normalization=")
    corpora = [name for name in benchmark_corpora() if name in args.corpora]
    if len(corpora) < 2:
        parser.error(f"--corpora needs two corpora at least (one to train on, one to leave out), got {args.corpora}")
    left_out = args.left_out or corpora
    if set(left_out) - set(corpora):
        parser.error(f"--left-out {' '.join(left_out)}: each corpus left out must be in --corpora {' '.join(corpora)}")
    if corpora != list(SHARED_CORPORA):
        overrides[CORPORA_KEY] = corpora
    try:
        for recipe in args.recipes:
            check_recipe(recipe, args.output_dir, model_paths, overrides)
        previous = read_results(args.results)
    except (RecipeError, ValueError) as error:
        parser.error(str(error))
    if args.train_labels == "all":
        ensembles = [str(recipe) for recipe in args.recipes if is_ensemble_recipe(read_recipe_file(recipe))]
        if ensembles:
            parser.error(f"--train-labels all scores single models, not ensembles: {', '.join(ensembles)}")
        overrides[TRAIN_LABELS_KEY] = "all"
    missing = [str(benchmark_corpora()[name]) for name in corpora if not benchmark_corpora()[name].is_dir()]
    if missing:
        raise SystemExit(f"{', '.join(missing)} missing: the cross-corpus benchmark needs ../shared/data.")
    logging.basicConfig(level=logging.WARNING)
    print(machine_line())
    print(
        f"corpora: {', '.join(corpora)}; scored on the labels shared by all of {', '.join(SHARED_CORPORA)} "
        f"({', '.join(benchmark_labels())}) that the left-out corpus has"
    )
    done = {row_key(row): row for row in previous}
    rows = [row for row in previous]

    def on_row(row: dict) -> None:
        rows.append(row)
        if args.results:
            write_results(args.results, rows)

    try:
        for recipe in args.recipes:
            for seed in args.seeds or [None]:
                seeded = overrides if seed is None else {**overrides, SEED_KEY: seed}
                for normalization in args.normalizations:
                    print(f"\n{variant_name(recipe, seeded)}, {normalization} statistics", flush=True)
                    run_recipe(recipe, args.output_dir, model_paths, normalization, left_out, seeded, done, on_row)
    except RecipeError as error:  # what only the recipe parser finds; the finished folds are in --results
        parser.error(str(error))
    print("\n" + markdown_table(rows))
    if args.results:
        write_results(args.results, rows)
        print(f"wrote {args.results} and {args.results.with_suffix('.md')}")
    return rows


if __name__ == "__main__":
    main()
