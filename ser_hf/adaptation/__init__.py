"""Adapting a trained ser-hf model to a user's recordings: the one path ``ser-hf adapt``, the learning-curve benchmark
and the labelling page all run (:func:`adapt`).

Everything a user gives is checked before a clip is encoded (:func:`check_adaptation`): the model (a folder, or a Hub
id resolved as ``ser-hf predict`` resolves one), the folders (none inside another, the output outside the audio), the
labelled clips (every label with a clip of a speaker who adapts), and the unlabelled recordings (those of the labelled
folder left out of self-training, those of the test speakers refused unless the user says so). What the adaptation
reads of a trained model before anything heavy is imported is :mod:`.trained_model`'s (the record it writes,
``adaptation.json``, a run record: :func:`ser_hf.run_record.read_adaptation_record`); its error is
:class:`~.errors.AdaptationError`.

Which clips to label is :func:`suggest`'s answer (``ser-hf suggest``): a labelling sheet (:mod:`.sheet`) that a
person fills in (the app's labelling page, :mod:`ser_hf.cli.labelling_page`) and ``adapt(..., labels_csv=SHEET)``
reads.
"""

from .adapt import AdaptationPlan, adapt, check_adaptation, resolve_model_folder
from .errors import AdaptationError
from .suggest import Suggestions, suggest

__all__ = [
    "AdaptationError",
    "AdaptationPlan",
    "Suggestions",
    "adapt",
    "check_adaptation",
    "resolve_model_folder",
    "suggest",
]
