"""``ser-hf evaluate``: a trained model on the held-out speakers of its own run, on chosen speakers, and on other
corpora (cross-corpus, on the labels the models and corpora share)."""

from __future__ import annotations

import json
import shutil

import pytest
from sklearn.metrics import balanced_accuracy_score

from ser_hf.cli import main as cli_main
from ser_hf.evaluation.metrics import SCALAR_METRICS
from tests.conftest import local_scores


def test_evaluate_cli_writes_a_report_and_flags_speakers_the_model_saw(tmp_path, cnn_run, tiny_ravdess, capsys):
    model_dir = tmp_path / "model"
    shutil.copytree(cnn_run, model_dir)
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                str(model_dir),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--split",
                "test",
            ]
        )
        == 0
    )
    report_dir = model_dir / "reports" / "ravdess-test"
    report = json.loads((report_dir / "eval_report.json").read_text())
    trained = json.loads((model_dir / "metrics.json").read_text())["evaluation"]["test"]
    (metrics,) = report["evaluation"].values()
    # The held-out test speaker of the run, scored as the run scored it.
    assert report["split"]["speakers"] == {"ravdess (test)": ["04"]} and not report["cross_corpus"]
    assert report["speaker_independent"] and report["training_overlap"]["train"] == []
    for name in SCALAR_METRICS:
        assert metrics[name] == pytest.approx(trained[name], abs=1e-5), name
    assert (report_dir / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "| ravdess (test) | 8 | 04 |" in (report_dir / "eval_report.md").read_text()
    # The card lists the report, and it pushes to a repository of its own: tests/hub/test_hub.py.

    # Speakers the model trained on are evaluated if asked, and the report says so.
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                str(model_dir),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--speakers",
                "01",
                "--output-dir",
                str(tmp_path / "leak"),
            ]
        )
        == 0
    )
    leak = json.loads((tmp_path / "leak" / "eval_report.json").read_text())
    assert leak["training_overlap"]["train"] == ["01"] and leak["speaker_independent"] is False
    assert "the model trained on them: not speaker-independent" in (tmp_path / "leak" / "eval_report.md").read_text()
    # A split the corpus cannot give is an error naming it.
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                str(model_dir),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--speakers",
                "99",
            ]
        )
        == 2
    )
    assert "Speakers ['99'] are not in ravdess" in capsys.readouterr().err


def test_every_evaluation_says_what_the_model_trained_on_and_whether_the_corpus_is_one_of_them(
    tmp_path, cnn_run, tiny_ravdess, cremad_clips
):
    """In-corpus (RAVDESS model on RAVDESS), cross-corpus (on CREMA-D) and unknown (a model without its run's files):
    the report records the training corpora and the relation, and its Markdown says both."""
    unknown = tmp_path / "bare_model"
    shutil.copytree(cnn_run, unknown, ignore=shutil.ignore_patterns("run_config.json", "metrics.json", "checkpoint-*"))
    report_only = tmp_path / "model_and_metrics"  # the run's metrics.json records its corpora too
    shutil.copytree(cnn_run, report_only, ignore=shutil.ignore_patterns("run_config.json", "checkpoint-*"))
    assert json.loads((cnn_run / "metrics.json").read_text())["training_corpora"] == ["ravdess"]
    cases = (
        (
            report_only,
            "cremad",
            cremad_clips.parent,
            "cross-corpus",
            "- Cross-corpus: the model was trained on RAVDESS",
        ),
        (
            cnn_run,
            "ravdess",
            tiny_ravdess,
            "in-corpus",
            "- In-corpus: the model was trained on RAVDESS, and RAVDESS is",
        ),
        (cnn_run, "cremad", cremad_clips.parent, "cross-corpus", "- Cross-corpus: the model was trained on RAVDESS, "),
        (unknown, "ravdess", tiny_ravdess, "unknown", "- Provenance unknown: the model's training corpora are not"),
    )
    for model, corpus, data_dir, relation, line in cases:
        output = tmp_path / f"{model.name}-{corpus}"
        evaluate = ["evaluate", "--model", str(model), "--corpus", corpus, "--data-dir", str(data_dir)]
        assert cli_main([*evaluate, "--split", "all", "--output-dir", str(output)]) == 0
        report = json.loads((output / "eval_report.json").read_text())
        assert report["corpus_relation"] == relation and report["cross_corpus"] == (relation == "cross-corpus")
        assert report["training_corpora"] == (None if relation == "unknown" else ["ravdess"])
        assert line in (output / "eval_report.md").read_text()
    assert (
        "not on CREMA-D: these figures measure how it carries to a corpus it never heard"
        in (tmp_path / "run-cremad" / "eval_report.md").read_text()
    )


def test_cross_corpus_matrix_on_two_real_corpora_uses_their_shared_labels(
    tmp_path, cnn_run, cremad_run, tiny_ravdess, cremad_clips
):
    output = tmp_path / "matrix"
    assert (
        cli_main(
            [
                "evaluate",
                "--model",
                str(cnn_run),
                "--model",
                str(cremad_run),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(tiny_ravdess),
                "--corpus",
                "cremad",
                "--data-dir",
                str(cremad_clips.parent),
                "--output-dir",
                str(output),
            ]
        )
        == 0
    )
    matrix = json.loads((output / "cross_corpus.json").read_text())
    shared = ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert matrix["labels"] == shared and matrix["corpora"] == ["ravdess", "cremad"]
    ravdess_model, cremad_model = matrix["models"]
    assert ravdess_model == f"{cnn_run.parent.name}/run" and cremad_model == f"{cremad_run.parent.name}/run"
    cells = matrix["cells"]
    # In-corpus cells use the held-out test speakers of each run; cross-corpus cells every clip.
    in_corpus = cells[ravdess_model]["ravdess"]
    assert (in_corpus["split"], in_corpus["clips"], in_corpus["cross_corpus"]) == ("test", 6, False)
    assert cells[cremad_model]["cremad"]["split"] == "test" and not cells[cremad_model]["cremad"]["cross_corpus"]
    assert cells[ravdess_model]["cremad"]["cross_corpus"] and cells[ravdess_model]["cremad"]["split"] == "all"
    assert cells[cremad_model]["ravdess"]["cross_corpus"] and cells[cremad_model]["ravdess"]["clips"] == 24

    # The RAVDESS model (8 labels) chooses among the 6 shared ones: its choice is the argmax of its own pipeline
    # scores over those labels, and UA is computed on them.
    report = json.loads((output / cells[ravdess_model]["cremad"]["report"]).read_text())
    assert report["restricted_to_shared_labels"] and report["labels"] == shared and report["dropped_clips"] == {}
    (metrics,) = report["evaluation"].values()
    predictions = metrics["clip_predictions"][::4]  # every fourth clip: 12 of them, all six labels
    scores = local_scores(cnn_run, [p["path"] for p in predictions])
    assert [p["prediction"] for p in predictions] == [max(shared, key=s.get) for s in scores]
    everything = metrics["clip_predictions"]
    assert metrics["unweighted_accuracy"] == pytest.approx(
        balanced_accuracy_score([p["label"] for p in everything], [p["prediction"] for p in everything])
    )
    assert matrix["unweighted_accuracy"][ravdess_model]["cremad"] == metrics["unweighted_accuracy"]
    # The CREMA-D model meets RAVDESS' calm and surprised clips: they are left out and counted.
    reverse = json.loads((output / cells[cremad_model]["ravdess"]["report"]).read_text())
    assert reverse["dropped_clips"] == {"calm": 4, "surprised": 4} and not reverse["restricted_to_shared_labels"]
    assert reverse["unknown_label_clips"] == {"calm": 4, "surprised": 4}  # the model lacks them: left unscored
    assert "| model \\ corpus | ravdess | cremad |" in (output / "cross_corpus.md").read_text()
    assert (
        f"Trained on: {ravdess_model}: RAVDESS; {cremad_model}: CREMA-D." in (output / "cross_corpus.md").read_text()
    )
    assert matrix["training_corpora"] == {ravdess_model: ["ravdess"], cremad_model: ["cremad"]}
    assert (output / "cross_corpus_ua.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_batches_only_what_predict_batches():
    """One padding rule (issue 32): data2vec-audio returns an attention mask yet hears a batch's padding, so
    evaluate's logits (like predict's) come one clip at a time, whatever the batch size asked for."""
    import numpy as np
    import torch
    from datasets import Dataset

    from ser_hf.evaluation.evaluate_model import predict_logits
    from ser_hf.models.runtime.padding import is_padding_invariant
    from tests.conftest_models import build_tiny

    model, feature_extractor = build_tiny("data2vec-audio-mean")
    assert feature_extractor.return_attention_mask and not is_padding_invariant(model, feature_extractor)
    rng = np.random.default_rng(0)
    waveforms = [rng.standard_normal(n).astype(np.float32) for n in (4000, 16000, 6000)]
    dataset = Dataset.from_dict({"waveform": waveforms, "label": [0, 1, 2]})
    one_by_one = predict_logits(model, feature_extractor, dataset, batch_size=1)
    np.testing.assert_array_equal(predict_logits(model, feature_extractor, dataset, batch_size=8), one_by_one)
    # What a padded batch would have given: not the same (the rule's reason).
    batch = feature_extractor(waveforms, sampling_rate=16000, padding=True, return_tensors="pt")
    with torch.no_grad():
        batched = model(**batch).logits.numpy()
    assert np.abs(batched - one_by_one).max() > 1e-6


def test_a_folder_corpus_is_evaluated_as_the_model_read_it_and_known_by_its_corpus_name(tmp_path):
    """`ser-hf evaluate --corpus folder --data-dir D` without the folder's regexes reads D as the model's run read its
    folder corpus; the same folder keeps the run's corpus_name (in-corpus, its test speakers), another folder does
    not (cross-corpus), and an option given wins."""
    from ser_hf.evaluation.eval_report import corpus_relation
    from ser_hf.evaluation.evaluate_model import CorpusSource, TrainedModel, with_training_layout
    from ser_hf.run_record import RunConfig

    layout = {"label_regex": r"_(?P<label>[a-z]+)_\d+\.wav$", "speaker_regex": r"^(?P<speaker>[A-Z]+\d)_"}
    data = {
        "corpus": ["folder"],
        "data_dir": [str(tmp_path / "mine")],
        "corpus_options": {**layout, "corpus_name": "mine"},
    }
    trained = TrainedModel("m", None, None, run_config=RunConfig(data=data))
    assert trained.corpora == ["mine"]
    same = with_training_layout(trained, CorpusSource("folder", str(tmp_path / "mine")))
    assert same.options == {**layout, "corpus_name": "mine"} and same.full_name == "mine"
    assert corpus_relation(trained.corpora, same.identity) == "in-corpus"
    other = with_training_layout(
        trained, CorpusSource("folder", str(tmp_path / "theirs"), options={"corpus_name": "t"})
    )
    assert other.options == {**layout, "corpus_name": "t"}
    assert corpus_relation(trained.corpora, other.identity) == "cross-corpus"
    # A layout given (here a speaker regex) is the folder's own: nothing is carried.
    given = CorpusSource("folder", str(tmp_path / "theirs"), options={"speaker_regex": "(?P<speaker>x)"})
    assert with_training_layout(trained, given) is given
    named = CorpusSource("ravdess", str(tmp_path))
    assert with_training_layout(trained, named) is named and named.identity == "ravdess"
