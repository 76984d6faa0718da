"""The speed benchmarks' smoke paths: every script in bench/ runs end to end on a few real clips with tiny models
(one step, one run), so that none of them rots. They measure nothing worth reading; what they check is that each
still compares ser-hf's way with the straightforward one and reports the figures the full runs report."""

from __future__ import annotations

import importlib
import json
import sys

import pytest
import torch

pytestmark = pytest.mark.slow


def run_bench(script: str, monkeypatch, tmp_path, *args: str) -> dict | None:
    module = importlib.import_module(f"bench.{script}")
    output = tmp_path / f"{script}.json"
    monkeypatch.setattr(sys, "argv", [f"bench.{script}", "--smoke", "--json", str(output), "--threads", "1", *args])
    module.main()
    return json.loads(output.read_text())


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """The scripts' --threads sets torch's process-wide thread count: the session gets its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_train_step_compares_both_loops_on_the_same_clips(monkeypatch, tmp_path):
    report = run_bench("train_step", monkeypatch, tmp_path)
    (result,) = report["results"]
    assert result["model"] == "wav2vec2 (tiny)"
    straightforward, ser_hf = result["straightforward"], result["ser-hf"]
    assert straightforward["clips_per_second"] > 0 and ser_hf["clips_per_second"] > 0
    # Padding every clip to the longest training clip wastes more than padding each batch to its own longest.
    assert ser_hf["padded_fraction"] < straightforward["padded_fraction"]
    assert result["speedup"] == pytest.approx(ser_hf["clips_per_second"] / straightforward["clips_per_second"])


def test_inference_batched_gives_the_scores_of_one_call_per_file(monkeypatch, tmp_path):
    report = run_bench("inference", monkeypatch, tmp_path)
    (result,) = report["results"]
    assert result["largest_difference"] < 1e-4 and result["same_top_label"] == result["clips"]
    assert set(result["rates"]) == {"one call per file", "one call per decoded clip", "batched"}
    assert result["model"] == "Whisper tiny.en (10-s window, layer statistics)" and result["clips"] == 4


def test_train_step_fast_mode_on_fixed_length_clips_reports_equal_losses(monkeypatch, tmp_path):
    report = run_bench("train_step", monkeypatch, tmp_path, "--ssl-mode", "fast", "--seconds", "3")
    (result,) = report["results"]
    assert result["model"] == "wav2vec2 (tiny), FAST"
    assert result["ser-hf"]["padded_fraction"] == result["straightforward"]["padded_fraction"] == 0
    assert result["equal_final_loss"] and result["median_run_speedup"] > 0


@pytest.mark.parametrize("flags", [["--device", "cuda"], ["--gpu-utilisation"]])
def test_train_step_gpu_flags_stop_clearly_without_a_gpu(monkeypatch, tmp_path, flags):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit, match="CUDA GPU|needs --device cuda"):
        run_bench("train_step", monkeypatch, tmp_path, *flags)


def test_peer_runs_ser_hf_and_the_example_script_on_the_same_clips(monkeypatch, tmp_path):
    report = run_bench("peer", monkeypatch, tmp_path)
    serhf, peer = report["runs"]["serhf"], report["runs"]["peer"]
    assert len(serhf) == len(peer) == 1
    for run in (*serhf, *peer):
        assert run["steps"] == 2 and run["batch_size"] == 2 and run["device"] == "cpu"
        assert run["clips_per_second"] > 0 and run["peak_rss_bytes"] > 0
        assert [step for step, _ in run["losses"]] == [1, 2]
    summary = report["summary"]
    assert summary["ratio"] == pytest.approx(serhf[0]["clips_per_second"] / peer[0]["clips_per_second"])
    # Two steps from the same random encoder: both start near ln(8), eight emotions, and end at about the same loss.
    assert summary["equal_loss"]


def test_peer_fold_scores_both_ways_of_fine_tuning_on_the_same_fold(monkeypatch, tmp_path):
    report = run_bench("peer", monkeypatch, tmp_path, "--fold", "0", "--output-dir", str(tmp_path / "runs"))
    arms = report["arms"]
    assert set(arms) == {"ser-hf", "example script"} and report["epochs"] == 0.05
    for arm in arms.values():
        assert 0 <= arm["unweighted_accuracy"] <= 1 and arm["clips_per_second"] > 0 and arm["minutes"] > 0
    assert report["ratio"] == pytest.approx(
        arms["ser-hf"]["clips_per_second"] / arms["example script"]["clips_per_second"]
    )
    # The example script trained on the fold's training clips and was scored on its test clips, none shared.
    folder = tmp_path / "runs" / "audiofolder"
    train = {path.name for path in (folder / "train").rglob("*.flac")}
    test = {path.name for path in (folder / "validation").rglob("*.flac")}
    assert train and test and not train & test
    assert {name.split("-")[-1] for name in test} == {f"{s}.flac" for s in report["test_speakers"]}


def test_finetune_compares_top_layers_on_cached_states_with_the_whole_window(monkeypatch, tmp_path):
    report = run_bench("finetune", monkeypatch, tmp_path)
    assert set(report["medians"]) == {"ser-hf", "transformers"} and report["one_off_seconds"] > 0
    assert report["ratio"] == pytest.approx(report["medians"]["transformers"] / report["medians"]["ser-hf"])


def test_merged_cache_takes_the_merged_corpus_from_each_corpus_cache(monkeypatch, tmp_path):
    report = run_bench("merged_cache", monkeypatch, tmp_path)
    assert 0 < report["clips"]["merged"] < 6  # 3 clips a corpus, one label left out
    assert set(report["seconds"]) == {"anew", "from each corpus's cache"} and report["one_off_seconds"]
    assert report["ratio"] == pytest.approx(report["seconds"]["anew"] / report["seconds"]["from each corpus's cache"])
    assert report["max_abs_difference"] < 1e-4


def test_evaluate_passes_times_one_encoder_pass_against_two_on_the_same_clips(tmp_path, tiny_ravdess):
    from bench import evaluate_passes
    from tests.evaluation.test_evaluation_statistics import whisper_model

    model, feature_extractor = whisper_model("speaker", window_seconds=5)  # RAVDESS clips last 3-4 s
    model.save_pretrained(tmp_path / "model")
    feature_extractor.save_pretrained(tmp_path / "model")
    output = tmp_path / "passes.json"
    arguments = ["--model", str(tmp_path / "model"), "--data-dir", str(tiny_ravdess), "--speakers", "01"]
    arguments += ["--results", str(output)]
    assert evaluate_passes.main([*arguments, "--threads", "1"]) == 0
    result = json.loads(output.read_text())
    timing = result["timing"]
    assert timing["figures_one_pass"] == timing["figures_two_passes"] and timing["largest_score_difference"] < 1e-4
    assert timing["clips"] >= timing["figures_one_pass"]["clips"] > 0 and timing["speed_up"] > 0
    assert result["command"].startswith("OMP_NUM_THREADS=1 python") and result["machine"] and result["commit"]
