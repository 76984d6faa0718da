"""Pooled embeddings of a trained model for a corpus, and a 2-D map of them coloured by emotion and by speaker.

    ser-hf embed --model runs/ravdess_cnn2d --corpus ravdess --data-dir ../shared/data/ravdess_16k \\
        --speakers 21,22,23,24 --output-dir docs/results/embed_cnn2d

The embedding of a clip is what the model's classifier reads: the pooled (and, for SSL heads, projected) vector of
the whole clip. They are saved as an ``embedding`` column of the corpus (``datasets``' ``save_to_disk``, beside the
speaker, label and the model's prediction), projected to 2-D with UMAP when ``umap-learn`` is installed, else t-SNE
(scikit-learn), and plotted twice: coloured by emotion and by speaker. The silhouette score of each grouping on the
embeddings says which the model clusters by more; a model that clusters by speaker has learnt who speaks more than how.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from datasets import Dataset, List, Value
from torch import nn
from torch.utils.data import DataLoader

from ..atomic_files import atomic_directory, save_figure, write_text_atomic
from ..data.dataset_info import column_values
from ..data.decode import WAVEFORM_COLUMN, prepare_audio
from ..errors import InputError
from ..inputs.collators import AudioClassificationCollator
from ..models.runtime.loading import load_model
from ..models.runtime.padding import is_padding_invariant
from .constants import PROJECTION_METHODS

logger = logging.getLogger(__name__)

EMBEDDING_COLUMN = "embedding"
PROJECTION_COLUMN = "projection"
PREDICTION_COLUMN = "prediction"
EMBEDDINGS_DATASET = "embeddings"
EMBED_JSON = "embed.json"
# Columns of the corpus kept beside the embeddings (the audio itself is dropped).
_KEPT_COLUMNS = ("path", "corpus", "speaker_id", "label", "sex", "duration", "emotion_code")


def load_embedding_model(model: str):
    """A saved ser-hf (or transformers) audio classifier and its feature extractor, from a folder or Hub id (one
    without a feature extractor raises :class:`~ser_hf.models.MissingFeatureExtractorError`)."""
    return load_model(model, allow_onnx=False, purpose="embedding")


@torch.no_grad()
def pooled_embeddings(
    model: nn.Module,
    feature_extractor,
    dataset: Dataset,
    batch_size: int = 16,
    device: Optional[str] = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's input (the pooled clip vector) and the logits of every clip of ``dataset`` (with a
    ``waveform`` column), whole clips, in dataset order; a tqdm bar counts the clips unless ``progress`` is off."""
    from tqdm.auto import tqdm

    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, nn.Module):
        raise ValueError(
            f"{type(model).__name__} has no `classifier` module whose input could be read as the clip embedding."
        )
    if not is_padding_invariant(model, feature_extractor):
        # Padding would change the output (group-norm encoders without a mask, data2vec-audio): one clip per batch.
        batch_size = 1
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    captured: list[torch.Tensor] = []
    hook = classifier.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0].float().cpu()))
    loader = DataLoader(
        dataset.select_columns([WAVEFORM_COLUMN]).with_format("numpy"),
        batch_size=batch_size,
        collate_fn=AudioClassificationCollator(feature_extractor),
    )
    logits = []
    try:
        with tqdm(total=len(dataset), desc="Embedding", unit="clip", disable=not progress) as bar:
            for batch in loader:
                outputs = model(**{name: value.to(device) for name, value in batch.items()})
                logits.append(outputs.logits.float().cpu())
                bar.update(len(outputs.logits))
    finally:
        hook.remove()
    return torch.cat(captured).numpy(), torch.cat(logits).numpy()


def project_2d(embeddings: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """A 2-D projection of standardised embeddings: UMAP (``auto`` when umap-learn is installed), t-SNE or PCA."""
    from sklearn.preprocessing import StandardScaler

    if method not in PROJECTION_METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(PROJECTION_METHODS)}.")
    if len(embeddings) < 4:
        raise ValueError(f"A 2-D map needs at least 4 clips, got {len(embeddings)}.")
    if method == "auto":
        method = "umap" if importlib.util.find_spec("umap") is not None else "tsne"
    features = StandardScaler().fit_transform(embeddings)
    logger.info(
        "Projecting %d embeddings to 2-D with %s%s",
        len(features),
        {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA"}[method],
        " (a while for thousands of clips)" if method != "pca" else "",
    )
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ValueError(
                "method umap needs umap-learn (pip install umap-learn); t-SNE needs nothing more."
            ) from None
        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(features) - 1), random_state=seed)
        return reducer.fit_transform(features), method
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        return tsne.fit_transform(features), method
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(features), method


def clustering_scores(embeddings: np.ndarray, groups: dict[str, Sequence]) -> dict[str, Optional[float]]:
    """Silhouette score of each grouping (emotion, speaker) on the standardised embeddings: near 1 for tight,
    separate clusters, near 0 for none. `None` where a grouping has fewer than 2 or as many groups as clips."""
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    features = StandardScaler().fit_transform(embeddings)
    scores = {}
    for name, values in groups.items():
        distinct = len(set(values))
        scores[name] = float(silhouette_score(features, list(values))) if 2 <= distinct < len(features) else None
    return scores


def plot_projection(
    projection: np.ndarray,
    emotions: Sequence[str],
    speakers: Sequence[str],
    scores: dict[str, Optional[float]],
    path: str | Path,
    title: str = "",
) -> None:
    """Two scatter plots of the 2-D map: coloured by emotion, and by speaker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes_pair = plt.subplots(1, 2, figsize=(12, 5.2))
    for axes, (name, values) in zip(axes_pair, (("emotion", emotions), ("speaker", speakers))):
        names = sorted(set(values), key=str)
        colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        values = np.asarray(values, dtype=object)
        for index, group in enumerate(names):
            members = values == group
            axes.scatter(
                projection[members, 0],
                projection[members, 1],
                s=10,
                alpha=0.75,
                color=colours(index % colours.N),
                label=str(group),
            )
        score = scores.get(name)
        axes.set_title(f"by {name}" + (f" (silhouette {score:.2f})" if score is not None else ""))
        axes.set_xticks([])
        axes.set_yticks([])
        if len(names) <= 24:
            axes.legend(fontsize=7, markerscale=1.5, ncol=2 if len(names) > 12 else 1, loc="best")
    if title:
        figure.suptitle(title)
    save_figure(figure, path)


def embed_corpus(
    model_name: str,
    dataset: Dataset,
    output_dir: str | Path,
    method: str = "auto",
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Embed every clip of ``dataset`` (a corpus as :func:`ser_hf.load_corpus` returns it) with a saved model; save the
    embeddings as a dataset column, the 2-D map as a PNG, and the clustering scores as ``embed.json``."""
    model, feature_extractor = load_embedding_model(model_name)
    audio_rate = getattr(dataset.features.get("audio"), "sampling_rate", None)
    if audio_rate is not None and audio_rate != feature_extractor.sampling_rate:
        raise InputError(
            f"The corpus is decoded at {audio_rate} Hz but {model_name} reads "
            f"{feature_extractor.sampling_rate} Hz audio: load it with sampling_rate "
            f"{feature_extractor.sampling_rate}.",
            parameter="sampling_rate",
        )
    prepared = prepare_audio(dataset)
    embeddings, logits = pooled_embeddings(
        model, feature_extractor, prepared, batch_size=batch_size, progress=progress
    )
    label_names = dataset.features["label"].names
    emotions = [label_names[label] for label in column_values(dataset, "label")]
    speakers = [str(speaker) for speaker in column_values(dataset, "speaker_id")]
    projection, method = project_2d(embeddings, method, seed)
    scores = clustering_scores(embeddings, {"emotion": emotions, "speaker": speakers})

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    kept = dataset.select_columns([name for name in _KEPT_COLUMNS if name in dataset.column_names])
    predictions = [model.config.id2label[int(index)] for index in logits.argmax(axis=1)]
    kept = kept.add_column(PREDICTION_COLUMN, predictions)
    # One fixed-length float32 list per clip (add_column takes a 1-D array or a list of rows).
    kept = kept.add_column(
        EMBEDDING_COLUMN,
        list(embeddings.astype(np.float32)),
        feature=List(Value("float32"), length=embeddings.shape[1]),
    )
    kept = kept.add_column(
        PROJECTION_COLUMN, list(projection.astype(np.float32)), feature=List(Value("float32"), length=2)
    )
    with atomic_directory(output_dir / EMBEDDINGS_DATASET) as staging:
        kept.save_to_disk(str(staging))
    png = output_dir / f"embedding_{method}.png"
    corpora = sorted(set(column_values(dataset, "corpus"))) if "corpus" in dataset.column_names else []
    plot_projection(
        projection,
        emotions,
        speakers,
        scores,
        png,
        title=f"{Path(model_name).name} ({model.config.model_type}) on {', '.join(corpora) or 'a corpus'}"
        f": {len(embeddings)} clips, {method.upper() if method != 'tsne' else 't-SNE'}",
    )
    result = {
        "model": str(model_name),
        "model_type": model.config.model_type,
        "clips": len(embeddings),
        "embedding_size": int(embeddings.shape[1]),
        "projection": method,
        "silhouette": scores,
        "clusters_more_by": (
            max((k for k in scores if scores[k] is not None), key=lambda k: scores[k])
            if any(v is not None for v in scores.values())
            else None
        ),
        "prediction_accuracy": float(np.mean([p == e for p, e in zip(predictions, emotions)])),
        "dataset": str(output_dir / EMBEDDINGS_DATASET),
        "plot": str(png),
    }
    write_text_atomic(output_dir / EMBED_JSON, json.dumps(result, indent=2) + "\n")
    return result


__all__ = [
    "EMBEDDING_COLUMN",
    "clustering_scores",
    "embed_corpus",
    "load_embedding_model",
    "plot_projection",
    "pooled_embeddings",
    "project_2d",
]
