"""Choices of the experiments that the command line offers without importing them (torch, pandas, matplotlib)."""

#: How ``ser-hf sweep`` picks its points: every grid point (or N drawn at random), or optuna's TPE sampler.
BACKENDS = ("grid", "optuna")
#: 2-D projections of ``ser-hf embed``: ``auto`` is UMAP when umap-learn is installed, else t-SNE.
PROJECTION_METHODS = ("auto", "umap", "tsne", "pca")

__all__ = ["BACKENDS", "PROJECTION_METHODS"]
