"""The benchmarks' smoke paths: every script in bench/ runs end to end on a few real clips with tiny models (one step,
one run), so that none of them rots. They measure nothing worth reading; what they check is that each still compares
ser-hf's way with the straightforward one and reports the figures the full runs report."""

from __future__ import annotations

import importlib
import itertools
import json
import sys

import numpy as np
import pytest
import torch

from ser_hf.errors import RecipeError
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def run_bench(script: str, monkeypatch, tmp_path, *args: str) -> dict | None:
    module = importlib.import_module(f"bench.{script}")
    output = tmp_path / f"{script}.json"
    json_args = ["--json", str(output), "--threads", "1"] if script != "prepare" else []
    monkeypatch.setattr(sys, "argv", [f"bench/{script}.py", "--smoke", *json_args, *args])
    module.main()
    return json.loads(output.read_text()) if json_args else None


@pytest.fixture(autouse=True)
def _repository_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


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
    monkeypatch.setattr(sys, "argv", ["bench/augment.py", "--clips", "2", "--repeats", "1"])
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


def test_self_training_choice_scores_each_candidate_on_every_pair_and_rejects_bad_ones():
    from bench.self_training_choice import pair_scores, parse_candidate, self_trained_ua

    assert parse_candidate("0.3:2") == (0.3, 2)
    for bad in ("0.3", "0:1", "0.5:-1", "x:1"):
        with pytest.raises(RecipeError, match="--candidates"):
            parse_candidate(bad)
    # Corpus b's classes sit where a's are, shifted along the class axis: a probe trained on a alone is fooled by the
    # shift on some of b's clips, and one round on b's surest picks learns b's own centres.
    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(3), 60)
    centres = 3 * np.eye(3)
    a = rng.normal(size=(180, 3)) + centres[labels]
    b = rng.normal(size=(180, 3)) + centres[labels] + np.array([2.5, 0.0, 0.0])
    plain = self_trained_ua(a, labels, b, labels, 0.5, rounds=0)
    assert self_trained_ua(a, labels, b, labels, 0.5, rounds=2) > plain + 5  # 92.2 against 86.1
    corpora = np.repeat(["a", "b"], 180)
    scores = pair_scores(np.concatenate([a, b]), np.tile(labels, 2), corpora, {"0.5:0": (0.5, 0), "0.5:1": (0.5, 1)})
    assert set(scores) == {"0.5:0", "0.5:1"} and set(scores["0.5:0"]) == {"a>b", "b>a"}
    assert scores["0.5:0"]["a>b"] == plain


def test_layer_transfer_chooses_the_layers_that_carry_over_without_reading_the_left_out_corpus():
    from bench.layer_transfer import choices, pair_scores, parse_layers

    assert parse_layers("1-3") == [1, 2, 3] and parse_layers("0,4") == [0, 4]
    # Layer 1 carries the label the same way in every corpus; layer 0 in a way of each corpus' own (its classes
    # permuted per corpus), so a probe on it fails on any other corpus; layer 2 is noise.
    rng = np.random.default_rng(0)
    corpora = np.repeat(["a", "b", "c"], 90)
    labels = np.tile(np.arange(3), 90)
    permutation = {"a": [0, 1, 2], "b": [1, 2, 0], "c": [2, 0, 1]}
    states = rng.normal(size=(270, 3, 4))
    centres = 3 * np.eye(3, 4)
    states[:, 1] += centres[labels]
    states[:, 0] += 2 * centres[[permutation[corpus][label] for corpus, label in zip(corpora, labels)]]
    scores = pair_scores(states, labels, corpora, {"0-2": [0, 1, 2], "0": [0], "1": [1]}, "global")
    assert set(scores["1"]) == {"a>b", "a>c", "b>a", "b>c", "c>a", "c>b"}
    assert min(scores["1"].values()) > 90 and max(scores["0"].values()) < 50
    assert {choice["layers"] for choice in choices(scores, ["a", "b", "c"]).values()} == {"1"}

    # The choice for a left-out corpus reads only the pairs of the others.
    made_up = {
        "x": {"a>b": 50, "b>a": 50, "a>c": 90, "c>a": 90, "b>c": 90, "c>b": 90},
        "y": dict.fromkeys(scores["1"], 60),
    }
    chosen = choices(made_up, ["a", "b", "c"])
    assert chosen["c"]["layers"] == "y" and chosen["c"]["pairs"] == ["a>b", "b>a"]
    assert chosen["a"]["layers"] == "x" and chosen["general"]["layers"] == "x"


def test_layer_transfer_standardises_as_each_normalisation_does():
    from bench.layer_transfer import standardised

    rng = np.random.default_rng(0)
    corpora = np.repeat(["a", "b"], 50)
    features = rng.normal(size=(100, 3)) + np.where(corpora == "a", 5.0, -5.0)[:, None]
    assert standardised(features, corpora, "none", "a") is features
    by_corpus = standardised(features, corpora, "corpus", "a")
    for name in ("a", "b"):
        np.testing.assert_allclose(by_corpus[corpora == name].mean(0), 0, atol=1e-9)
        np.testing.assert_allclose(by_corpus[corpora == name].std(0), 1, atol=1e-4)
    by_training = standardised(features, corpora, "global", "a")
    np.testing.assert_allclose(by_training[corpora == "a"].mean(0), 0, atol=1e-9)
    assert (by_training[corpora == "b"].mean(0) < -5).all()  # the other corpus keeps its offset, scaled


def test_statistics_transfer_finds_pseudo_speakers_where_speakers_differ_more_than_emotions():
    from bench.statistics_transfer import candidate_scores, label_free_choices, markdown, parse_candidate

    assert parse_candidate("clusters:4") == ("clusters", 4) and parse_candidate("whitened") == ("whitened", 0)
    assert parse_candidate("speaker_space:8") == ("speaker_space", 8)
    for bad in ("clusters", "clusters:1", "clusters:x", "speaker:2", "utterance", "speaker_space"):
        with pytest.raises(RecipeError, match="--candidates"):
            parse_candidate(bad)
    # Two corpora of two speakers each. Layer 1 carries the emotion (3 classes); every speaker shifts it along an axis
    # of their own (corpus a's speakers along emotion 0's, b's along emotion 1's), and layer 0 carries little but who
    # is speaking. Corpus statistics leave the speakers' shifts in, which a probe trained on a reads wrongly on b;
    # each speaker's own statistics take them out, and so do clusters of layer 0, which find the speakers.
    rng = np.random.default_rng(0)
    clips = 240
    corpora = np.repeat(["a", "b"], clips)
    speakers = np.tile(np.repeat(["1", "2"], clips // 2), 2)
    labels = np.tile(np.arange(3), 2 * clips // 3)
    states = rng.normal(scale=0.5, size=(2 * clips, 2, 8))
    states[:, 1, :3] += 3 * np.eye(3)[labels]
    sign = np.where(speakers == "1", 1.0, -1.0)
    axis = np.where(corpora == "a", 0, 1)
    states[np.arange(2 * clips), 1, axis] += 3 * sign
    states[:, 0, 3] += 5 * sign
    columns = {"encoder_states": states, "label": labels, "corpus": corpora, "speaker_id": speakers}
    specs = ("corpus", "speaker", "clusters:2", "whitened", "speaker_space:2")
    candidates = {spec: parse_candidate(spec) for spec in specs}
    scores, agreement = candidate_scores(columns, candidates, cluster_layers=[0])
    assert set(scores) == set(candidates) and set(scores["corpus"]) == {"a>b", "b>a"}
    assert set(agreement) == {"clusters:2", "speaker_space:2"}  # the cluster candidates only
    # The speaker space of each corpus is learnt on the other's speakers, who differ along the same axis of layer 0.
    for name, corpus in itertools.product(("clusters:2", "speaker_space:2"), ("a", "b")):
        assert agreement[name][corpus]["speakers"] > 0.9
        assert abs(agreement[name][corpus]["emotions"]) < 0.1
    for pair in ("a>b", "b>a"):
        assert scores["speaker"][pair] > scores["corpus"][pair] + 10
        assert scores["clusters:2"][pair] == pytest.approx(scores["speaker"][pair], abs=2)
        assert scores["speaker_space:2"][pair] == pytest.approx(scores["speaker"][pair], abs=2)
    # The speakers' statistics are the yardstick, never the choice, even where they score best.
    chosen = label_free_choices(scores, candidates, ["a", "b"])
    assert chosen["general"]["statistics"] == "clusters:2"
    with pytest.raises(RecipeError, match="besides speaker"):
        label_free_choices({"speaker": scores["speaker"]}, candidates, ["a", "b"])
    table = markdown(scores, agreement, chosen)
    assert "| clusters: adjusted Rand index with the speakers / the emotions | a | b |" in table
    assert "| clusters:2 | 1.00 / " in table and "| general | clusters:2 |" in table


def test_group_statistics_classifies_every_test_clip_in_groups_of_each_size(tmp_path, tiny_crnn_folder, tiny_ravdess):
    import shutil

    from bench import group_statistics

    model = tmp_path / "fold"
    shutil.copytree(tiny_crnn_folder, model)
    files = sorted(tiny_ravdess.glob("Actor_0[34]/*.flac"))
    labels = ["angry", "sad"]
    clips = [
        {"path": str(path), "speaker_id": path.parent.name[-2:], "label": labels[index % 2]}
        for index, path in enumerate(files)
    ]
    (model / "metrics.json").write_text(json.dumps({"evaluation": {"test": {"clip_predictions": clips}}}))
    groups = group_statistics.groups_of(
        {clip["path"]: clip["speaker_id"] for clip in clips}, 2, np.random.default_rng(0)
    )
    assert len(set(groups.values())) == sum(
        (len(list(tiny_ravdess.glob(f"Actor_{a}/*.flac"))) + 1) // 2 for a in ("03", "04")
    )
    output = tmp_path / "groups.json"
    results = group_statistics.main([str(model), "--sizes", "1", "2", "--threads", "1", "--json", str(output)])
    assert list(results) == ["training", "1", "2", "whole"] and json.loads(output.read_text())["2"] == results["2"]
    # The tiny CRNN standardises no group: the groups only label the clips, so every size scores alike.
    assert len({row["unweighted_accuracy"] for row in results.values()}) == 1


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
