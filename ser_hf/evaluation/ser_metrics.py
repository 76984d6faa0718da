"""ser-hf's metrics as an `evaluate` metric module, loadable offline by path:

    >>> import evaluate, ser_hf
    >>> metric = evaluate.load(ser_hf.metrics_path())
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])["unweighted_accuracy"]
    0.75

It returns every metric of ser-hf's table (:data:`ser_hf.evaluation.constants.METRICS`) that predicted classes
alone give (``CLASS_METRICS``: UA as ``unweighted_accuracy``, the mean of per-class recalls, WA as ``accuracy``,
``macro_f1``, ``weighted_f1``), and ``per_class_recall``, computed by
:func:`ser_hf.evaluation.metrics.classification_metrics`: the module is a thin `evaluate` face on the one
implementation ser-hf's reports use, so the figures of `evaluate.evaluator` and of ``ser-hf evaluate`` agree on the
same clips. `evaluate` copies this file into its module cache and imports it on its own, so it imports ser-hf
absolutely.
"""

import datasets
import evaluate
import numpy as np

from ser_hf.evaluation.constants import CLASS_METRICS
from ser_hf.evaluation.metrics import classification_metrics
from ser_hf.metric_table import METRICS

_DESCRIPTION = """Speech emotion recognition metrics: unweighted accuracy (UA, mean per-class recall: the figure SER
papers rank by, since corpora are unbalanced), weighted accuracy (WA, share of clips right), macro-F1 over the classes
present, and per-class recall."""

_KWARGS_DESCRIPTION = f"""
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): true class ids.
    label_names (`list` of `str`, *optional*): class names, index = class id; per-class recall is keyed by them
        (by class id as a string otherwise).
Returns:
    {", ".join(f"{name} (`float`, {METRICS[name].label})" for name in CLASS_METRICS)},
    per_class_recall (`dict[str, float]`): recall of every class, 0 for a class absent from the references.
"""

_CITATION = """@misc{ser_hf, title={ser-hf: speech emotion recognition on the Hugging Face stack}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SERMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://en.wikipedia.org/wiki/Emotion_recognition"],
        )

    def _compute(self, predictions, references, label_names=None):
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        num_classes = int(max(predictions.max(initial=-1), references.max(initial=-1)) + 1)
        if label_names is None:
            label_names = [str(i) for i in range(num_classes)]
        elif len(label_names) < num_classes:
            raise ValueError(f"label_names has {len(label_names)} names but the class ids reach {num_classes - 1}")
        # One-hot "logits": the metrics need only the predicted class (calibration is not computed from ids).
        logits = np.eye(len(label_names))[predictions]
        metrics = classification_metrics(references, logits, list(label_names))
        return {
            **{name: metrics[name] for name in CLASS_METRICS},
            "per_class_recall": {name: scores["recall"] for name, scores in metrics["per_class"].items()},
        }
