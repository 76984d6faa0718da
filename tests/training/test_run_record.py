"""The typed run record (ser_hf/run_record.py): a trained run's metrics.json and run_config.json read into it and
written back byte for byte, every key the writer writes is a field, and a report from another ser-hf version (keys
missing, keys unknown) keeps its shape."""

from __future__ import annotations

import json
import shutil

from ser_hf.evaluation.report import validation_choices
from ser_hf.run_folder import METRICS_FILE, RUN_CONFIG_FILE, RunDir
from ser_hf.run_record import RunConfig, RunReport, SplitMetrics, TrainingRecord, ValidationChoices


def test_a_trained_runs_metrics_json_reads_into_fields_and_writes_back_byte_for_byte(cnn_run):
    text = (cnn_run / METRICS_FILE).read_text()
    report = RunDir(cnn_run).read_report()
    # Every key the training wrote is a field (at every level the record types), none left in extra_fields.
    assert report.unknown_keys() == []
    assert json.dumps(report.to_dict(), indent=2) + "\n" == text
    written = json.loads(text)
    assert list(written) == [f.name for f in RunReport.json_fields() if f.name != "ensemble"]
    assert report.protocol == "speaker" and report.fold is None
    assert report.split.speakers == {"train": ["01", "02"], "validation": ["03"], "test": ["04"]}
    assert report.split.clips == written["split"]["clips"] and report.split.split_protocol == "speaker"
    test = report.evaluation["test"]
    assert (
        isinstance(test, SplitMetrics)
        and test.unweighted_accuracy == written["evaluation"]["test"]["unweighted_accuracy"]
    )
    assert test.clip_predictions and test.per_speaker == written["evaluation"]["test"]["per_speaker"]
    assert report.calibration.fitted_on == written["calibration"]["fitted_on"]
    assert isinstance(report.validation_choices, ValidationChoices)
    assert report.training.global_step == 4 and report.training.parameters["trainable"] > 0
    assert report.labels == written["labels"] and report.training_corpora == ["ravdess"]


def test_a_trained_runs_run_config_json_reads_into_its_sections_and_writes_back(cnn_run):
    text = (cnn_run / RUN_CONFIG_FILE).read_text()
    config = RunDir(cnn_run).read_config()
    assert config.unknown_keys() == [] and json.dumps(config.to_dict(), indent=2, default=str) + "\n" == text
    assert config.model_type == "cnn2d" and config.corpora == ["ravdess"]
    assert config.training["hub_token"] in (None, "<HUB_TOKEN>")
    # The dict readers stay, for code written against them.
    assert RunDir(cnn_run).read_json(RUN_CONFIG_FILE) == json.loads(text) == config.to_dict()
    assert RunDir(cnn_run).read_json(METRICS_FILE) == RunDir(cnn_run).read_report().to_dict()


def test_a_report_of_another_version_keeps_its_missing_and_unknown_keys():
    # An older ser-hf wrote no calibration or validation_choices; a newer one writes keys this one does not know.
    older = {
        "protocol": "speaker",
        "fold": None,
        "split": {"clips": {"train": 8, "test": 4}, "speakers": {"train": ["01"], "test": ["02"]}},
        "leakage_audit": {"passed": True, "speaker_overlap": {}},
        "labels": ["angry", "happy"],
        "evaluation": {"test": {"unweighted_accuracy": 0.5, "accuracy": 0.5, "new_metric": 0.25}},
        "training": {"wall_seconds": 3.0, "best_checkpoint": None, "energy_kwh": 0.01},
        "provenance": {"host": "gpu-1"},
    }
    report = RunReport.from_dict(older)
    assert json.dumps(report.to_dict()) == json.dumps(older)
    assert report.unknown_keys() == ["provenance", "evaluation.test.new_metric", "training.energy_kwh"]
    assert report.calibration is None and report.validation_choices is None and report.normalization is None
    assert report.evaluation["test"].metric("new_metric") == 0.25
    assert validation_choices(report) is None  # no validation split
    # A field set after reading is written too; the read keys keep their order.
    report.normalization = {"protocol": "global"}
    assert list(report.to_dict())[-1] == "normalization" and list(report.to_dict())[:-1] == list(older)


def test_a_record_built_in_code_writes_the_writers_keys():
    report = RunReport(
        protocol="kfold",
        fold=2,
        labels=["angry", "happy"],
        evaluation={"test": SplitMetrics(unweighted_accuracy=0.5)},
        training=TrainingRecord(wall_seconds=1.5),
    )
    written = report.to_dict()
    # Explicit nulls where the training writer writes them; the per-split extras and an ensemble only when set.
    assert written["leakage_audit"] is None and written["validation_choices"] is None
    assert "calibration" not in written and "ensemble" not in written
    assert "per_corpus" not in written["evaluation"]["test"] and "global_step" not in written["training"]
    assert RunReport.from_dict(written).to_dict() == written
    assert RunConfig(model={"model_type": "crnn"}).to_dict() == {
        "model": {"model_type": "crnn"},
        "data": {},
        "augmentation": {},
        "training": {},
    }


def test_a_run_folder_of_an_older_ser_hf_is_carded_compared_and_left_as_it_was(tmp_path, cnn_run):
    from ser_hf.experiments.compare import summarize_run
    from ser_hf.hub.card import write_model_card

    old = tmp_path / "old_run"
    shutil.copytree(cnn_run, old, ignore=shutil.ignore_patterns("checkpoint-*", "README.md"))
    report = json.loads((old / METRICS_FILE).read_text())
    for key in ("calibration", "validation_choices", "normalization", "training_corpora"):  # not written back then
        report.pop(key)
    report["written_by"] = "ser-hf 0.0.1"  # and a key this version does not know
    text = json.dumps(report, indent=2) + "\n"
    (old / METRICS_FILE).write_text(text)

    write_model_card(old)
    card = (old / "README.md").read_text()
    # What the validation speakers chose, from run_config.json's training arguments (the report did not record it).
    assert "Validation speakers: they chose the best epoch, so their figures are optimistic" in card
    assert "The scores are calibrated" not in card and "The scores are not calibrated" not in card
    result = summarize_run(old)
    assert result.mean["unweighted_accuracy"] == report["evaluation"]["test"]["unweighted_accuracy"]
    assert (
        result.model_type == "cnn2d" and result.trainable_parameters == report["training"]["parameters"]["trainable"]
    )
    assert (old / METRICS_FILE).read_text() == text
    assert RunDir(old).read_report().unknown_keys() == ["written_by"]
