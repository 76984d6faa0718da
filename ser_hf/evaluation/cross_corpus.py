"""A cross-corpus matrix: every model evaluated on every corpus, on the labels all of them share, so that the cells
compare (``ser-hf evaluate --cross-corpus``); written as ``cross_corpus.json``, ``cross_corpus.md`` and
``cross_corpus_ua.png``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..atomic_files import save_figure, write_text_atomic
from ..errors import InputError
from ..run_folder import CROSS_CORPUS_JSON, CROSS_CORPUS_MARKDOWN, CROSS_CORPUS_PNG, EVAL_REPORT_JSON
from .constants import view_metrics
from .eval_report import corpora_names, write_eval_report
from .evaluate_model import (
    CorpusSource,
    TrainedModel,
    evaluate_on_dataset,
    folder_slug,
    load_evaluation_corpus,
    load_trained_model,
)


def cross_corpus_matrix(
    models: Sequence[str | TrainedModel],
    sources: Sequence[CorpusSource],
    *,
    output_dir: str | os.PathLike,
    split: str = "test",
    labels: Optional[Sequence[str]] = None,
    batch_size: int = 8,
    **load_kwargs,
) -> dict[str, Any]:
    """Evaluate every model on every corpus on the labels all of them share, so that the cells compare.

    A corpus a model was trained on is scored on the held-out ``split`` speakers of its run (never on the speakers it
    trained on); any other corpus on all its clips. Writes each cell's report under
    ``output_dir/<model>__<corpus>/`` and the matrix as ``cross_corpus.json``, ``cross_corpus.md`` and
    ``cross_corpus_ua.png``.

    Returns:
        `dict`: ``labels``, ``models``, ``corpora``, and ``unweighted_accuracy``/``accuracy``/``macro_f1`` as
        ``{model: {corpus: value}}``, with each cell's split, clips and report path under ``cells``.
    """
    trained = [m if isinstance(m, TrainedModel) else load_trained_model(m, **load_kwargs) for m in models]
    rates = {m.feature_extractor.sampling_rate for m in trained}
    if len(rates) > 1:
        raise ValueError(f"The models read audio at different rates {sorted(rates)}; compare models of one rate.")
    rate = rates.pop()
    identities = [source.identity for source in sources]
    if len(set(identities)) != len(identities):
        raise InputError(
            f"Two corpora have the same name {identities} (a folder corpus is named by its corpus_name, else its "
            "folder's name): give each a corpus_name of its own (corpus_options corpus_name=...).",
            parameter="corpus_options",
        )
    # Keyed by each corpus' name in reports (a folder corpus' corpus_name or folder name), never the loader's: two
    # folder corpora are two columns.
    datasets = {source.identity: load_evaluation_corpus(source, rate) for source in sources}
    common = [
        label
        for label in trained[0].labels
        if all(label in m.labels for m in trained)
        and all(label in d.features["label"].names for d in datasets.values())
        and (labels is None or label in labels)
    ]
    if len(common) < 2:
        raise ValueError(f"The models and corpora share {len(common)} label(s) {common}: nothing to compare.")
    output_dir = Path(output_dir)
    names = [m.name for m in trained]
    if len(set(names)) != len(names):  # run folders of the same name: name them by their parent folder too
        names = [
            "/".join(Path(m.name_or_path).resolve().parts[-2:]) if Path(m.name_or_path).exists() else m.name
            for m in trained
        ]
    if len(set(names)) != len(names):
        raise ValueError(f"Two models have the same name {names}; give each its own folder name.")
    matrix: dict[str, Any] = {
        "labels": common,
        "models": names,
        "model_paths": [m.name_or_path for m in trained],
        "corpora": identities,
        "training_corpora": {name: model.corpora or None for name, model in zip(names, trained)},
        "split": split,
        "cells": {},
        **{metric: {} for metric in view_metrics("cross_corpus")},
    }
    for name, model in zip(names, trained):
        for source in sources:
            cell_split = split if source.identity in model.corpora else "all"
            report = evaluate_on_dataset(
                model, datasets[source.identity], source, split=cell_split, labels=common, batch_size=batch_size
            )
            folder = folder_slug(f"{name}__{source.identity}")
            write_eval_report(output_dir / folder, report)
            (metrics,) = report["evaluation"].values()
            for metric in view_metrics("cross_corpus"):
                matrix[metric].setdefault(name, {})[source.identity] = metrics[metric]
            matrix["cells"].setdefault(name, {})[source.identity] = {
                "split": report["split"]["name"],
                "clips": metrics["clips"],
                "cross_corpus": report["cross_corpus"],
                "corpus_relation": report["corpus_relation"],
                "report": f"{folder}/{EVAL_REPORT_JSON}",
            }
    output_dir.mkdir(parents=True, exist_ok=True)
    text, markdown = json.dumps(matrix, indent=2) + "\n", format_cross_corpus(matrix)
    plot_cross_corpus(matrix, str(output_dir / CROSS_CORPUS_PNG))
    write_text_atomic(output_dir / CROSS_CORPUS_MARKDOWN, markdown)
    write_text_atomic(output_dir / CROSS_CORPUS_JSON, text)
    return matrix


def format_cross_corpus(matrix: Mapping[str, Any]) -> str:
    """The matrix as Markdown: UA (WA) of each model (rows) on each corpus (columns)."""
    corpora = matrix["corpora"]
    lines = [
        f"# Cross-corpus evaluation on {len(matrix['labels'])} shared labels",
        "",
        f"Labels: {', '.join(matrix['labels'])}. Each model chooses among these labels only; clips of other "
        f"labels are left out. A corpus a model was trained on is scored on the {matrix['split']} speakers "
        "of its run (marked *), any other corpus on all its clips.",
        "",
        "UA (WA), in %:",
        "",
        "| model \\ corpus | " + " | ".join(corpora) + " |",
        "|---|" + "---:|" * len(corpora),
    ]
    for model in matrix["models"]:
        cells = []
        for corpus in corpora:
            cell = matrix["cells"][model][corpus]
            mark = {"in-corpus": "*", "unknown": "?"}.get(
                cell.get("corpus_relation"), "" if cell["cross_corpus"] else "*"
            )
            cells.append(
                f"[{100 * matrix['unweighted_accuracy'][model][corpus]:.1f} "
                f"({100 * matrix['accuracy'][model][corpus]:.1f}){mark}]({cell['report'][:-5]}.md)"
            )
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    trained_on = matrix.get("training_corpora")
    if trained_on:
        lines += [
            "",
            "Trained on: "
            + "; ".join(
                f"{model}: {corpora_names(trained_on[model]) if trained_on[model] else 'unknown'}"
                for model in matrix["models"]
            )
            + ". A cell on one of a model's training corpora is in-corpus (*), any other cross-corpus (? where a "
            "model's training corpora are unknown).",
        ]
    lines += ["", "![UA matrix](cross_corpus_ua.png)"]
    return "\n".join(lines) + "\n"


def plot_cross_corpus(matrix: Mapping[str, Any], path: str) -> None:
    """The UA matrix as a heat map PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, corpora = matrix["models"], matrix["corpora"]
    values = np.array([[matrix["unweighted_accuracy"][m][c] for c in corpora] for m in models])
    figure, axes = plt.subplots(figsize=(1.8 + 1.4 * len(corpora), 1.2 + 0.7 * len(models)))
    image = axes.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(corpora)), corpora)
    axes.set_yticks(range(len(models)), models)
    axes.set_xlabel("evaluated on")
    axes.set_ylabel("model")
    for i in range(len(models)):
        for j in range(len(corpora)):
            axes.text(
                j, i, f"{values[i, j]:.1%}", ha="center", va="center", color="white" if values[i, j] > 0.6 else "black"
            )
    axes.set_title(f"UA on {len(matrix['labels'])} shared labels")
    figure.colorbar(image, ax=axes, fraction=0.046)
    save_figure(figure, path)


__all__ = ["cross_corpus_matrix", "format_cross_corpus", "plot_cross_corpus"]
