import json

import numpy as np
import pytest

from ser_hf.evaluation.metrics import (
    classification_metrics,
    expected_calibration_error,
    format_mean_std,
    plot_confusion_matrix,
    plot_training_curves,
    summarize_folds,
)

NAMES = ["neutral", "happy", "sad"]
# 10 clips: 5 neutral, 3 happy, 2 sad.
LABELS = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]
PREDICTIONS = [0, 0, 0, 0, 1, 1, 1, 0, 2, 0]
SPEAKERS = ["a", "a", "b", "b", "b", "a", "b", "b", "a", "b"]


def one_hot_logits(predictions, confidence=0.8, classes=3):
    """Logits whose softmax gives `confidence` to the predicted class and splits the rest evenly."""
    rest = (1 - confidence) / (classes - 1)
    probabilities = np.full((len(predictions), classes), rest)
    probabilities[np.arange(len(predictions)), predictions] = confidence
    return np.log(probabilities)


def test_metrics_against_hand_computed_values():
    metrics = classification_metrics(
        LABELS, one_hot_logits(PREDICTIONS), NAMES, speakers=SPEAKERS, sexes=["m"] * 5 + ["f"] * 5
    )
    # Confusion (rows true, columns predicted): neutral 4/1/0, happy 1/2/0, sad 1/0/1.
    assert metrics["confusion_matrix"] == [[4, 1, 0], [1, 2, 0], [1, 0, 1]]
    assert metrics["accuracy"] == pytest.approx(7 / 10)
    recalls = [4 / 5, 2 / 3, 1 / 2]
    assert metrics["unweighted_accuracy"] == pytest.approx(np.mean(recalls))
    precisions = [4 / 6, 2 / 3, 1 / 1]
    f1 = [2 * p * r / (p + r) for p, r in zip(precisions, recalls)]
    assert metrics["macro_f1"] == pytest.approx(np.mean(f1))
    assert metrics["weighted_f1"] == pytest.approx(np.average(f1, weights=[5, 3, 2]))
    assert metrics["per_class"]["happy"] == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3}
    )
    assert metrics["confusion_matrix_normalized"][2] == [0.5, 0.0, 0.5]
    # Speaker a: clips 0, 1, 5, 8 all right; speaker b: 3 right of 6.
    assert metrics["per_speaker"]["a"]["accuracy"] == 1.0
    assert metrics["per_speaker"]["b"]["accuracy"] == pytest.approx(3 / 6)
    assert metrics["per_sex"]["m"]["accuracy"] == pytest.approx(4 / 5)
    # Every clip has confidence 0.8 and 70 % are right: ECE = |0.7 - 0.8|.
    assert metrics["expected_calibration_error"] == pytest.approx(0.1)
    json.dumps(metrics)


def test_a_merged_runs_metrics_report_and_card_give_each_corpus_its_figures():
    from ser_hf.evaluation.report import format_report
    from ser_hf.hub.card_results import per_corpus_text
    from ser_hf.run_record import RunReport, SplitMetrics, SplitRecord

    corpora = ["ravdess" if speaker == "a" else "tess" for speaker in SPEAKERS]
    metrics = classification_metrics(LABELS, one_hot_logits(PREDICTIONS), NAMES, speakers=SPEAKERS, corpora=corpora)
    # The corpora split the clips as the speakers do: speaker a's 4 clips all right, b's 3 of 6.
    assert metrics["per_corpus"]["ravdess"]["accuracy"] == 1.0 and metrics["per_corpus"]["ravdess"]["clips"] == 4
    assert metrics["per_corpus"]["tess"]["accuracy"] == pytest.approx(3 / 6)
    assert metrics["per_corpus"]["tess"]["unweighted_accuracy"] == metrics["per_speaker"]["b"]["unweighted_accuracy"]
    split = {"clips": {"train": 20, "test": 10}, "speakers": {"train": ["c"], "test": ["a", "b"]}}
    report = RunReport(labels=NAMES, protocol="speaker", split=SplitRecord.from_dict(split))
    report.evaluation["test"] = SplitMetrics.from_dict(metrics)
    assert "By corpus (test): ravdess UA 100.0 % (WA 100.0 %, 4 clips); tess UA" in format_report(report)
    assert per_corpus_text(report).startswith("ravdess 100.0 % WA, 100.0 % UA on 4 clips, tess ")
    one_corpus = classification_metrics(LABELS, one_hot_logits(PREDICTIONS), NAMES, corpora=["tess"] * 10)
    assert per_corpus_text(RunReport.from_dict({"labels": NAMES, "evaluation": {"test": one_corpus}})) is None


def test_ece_is_zero_when_confidence_matches_accuracy():
    probabilities = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probabilities, np.array([0, 0, 0, 1])) == pytest.approx(0.0)


def test_absent_class_counts_as_zero_recall_not_an_error():
    metrics = classification_metrics([0, 0, 1], one_hot_logits([0, 1, 1]), NAMES)
    assert metrics["per_class"]["sad"]["support"] == 0
    assert metrics["confusion_matrix"][2] == [0, 0, 0]


def test_fold_summary_is_mean_and_sample_std():
    folds = [
        classification_metrics(LABELS, one_hot_logits(PREDICTIONS), NAMES),
        classification_metrics(LABELS, one_hot_logits(LABELS), NAMES),
    ]
    summary = summarize_folds(folds)
    assert summary["folds"] == 2
    assert summary["mean"]["accuracy"] == pytest.approx(0.85)
    assert summary["std"]["accuracy"] == pytest.approx(np.std([0.7, 1.0], ddof=1))
    assert [f["accuracy"] for f in summary["per_fold"]] == pytest.approx([0.7, 1.0])
    assert format_mean_std(summary, "accuracy") == "85.0 ± 21.2"


def test_plots_are_written_as_png(tmp_path):
    metrics = classification_metrics(LABELS, one_hot_logits(PREDICTIONS), NAMES)
    plot_confusion_matrix(metrics, str(tmp_path / "confusion.png"))
    history = [
        {"step": 1, "loss": 1.2},
        {"step": 2, "eval_loss": 1.0, "eval_unweighted_accuracy": 0.4},
        {"step": 3, "loss": 0.9},
        {"step": 4, "eval_loss": 0.8, "eval_unweighted_accuracy": 0.6},
    ]
    plot_training_curves(history, str(tmp_path / "curves.png"))
    for name in ("confusion.png", "curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_macro_f1_ignores_classes_absent_from_truth_and_predictions():
    metrics = classification_metrics([0, 1, 0, 1], one_hot_logits([0, 1, 0, 1]), NAMES)
    assert metrics["unweighted_accuracy"] == 1.0 and metrics["macro_f1"] == 1.0 and metrics["weighted_f1"] == 1.0


def test_every_metric_has_one_row_with_what_its_readers_need():
    """One table of metrics (issue 32): every scalar classification_metrics computes has a row, and every row what
    the reports, comparisons, sweeps, intervals and the card's model-index read from it."""
    from ser_hf.evaluation.bootstrap import INTERVAL_LABELS, pooled_intervals
    from ser_hf.evaluation.constants import INTERVAL_METRICS, SCALAR_METRICS
    from ser_hf.hub.card_results import MODEL_INDEX_METRICS
    from ser_hf.metric_table import METRICS

    metrics = classification_metrics(LABELS, one_hot_logits(PREDICTIONS), NAMES, speakers=SPEAKERS)
    scalars = {name for name, value in metrics.items() if isinstance(value, float) and not name.startswith("per_")}
    assert scalars == set(SCALAR_METRICS) == set(METRICS)
    for name, metric in METRICS.items():
        assert metric.name == name and metric.label and isinstance(metric.greater_is_better, bool)
        if metric.model_index_type is not None:
            assert metric.model_index_name and MODEL_INDEX_METRICS[name][0] == metric.model_index_type
    # The Hub's metric ids, each metric named for what it is; ECE has no Hub type and stays in the card's tables.
    assert MODEL_INDEX_METRICS["unweighted_accuracy"] == ("recall", "Unweighted accuracy (UA, macro recall)", "macro")
    assert (
        "expected_calibration_error" not in MODEL_INDEX_METRICS
        and not METRICS["expected_calibration_error"].greater_is_better
    )
    # Every metric with an interval gets one from the speaker bootstrap, under its label: the bootstrap computes each
    # from confusion matrices, and the one with an interval are exactly the ones it can compute.
    from ser_hf.evaluation.bootstrap import metrics_from_confusion
    from ser_hf.evaluation.constants import view_metrics
    from ser_hf.metric_table import VIEWS

    computable = set(metrics_from_confusion(np.eye(3)[None]))
    assert list(INTERVAL_LABELS) == list(INTERVAL_METRICS) == [name for name in METRICS if name in computable]
    # Every row says how tables write it and which comparison views show it; each view shows some metric.
    for name, metric in METRICS.items():
        assert metric.unit in ("percent", "score") and set(metric.views) <= set(VIEWS)
        assert metric.format(0.5) == ("50.0 %" if metric.unit == "percent" else "0.500")
    assert all(view_metrics(view) for view in VIEWS)
    intervals = pooled_intervals([metrics])
    assert list(intervals["intervals"]) == list(intervals["pooled"]) == list(INTERVAL_METRICS)
