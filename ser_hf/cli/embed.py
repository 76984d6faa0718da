"""``ser-hf embed --model DIR --corpus NAME --data-dir DIR``: pooled embeddings of a model for a corpus and their 2-D
map. The parser imports nothing heavy; :mod:`ser_hf.experiments.embed` (torch, scikit-learn, matplotlib) is imported
when the command runs."""

from __future__ import annotations

import argparse

from ..experiments.constants import PROJECTION_METHODS
from .commands import COMMANDS
from .corpus_arguments import add_corpus_arguments, load_corpora, speaker_ids


def add_embed_parser(commands) -> argparse.ArgumentParser:
    """Register ``ser-hf embed`` on the ``ser-hf`` sub-command parsers."""
    parser = commands.add_parser(
        "embed",
        help=COMMANDS["embed"].help,
        description="Embed a corpus with a trained model (the classifier's input vector), save the embeddings as a "
        "datasets column, and plot a 2-D projection coloured by emotion and by speaker.",
    )
    parser.add_argument("--model", required=True, help="folder (or Hub id) of a trained model")
    add_corpus_arguments(parser)
    parser.add_argument("--speakers", help="comma-separated speakers to embed (e.g. a model's test speakers)")
    parser.add_argument(
        "--output-dir", default="outputs/embeddings", help="folder for the embeddings dataset, the plot and embed.json"
    )
    parser.add_argument(
        "--method",
        choices=PROJECTION_METHODS,
        default="auto",
        help="2-D projection: auto (UMAP if umap-learn is installed, else t-SNE), umap, tsne or pca",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="seed of the projection")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=embed_command)
    return parser


def embed_command(args: argparse.Namespace) -> int:
    from ..data.dataset_info import column_values
    from ..experiments.embed import embed_corpus

    wanted = set(speaker_ids(args.speakers) or [])  # before the corpus is read
    dataset = load_corpora(args)
    if wanted:
        missing = sorted(wanted - set(column_values(dataset, "speaker_id")))
        if missing:
            raise ValueError(f"--speakers {missing} are not speakers of the corpus.")
        speakers = column_values(dataset, "speaker_id")
        dataset = dataset.select([row for row, speaker in enumerate(speakers) if speaker in wanted])
    result = embed_corpus(
        args.model,
        dataset,
        args.output_dir,
        method=args.method,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=not args.no_progress,
    )
    scores = ", ".join(f"{name} {value:.3f}" for name, value in result["silhouette"].items() if value is not None)
    print(
        f"{result['clips']} clips embedded ({result['embedding_size']} dimensions) into {result['dataset']}; "
        f"{result['projection']} map {result['plot']}; silhouette: {scores or 'n/a'}; the model clusters more by "
        f"{result['clusters_more_by']}."
    )
    return 0


__all__ = ["add_embed_parser", "embed_command"]
