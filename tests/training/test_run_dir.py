"""RunDir, the one reader of a run folder: what a training wrote reads back, a k-fold layout lists its folds in fold
order, and a run pushed to a Hub repository reads through ``hf_hub_download``."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import HfApi

from ser_hf.run_folder import (
    EVAL_REPORT_JSON,
    METRICS_FILE,
    REPORTS_DIR,
    RUN_CONFIG_FILE,
    SUMMARY_FILE,
    RunDir,
)
from ser_hf.train import main
from tests.hub_server import LocalHub
from tests.training.test_train import write_recipe

TOKEN = "hf_localTestToken0123456789abcdefXYZ"


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def test_a_trained_run_reads_back_what_the_training_wrote(tmp_path, tiny_ravdess):
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_ravdess,
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )
    (report,) = main([str(recipe)])
    run = RunDir(tmp_path / "run")
    assert run.is_run_folder() and run.is_finished() and not run.is_fold
    assert run.read_json(METRICS_FILE) == json.loads(json.dumps(report.to_dict(), default=str))
    run_config = run.read_json(RUN_CONFIG_FILE)
    assert run_config["model"]["model_type"] == "cnn2d" and run_config["data"]["corpus"] == ["ravdess"]
    assert run.read_model_config()["model_type"] == "ser_cnn2d"
    assert run.read_feature_extractor_config()["sampling_rate"] == 16000
    assert run.read_summary() is None and run.fold_dirs() == [] and run.eval_reports() == []
    assert run.last_complete_checkpoint() is None and not run.checkpoints()


def test_a_kfold_layout_lists_its_folds_in_fold_order_and_its_reports(tmp_path):
    root = tmp_path / "kfold"
    for fold in (0, 1, 2, 10):
        write_json(root / f"fold-{fold}" / RUN_CONFIG_FILE, {"model": {"model_type": "crnn"}})
        if fold != 2:  # fold 2 is still training
            write_json(root / f"fold-{fold}" / METRICS_FILE, {"fold": fold})
    write_json(root / SUMMARY_FILE, {"folds": 3})
    write_json(root / REPORTS_DIR / "cremad-all" / EVAL_REPORT_JSON, {"corpus": "cremad"})
    write_json(root / REPORTS_DIR / "matrix" / "a__cremad" / EVAL_REPORT_JSON, {"corpus": "cremad", "cell": 1})
    run = RunDir(root)
    assert run.is_run_folder() and not run.is_finished() and run.read_json(METRICS_FILE) is None
    assert [fold.path.name for fold in run.fold_dirs()] == ["fold-0", "fold-1", "fold-10"]
    assert [fold.path.name for fold in run.fold_dirs(finished=False)] == ["fold-0", "fold-1", "fold-2", "fold-10"]
    assert [fold.read_json(METRICS_FILE) for fold in run.fold_dirs()] == [{"fold": 0}, {"fold": 1}, {"fold": 10}]
    assert run.fold(1) == RunDir(root / "fold-1") and run.fold(1).is_fold
    assert run.read_summary() == {"folds": 3}
    assert run.eval_reports() == [
        ("reports/cremad-all", {"corpus": "cremad"}),
        ("reports/matrix/a__cremad", {"corpus": "cremad", "cell": 1}),
    ]
    (root / "fold-0" / METRICS_FILE).write_text('{"fold": 0,')  # cut short
    with pytest.raises(ValueError, match=r"fold-0/metrics.json is not valid JSON"):
        run.fold(0).read_json(METRICS_FILE)
    assert not RunDir(tmp_path / "missing").is_run_folder()


def test_checkpoints_are_listed_newest_first_and_an_unfinished_save_is_passed_over(tmp_path, caplog):
    for step in (2, 4, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if step != 10:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-best").mkdir()  # not Trainer's
    run = RunDir(tmp_path)
    assert [p.name for p in run.checkpoints()] == ["checkpoint-10", "checkpoint-4", "checkpoint-2"]
    assert run.holds_progress()
    assert run.last_complete_checkpoint() == str(tmp_path / "checkpoint-4")
    assert "Ignoring" in caplog.text and "checkpoint-10: its save did not finish" in caplog.text


def test_a_run_pushed_to_the_hub_reads_through_hf_hub_download(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    write_json(folder / METRICS_FILE, {"split": {"speakers": {"test": ["04"]}}})
    write_json(folder / RUN_CONFIG_FILE, {"data": {"corpus": ["ravdess"]}})
    write_json(folder / "fold-0" / METRICS_FILE, {"fold": 0})
    with LocalHub(token=TOKEN) as hub:
        for name, value in (
            ("ENDPOINT", hub.url),
            ("HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}"),
            ("HF_HUB_CACHE", str(tmp_path / "cache")),
        ):
            monkeypatch.setattr(huggingface_hub.constants, name, value)
        api = HfApi(endpoint=hub.url, token=TOKEN)
        repo_id = api.create_repo("ser-hf-tester/pushed-run", private=True).repo_id
        api.upload_folder(repo_id=repo_id, folder_path=str(folder))
        run = RunDir.find(repo_id, token=TOKEN)
        assert run.on_hub and str(run) == repo_id
        assert run.read_json(METRICS_FILE) == {"split": {"speakers": {"test": ["04"]}}}
        assert run.read_json(RUN_CONFIG_FILE) == {"data": {"corpus": ["ravdess"]}}
        assert run.read_summary() is None  # not in the repository
        assert run.fold(0).read_json(METRICS_FILE) == {"fold": 0} and str(run.fold(0)) == f"{repo_id}/fold-0"
        with pytest.raises(ValueError, match=f"{repo_id} is a Hub repository: listing its folds needs a local"):
            run.fold_dirs()
    # A local folder of that name is read as a folder.
    assert not RunDir.find(folder).on_hub and RunDir.find(folder).read_json(METRICS_FILE) is not None
