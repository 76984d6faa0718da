"""Choices of the experiments that the command line offers without importing them (torch, pandas, matplotlib)."""

#: How ``ser-hf sweep`` picks its points: every grid point (or N drawn at random), or optuna's TPE sampler.
BACKENDS = ("grid", "optuna")
#: 2-D projections of ``ser-hf embed``: ``auto`` is UMAP when umap-learn is installed, else t-SNE.
PROJECTION_METHODS = ("auto", "umap", "tsne", "pca")

#: The arms of ``ser-hf learning-curve`` (:mod:`.learning_curve`), and its defaults: the arms, the labelled clips per
#: emotion (k) and the draw seeds.
LEARNING_CURVE_ARMS = ("zero-shot", "adapted", "suggested", "adapted+self-training", "scratch")
LEARNING_CURVE_DEFAULTS = {
    "arms": ("zero-shot", "adapted", "scratch"),
    "ks": (0, 1, 2, 5, 10, 20),
    "draws": (1, 2, 3, 4, 5),
}

__all__ = ["BACKENDS", "LEARNING_CURVE_ARMS", "LEARNING_CURVE_DEFAULTS", "PROJECTION_METHODS"]
