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
    json_args = ["--json", str(output), "--threads", "1"] if script != "prepare" else []
    monkeypatch.setattr(sys, "argv", [f"bench.{script}", "--smoke", *json_args, *args])
    module.main()
    return json.loads(output.read_text()) if json_args else None


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """The scripts' --threads sets torch's process-wide thread count: the session gets its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_prepare_compares_the_cache_with_a_librosa_loop(monkeypatch, tmp_path, capsys):
    run_bench("prepare", monkeypatch, tmp_path)
    out = capsys.readouterr().out
    assert "naive librosa.load loop" in out and "x naive" in out


def test_train_step_compares_both_loops_on_the_same_clips(monkeypatch, tmp_path):
    report = run_bench("train_step", monkeypatch, tmp_path, "--models", "ssl", "crnn")
    assert [r["model"] for r in report["results"]] == ["wav2vec2 (tiny)", "crnn"]
    for result in report["results"]:
        straightforward, ser_hf = result["straightforward"], result["ser-hf"]
        assert straightforward["clips_per_second"] > 0 and ser_hf["clips_per_second"] > 0
        # Padding every clip to the longest training clip wastes more than padding each batch to its own longest.
        assert ser_hf["padded_fraction"] < straightforward["padded_fraction"]
        assert result["speedup"] == pytest.approx(ser_hf["clips_per_second"] / straightforward["clips_per_second"])


def test_fast_mode_trains_the_head_on_cached_states(monkeypatch, tmp_path):
    report = run_bench("fast_mode", monkeypatch, tmp_path)
    assert report["per_epoch"]["FAST"] < report["per_epoch"]["recompute"]
    assert set(report["metrics"]) == {"recompute", "FAST"}


def test_inference_batched_gives_the_scores_of_one_call_per_file(monkeypatch, tmp_path):
    report = run_bench("inference", monkeypatch, tmp_path, "--no-cli")
    (result,) = report["results"]
    assert result["largest_difference"] < 1e-4 and result["same_top_label"] == result["clips"]
    assert set(result["rates"]) == {
        "one call per file",
        "one call per decoded clip",
        "batched",
        "batched, onnxruntime",
        "forward, torch",
        "forward, onnxruntime",
    }
    # onnxruntime against torch on the same model and clips: the export passed its parity check, and the pipeline
    # on the exported folder gives the torch pipeline's scores.
    onnx = result["onnx"]
    assert onnx["parity"]["argmax_identical"] and onnx["largest_difference"] < 1e-4
    assert onnx["same_top_label"] == result["clips"]
    assert onnx["batched_ratio"] == pytest.approx(result["rates"]["batched, onnxruntime"] / result["rates"]["batched"])


def test_models_accounts_lora_and_checkpointing_memory(monkeypatch, tmp_path):
    report = run_bench("models", monkeypatch, tmp_path)
    totals = report["accounted_totals_mib"]
    assert totals["lora + checkpointing"][1] < totals["lora"][1]
    assert totals["fast (cached)"][1] < totals["full"][1]


def test_train_step_fast_mode_on_fixed_length_clips_reports_equal_losses(monkeypatch, tmp_path):
    report = run_bench("train_step", monkeypatch, tmp_path, "--models", "ssl", "--ssl-mode", "fast", "--seconds", "3")
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


def test_scale_times_every_stage_at_each_size(monkeypatch, tmp_path):
    report = run_bench("scale", monkeypatch, tmp_path, "--work-dir", str(tmp_path / "work"), "--precisions", "float32")
    assert [result["clips"] for result in report["results"]] == [20, 40]
    for result in report["results"]:
        assert list(result["stages"]) == [
            "load",
            "decode",
            "split",
            "audit",
            "feature_cache",
            "fast_cache",
            "train",
            "evaluate",
        ]
        assert all(stage["seconds"] >= 0 and stage["peak_rss_bytes"] > 0 for stage in result["stages"].values())
        assert result["stages"]["load"]["clips"] == result["clips"]
        # float32 waveforms at 16 kHz: 16,000 x 4 bytes a second, 230.4 MB an hour, and a little Arrow framing.
        assert result["cache_mb_per_hour"]["waveforms"] == pytest.approx(230.4, rel=0.02)
        assert result["time_to_first_step_cold"] > 0
    # A second run reuses the corpus it wrote.
    assert set(report["generation_seconds"]) == {"20", "40"}


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


def test_peer_finetune_scores_both_ways_of_fine_tuning_on_the_same_fold(monkeypatch, tmp_path):
    report = run_bench("peer_finetune", monkeypatch, tmp_path, "--output-dir", str(tmp_path / "runs"))
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


def test_augment_times_audiomentations_against_the_hand_written_augmentation(monkeypatch, capsys):
    module = importlib.import_module("bench.augment")
    try:
        module.handwritten_module()
    except Exception as error:  # a shallow clone or an sdist lacks the commit the hand-written code is read from
        pytest.skip(f"the hand-written augmentation's commit is not available: {error}")
    monkeypatch.setattr(sys, "argv", ["bench.augment", "--clips", "2", "--repeats", "1"])
    module.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| all five |")]
    assert len(rows) == 1 and float(rows[0].split("|")[-2]) > 0


def test_timeline_compares_segment_labels_with_whole_clip_labels(monkeypatch, tmp_path):
    report = run_bench("timeline", monkeypatch, tmp_path, "--contexts", "0", "inf", "--smoothings", "none", "mean:3s")
    assert report["clips"] == 6
    assert [(r["context_seconds"], r["smoothing"]) for r in report["results"]] == [
        (0.0, "none"),
        (0.0, "mean:3s"),
        (float("inf"), "none"),
        (float("inf"), "mean:3s"),
    ]
    for result in report["results"]:
        assert 0 < result["clips_found"] <= 6 and result["segments"] >= result["clips_found"]
        for key in ("agreement_with_whole_clip", "agreement_with_truth"):
            assert 0 <= result[key] <= 1


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
    arguments += ["--label-speakers", "01,02", "--labels", "neutral,happy,sad,angry", "--results", str(output)]
    assert evaluate_passes.main([*arguments, "--threads", "1"]) == 0
    result = json.loads(output.read_text())
    timing = result["timing"]
    assert timing["figures_one_pass"] == timing["figures_two_passes"] and timing["largest_score_difference"] < 1e-4
    every, scored = result["statistics"]["from_every_readable_clip"], result["statistics"]["from_scored_clips_only"]
    assert every["clips"] == scored["clips"] == scored["statistics_clips"]["clips"]
    assert every["statistics_clips"]["clips"] > every["clips"] and set(every["statistics_clips"]["other_labels"]) == {
        "calm",
        "fearful",
        "disgust",
        "surprised",
    }
    assert result["command"].startswith("OMP_NUM_THREADS=1 python") and result["machine"] and result["commit"]
