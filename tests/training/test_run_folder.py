"""Issue 20's data-loss cases: a run never deletes or overwrites a user's files, one training per output folder,
damaged checkpoints skipped, and corpora loaded whole (duplicated CSV rows, symlinked speakers, CSV encodings)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser_hf.data.corpora import load_corpus
from ser_hf.data.corpora.base import CorpusError
from ser_hf.data.dataset_info import get_ser_info
from ser_hf.errors import RecipeError
from ser_hf.run_folder import (
    OutputDirInUseError,
    RunDir,
    hold_output_dir,
    remove_run_outputs,
)
from ser_hf.train import main
from tests.conftest import RAVDESS_SAMPLE
from tests.training.test_train import write_recipe

TINY_RUN = dict(max_steps=2, eval_strategy="no", save_strategy="no", load_best_model_at_end=False)


def tree(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


# --- Case 1: overwrite_output_dir removes only what ser-hf wrote --------------------------------------------------


def test_a_corpus_folder_as_output_dir_is_refused_and_no_clip_is_touched(tmp_path, tiny_ravdess):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_ravdess, corpus)  # copies of the clips (the fixture's files are links)
    before = tree(corpus)
    recipe = write_recipe(tmp_path / "r.yaml", corpus, output_dir=str(corpus), **TINY_RUN)
    with pytest.raises(RecipeError, match=r"output_dir .*corpus' is the data directory"):
        main([str(recipe), "--overwrite_output_dir", "true"])
    assert tree(corpus) == before
    # Even with a run_config.json left there by an older ser-hf (the old trigger for deleting the folder).
    (corpus / "run_config.json").write_text("{}")
    with pytest.raises(RecipeError, match="is the data directory"):
        main([str(recipe), "--overwrite_output_dir", "true"])
    assert tree(corpus) == before | {"run_config.json"}


def test_an_output_dir_containing_the_data_dir_is_refused(tmp_path, tiny_ravdess):
    project = tmp_path / "project"
    shutil.copytree(tiny_ravdess, project / "data")
    recipe = write_recipe(tmp_path / "r.yaml", project / "data", output_dir=str(project), **TINY_RUN)
    with pytest.raises(RecipeError, match="contains the data directory"):
        main([str(recipe)])
    assert sorted(p.name for p in project.iterdir()) == ["data"]


def test_a_folder_of_the_users_own_files_is_refused_before_any_work(tmp_path, tiny_ravdess):
    mine = tmp_path / "mine"
    (mine / "chapters").mkdir(parents=True)
    (mine / "thesis.txt").write_text("two years of work")
    (mine / "chapters" / "one.tex").write_text("\\chapter{One}")
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(mine), **TINY_RUN)
    for extra in ([], ["--overwrite_output_dir", "true"]):
        with pytest.raises(RecipeError, match=r"holds files that no ser-hf run wrote \(chapters/, thesis.txt\)"):
            main([str(recipe), *extra])
    assert tree(mine) == {"thesis.txt", "chapters", "chapters/one.tex"}
    assert (mine / "thesis.txt").read_text() == "two years of work"


def test_overwriting_a_run_keeps_files_the_user_added_to_it(tmp_path, tiny_ravdess, caplog):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(tmp_path / "run"), **TINY_RUN)
    main([str(recipe)])
    run = tmp_path / "run"
    (run / "notes.txt").write_text("lr 1e-2 looked unstable")
    (run / "figures").mkdir()
    (run / "figures" / "poster.png").write_bytes(b"\x89PNG")
    written = (run / "model.safetensors").stat().st_mtime_ns
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        (report,) = main([str(recipe), "--overwrite_output_dir", "true"])
    assert report.training.resumed_from is None
    assert (run / "model.safetensors").stat().st_mtime_ns != written
    assert (run / "notes.txt").read_text() == "lr 1e-2 looked unstable"
    assert (run / "figures" / "poster.png").read_bytes() == b"\x89PNG"
    assert "Kept in" in caplog.text and "figures" in caplog.text and "notes.txt" in caplog.text


def test_removing_run_outputs_recurses_into_folds_and_keeps_everything_else(tmp_path):
    run = tmp_path / "run"
    for folder in (run, run / "fold-0", run / "fold-1"):
        (folder / "checkpoint-4").mkdir(parents=True)
        for name in (
            "run_config.json",
            "metrics.json",
            "model.safetensors",
            "modeling_crnn.py",
            "report.md",
            "confusion_matrix_test.png",
            "checkpoint-4/optimizer.pt",
        ):
            (folder / name).write_text("x")
    (run / "reports" / "cremad-test").mkdir(parents=True)
    (run / "reports" / "cremad-test" / "eval_report.json").write_text("{}")
    (run / "reports" / "cremad-test" / "reviewer_comments.txt").write_text("redo the CI")
    (run / "runs" / "Nov23").mkdir(parents=True)
    (run / "runs" / "Nov23" / "events.out.tfevents.1.host").write_text("x")
    (run / "fold-1" / "my_analysis.ipynb").write_text("{}")
    (run / "data.csv").write_text("path,label\n")
    (run / "checkpoints_of_mine").mkdir()  # not Trainer's checkpoint-N: kept
    (run / "checkpoints_of_mine" / "best.pt").write_text("x")
    kept = remove_run_outputs(run)
    assert kept == [
        "checkpoints_of_mine/",
        "data.csv",
        "fold-1/my_analysis.ipynb",
        "reports/cremad-test/reviewer_comments.txt",
    ]
    assert tree(run) == {
        "checkpoints_of_mine",
        "checkpoints_of_mine/best.pt",
        "data.csv",
        "fold-1",
        "fold-1/my_analysis.ipynb",
        "reports",
        "reports/cremad-test",
        "reports/cremad-test/reviewer_comments.txt",
    }


# --- Case 2: one training per output folder -------------------------------------------------------------------------


def test_a_second_training_into_a_held_output_dir_stops_naming_the_folder_and_the_holder(tmp_path, tiny_ravdess):
    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(run), **TINY_RUN)
    # flock locks belong to each open file, so a lock held here blocks a second training as another process would.
    with hold_output_dir(run):
        with pytest.raises(
            OutputDirInUseError,
            match=rf"output_dir '{run}' is in use by another training "
            rf"\(process {os.getpid()} of .* started ",
        ):
            main([str(recipe)])
        assert not (run / "run_config.json").exists() and not (run / "metrics.json").exists()
    (report,) = main([str(recipe)])  # the holder gone, the lock is free again
    assert (run / "metrics.json").is_file() and report.training.global_step == 2


def test_the_lock_is_released_when_the_run_fails(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with hold_output_dir(tmp_path / "run"):
            1 / 0
    with hold_output_dir(tmp_path / "run"):
        with pytest.raises(OutputDirInUseError):
            with hold_output_dir(tmp_path / "run"):
                pass


# --- Case 6: damaged checkpoints ------------------------------------------------------------------------------------


def truncate(path: Path, keep: float = 0.6) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(int(path.stat().st_size * keep))


# Resuming an interrupted training: in `make test-slow`, to keep `make test` under 5 minutes.
@pytest.mark.slow
def test_resume_skips_a_truncated_last_checkpoint_to_the_previous_complete_one(tmp_path, tiny_ravdess, caplog):
    run = tmp_path / "run"
    values = dict(max_steps=6, save_steps=2, eval_steps=2, save_total_limit=None, load_best_model_at_end=False)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_ravdess, output_dir=str(run), **values)
    main([str(recipe)])
    for name in ("metrics.json", "model.safetensors"):  # as if killed after its last checkpoint
        (run / name).unlink()
    damaged = run / "checkpoint-6" / "model.safetensors"
    truncate(damaged)
    assert RunDir(run).last_complete_checkpoint() == str(run / "checkpoint-4")
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        (report,) = main([str(recipe)])
    assert report.training.resumed_from == str(run / "checkpoint-4")
    assert f"{damaged} is damaged" in caplog.text


def test_a_truncated_optimizer_state_is_a_damaged_checkpoint(tmp_path):
    import torch

    checkpoint = tmp_path / "checkpoint-2"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text("{}")
    torch.save({"state": torch.zeros(1000)}, checkpoint / "optimizer.pt")
    assert RunDir(tmp_path).last_complete_checkpoint() == str(checkpoint)
    truncate(checkpoint / "optimizer.pt")
    assert RunDir(tmp_path).last_complete_checkpoint() is None


# --- Cases 3 and 10: CSV corpora ------------------------------------------------------------------------------------


@pytest.fixture
def csv_corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for index, clip in enumerate(sorted((RAVDESS_SAMPLE / "Actor_01").glob("*.flac"))[:4]):
        shutil.copy(clip, root / f"clip{index}.flac")
    return root


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes("\n".join(lines).encode(encoding) + b"\n")
    return path


def load_csv(root: Path, csv_path: Path, **options):
    return load_corpus(
        "folder", str(root), csv_path=str(csv_path), label_column="emotion", speaker_column="speaker", **options
    )


def test_a_csv_listing_one_file_twice_is_an_error_naming_both_lines(tmp_path, csv_corpus):
    rows = ["path,emotion,speaker", "clip0.flac,neutral,s1", "clip1.flac,happy,s1", "clip0.flac,sad,s1"]
    csv_path = write_csv(tmp_path / "meta.csv", rows)
    with pytest.raises(CorpusError, match=r"meta.csv, lines 2 and 4 both list .*clip0.flac"):
        load_csv(csv_corpus, csv_path)
    dataset = load_csv(csv_corpus, csv_path, skip_invalid=True)
    assert len(dataset) == 2 and dataset.features["label"].int2str(dataset[0]["label"]) == "neutral"
    (skipped,) = get_ser_info(dataset)["skipped"]
    assert skipped["path"] == "clip0.flac" and "lines 2 and 4" in skipped["problem"]


def test_a_csv_row_missing_its_speaker_field_is_named_by_line(tmp_path, csv_corpus):
    csv_path = write_csv(tmp_path / "meta.csv", ["path,emotion,speaker", "clip0.flac,neutral,s1", "clip1.flac,sad"])
    with pytest.raises(CorpusError, match=r"meta.csv, line 3: no value in column\(s\) \['speaker'\]"):
        load_csv(csv_corpus, csv_path)


def test_an_excel_csv_with_a_byte_order_mark_loads(tmp_path, csv_corpus):
    csv_path = write_csv(tmp_path / "meta.csv", ["path,emotion,speaker", "clip0.flac,neutral,s1"], "utf-8-sig")
    assert load_csv(csv_corpus, csv_path)[0]["speaker_id"] == "s1"


def test_a_latin1_csv_is_named_with_its_line_and_the_fix(tmp_path, csv_corpus):
    rows = ["path,emotion,speaker", "clip0.flac,neutral,s1", "clip1.flac,sad,Zoë"]
    csv_path = write_csv(tmp_path / "meta.csv", rows, "latin-1")
    with pytest.raises(CorpusError, match=r"meta.csv, line 3: not UTF-8 text .* Save the CSV as UTF-8"):
        load_csv(csv_corpus, csv_path)


# --- Case 4: symlinked folders and files ----------------------------------------------------------------------------


def test_symlinked_speaker_folders_load_like_real_ones(tmp_path):
    root = tmp_path / "ravdess"
    root.mkdir()
    shutil.copytree(RAVDESS_SAMPLE / "Actor_01", root / "Actor_01")
    for actor in ("02", "03", "04"):
        (root / f"Actor_{actor}").symlink_to(RAVDESS_SAMPLE / f"Actor_{actor}", target_is_directory=True)
    (root / "Actor_01" / "loop").symlink_to(root, target_is_directory=True)  # a cycle ends
    dataset = load_corpus("ravdess", str(root))
    expected = sum(len(list((RAVDESS_SAMPLE / f"Actor_{a}").glob("*.flac"))) for a in ("01", "02", "03", "04"))
    assert len(dataset) == expected
    assert sorted(set(dataset["speaker_id"])) == ["01", "02", "03", "04"]
    assert all(path.startswith(str(root)) for path in dataset["path"])  # the link's own location


def test_csv_rows_may_point_at_symlinked_clips_inside_the_corpus(tmp_path, csv_corpus):
    (csv_corpus / "linked.flac").symlink_to(sorted((RAVDESS_SAMPLE / "Actor_02").glob("*.flac"))[0])
    csv_path = write_csv(
        tmp_path / "meta.csv", ["path,emotion,speaker", "linked.flac,calm,s2", "clip0.flac,neutral,s1"]
    )
    dataset = load_csv(csv_corpus, csv_path)
    assert dataset[0]["path"] == str(csv_corpus.resolve() / "linked.flac") and len(dataset) == 2
    escape = write_csv(tmp_path / "escape.csv", ["path,emotion,speaker", "../outside.flac,calm,s2"])
    with pytest.raises(CorpusError, match="points outside the data directory"):
        load_csv(csv_corpus, escape)


# --- Case 12: formats torchcodec decodes --------------------------------------------------------------------------


def test_a_folder_scan_loads_aiff_and_lists_what_it_did_not_load(tmp_path, caplog):
    root = tmp_path / "corpus" / "angry"
    root.mkdir(parents=True)
    waveform = np.sin(np.linspace(0, 800, 8000)).astype("float32") * 0.3
    soundfile.write(root / "spk1_a.aiff", waveform, 16000, format="AIFF")
    soundfile.write(root / "spk1_b.wav", waveform, 16000)
    (root / "notes.txt").write_text("recorded in a kitchen")
    with caplog.at_level(logging.INFO, logger="ser_hf"):
        dataset = load_corpus("folder", str(tmp_path / "corpus"), speaker_regex=r"(spk\d+)_")
    assert sorted(Path(p).name for p in dataset["path"]) == ["spk1_a.aiff", "spk1_b.wav"]
    assert len(dataset[0]["audio"]["array"]) == 8000
    assert "not loaded (not audio formats ser-hf reads): 1 .txt" in caplog.text


def test_the_holder_record_lives_as_long_as_the_lock(tmp_path):
    with hold_output_dir(tmp_path / "run"):
        assert os.path.exists(tmp_path / "run" / ".ser-hf.lock.json")
    assert not os.path.exists(tmp_path / "run" / ".ser-hf.lock.json")


class _RunsCode:
    """Unpickling it would run a shell command: what a malicious rng_state.pth holds."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _checkpoint(run: Path, step: int, state: str | None = None) -> Path:
    """``run/checkpoint-STEP`` as Trainer saves one: its state, its random states (as Trainer pickles them)."""
    import random

    import torch

    checkpoint = run / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    default = f'{{"global_step": {step}, "max_steps": 4, "epoch": 1.0, "log_history": []}}'
    (checkpoint / "trainer_state.json").write_text(default if state is None else state)
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.random.get_rng_state()}
    torch.save(rng, checkpoint / "rng_state.pth")
    return checkpoint


@pytest.mark.parametrize(
    "damage, reason",
    [
        (
            "not JSON",
            "trainer_state.json is damaged (not valid JSON: Expecting property name enclosed in double quotes",
        ),
        ("step past the end", "trainer_state.json is damaged (its global_step 999999 is past the run's max_steps 4)"),
        ("step of another checkpoint", "trainer_state.json is damaged (its global_step 3 is not the step of "),
        ("code in rng_state.pth", "rng_state.pth is damaged (torch refuses to unpickle it: UnpicklingError: "),
    ],
)
def test_a_damaged_trainer_state_or_a_refused_pickle_is_passed_over_by_name(tmp_path, caplog, damage, reason):
    """Trainer stopped on an invalid trainer_state.json with a JSONDecodeError naming no file, took an edited
    global_step 999999 for a finished run (exit 0, no training, no warning), and raised a raw UnpicklingError for
    a rng_state.pth holding code: each checkpoint is now passed over by name, as a truncated file is."""
    import torch

    run = tmp_path / "run"
    previous = _checkpoint(run, 2)
    states = {
        "not JSON": '{"global_step": 4,\n',
        "step past the end": '{"global_step": 999999, "max_steps": 4, "log_history": []}',
        "step of another checkpoint": '{"global_step": 3, "max_steps": 4, "log_history": []}',
    }
    last = _checkpoint(run, 4, states.get(damage))
    marker = tmp_path / "code-ran"
    if damage == "code in rng_state.pth":
        torch.save({"python": _RunsCode(marker)}, last / "rng_state.pth")
    with caplog.at_level(logging.WARNING, logger="ser_hf"):
        assert RunDir(run).last_complete_checkpoint() == str(previous)
    assert not marker.exists()
    (warning,) = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warning.startswith(f"Ignoring {last}: {last}/{reason}"), warning
    assert warning.endswith(f"; resuming from the previous complete checkpoint, {previous}.")
