"""Choices of the experiments that the command line offers without importing them (torch, pandas, matplotlib)."""

#: How ``ser-hf sweep`` picks its points: every grid point (or N drawn at random), or optuna's TPE sampler.
BACKENDS = ("grid", "optuna")
#: 2-D projections of ``ser-hf embed``: ``auto`` is UMAP when umap-learn is installed, else t-SNE.
PROJECTION_METHODS = ("auto", "umap", "tsne", "pca")

#: The arms of ``ser-hf learning-curve`` (:mod:`.learning_curve`), its scenarios (what a user's speakers and recordings
#: are like; not recording conditions, which are ``ser-hf evaluate --conditions``'), and its defaults: the arms, the
#: labelled clips per emotion (k; the unstratified arms label k x labels clips) and the draw seeds.
LEARNING_CURVE_ARMS = ("zero-shot", "random", "suggested", "oracle", "oracle+self-training")
LEARNING_CURVE_SCENARIOS = ("ordinary", "few-emotions", "telephone-babble")
#: The recording conditions of the ``telephone-babble`` scenario, applied in this order to every clip of the corpus
#: (``ser-hf evaluate --conditions`` syntax): a telephone call from a room where others talk.
TELEPHONE_BABBLE = ("babble:snr=5", "telephone")
LEARNING_CURVE_DEFAULTS = {
    "arms": ("zero-shot", "random", "oracle"),
    "scenarios": ("ordinary",),
    "ks": (0, 1, 2, 5, 10, 20),
    "draws": (1, 2, 3, 4, 5),
}

__all__ = [
    "BACKENDS",
    "LEARNING_CURVE_ARMS",
    "LEARNING_CURVE_SCENARIOS",
    "LEARNING_CURVE_DEFAULTS",
    "TELEPHONE_BABBLE",
    "PROJECTION_METHODS",
]
