"""ser-hf's `evaluate` metric module: loads offline by path, computes what the reports compute, and run through
`evaluate.evaluator("audio-classification")` on a ser-hf model and corpus agrees with ``ser-hf evaluate``."""

import evaluate
import numpy as np
import pytest

import ser_hf
from ser_hf.data.corpora import load_corpus
from ser_hf.evaluation.constants import CLASS_METRICS
from ser_hf.evaluation.evaluate_model import CorpusSource, evaluate_model
from ser_hf.evaluation.metrics import classification_metrics
from ser_hf.metric_table import METRICS
from tests.conftest import RAVDESS_SAMPLE
from tests.conftest_models import LABELS, build_tiny
from tests.deploy.test_predict import _randomize

TEST_SPEAKERS = ["07", "08"]


def test_the_module_loads_by_path_and_computes_the_reports_metrics():
    metric = evaluate.load(ser_hf.metrics_path())
    rng = np.random.default_rng(0)
    references = rng.integers(0, 4, 50)
    predictions = np.where(rng.random(50) < 0.6, references, rng.integers(0, 4, 50))
    result = metric.compute(predictions=predictions, references=references, label_names=["a", "b", "c", "d"])
    expected = classification_metrics(references, np.eye(4)[predictions], ["a", "b", "c", "d"])
    # Every metric of the table that class ids give, derived from the table (a new row is returned unasked).
    assert set(result) == {*CLASS_METRICS, "per_class_recall"}
    assert set(CLASS_METRICS) == {name for name, metric in METRICS.items() if not metric.needs_scores}
    assert {"unweighted_accuracy", "accuracy", "macro_f1", "weighted_f1"} <= set(CLASS_METRICS)
    for name in CLASS_METRICS:
        assert result[name] == pytest.approx(expected[name])
    assert result["per_class_recall"] == {k: v["recall"] for k, v in expected["per_class"].items()}
    assert metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])["unweighted_accuracy"] == 0.75


@pytest.mark.parametrize("kind", ["crnn", "wav2vec2-mean"])
@pytest.mark.slow
def test_evaluator_on_a_ser_hf_model_agrees_with_ser_hf_evaluate(tmp_path, kind):
    model, extractor = build_tiny(kind)
    _randomize(model).save_pretrained(tmp_path)
    extractor.save_pretrained(tmp_path)

    report = evaluate_model(str(tmp_path), CorpusSource("ravdess", str(RAVDESS_SAMPLE)), speakers=TEST_SPEAKERS)

    corpus = load_corpus("ravdess", RAVDESS_SAMPLE)
    names = corpus.features["label"].names
    shared = [names.index(label) for label in LABELS.names]  # clips of labels the model knows, as evaluate does
    clips = corpus.filter(lambda s, y: s in TEST_SPEAKERS and y in shared, input_columns=["speaker_id", "label"])
    results = evaluate.evaluator("audio-classification").compute(
        model_or_pipeline=str(tmp_path),  # a path: evaluate 0.4's pipeline check predates transformers 5
        data=clips,
        metric=evaluate.load(ser_hf.metrics_path()),
        input_column="path",
        label_column="label",
        label_mapping={name: i for i, name in enumerate(names)},
        device=-1,
    )
    (evaluation,) = report["evaluation"].values()
    assert evaluation["clips"] == len(clips) > 0
    if kind == "crnn":  # a tiny random SSL encoder gives every clip the same class; the CRNN does not
        assert sum(recall > 0 for recall in results["per_class_recall"].values()) > 1
    for name in CLASS_METRICS:
        assert results[name] == pytest.approx(evaluation[name], abs=1e-9)
