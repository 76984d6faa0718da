"""The experiment commands end to end on real RAVDESS clips with a tiny CNN2D: sweeps (with resume, random draws, a
recipe's sweep: section and errors before any run), compare (mean ± std of k-fold runs), the leakage study (matched
split sizes, both audits, the inflation) and embeddings (a datasets column of the classifier's input, a 2-D map)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from datasets import ClassLabel, Dataset, load_from_disk

from ser_hf import load_corpus, speaker_split
from ser_hf.cli import main as cli_main
from ser_hf.data.audit import audit_leakage
from ser_hf.data.dataset_info import column_values
from ser_hf.data.splits import random_split
from ser_hf.experiments.leakage import matched_random_fractions, matched_random_split
from ser_hf.experiments.sweep import run_sweep
from ser_hf.recipe.parser import parse_recipe
from tests.conftest import RAVDESS_SAMPLE

EMOTIONS = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry"}
PNG = b"\x89PNG"


def _link_corpus(root: Path) -> Path:
    """One clip per emotion of four actors (RAVDESS names, links into the shipped sample): 16 clips, 4 per emotion."""
    for actor in ("01", "02", "03", "04"):
        folder = root / f"Actor_{actor}"
        folder.mkdir(parents=True)
        for emotion in EMOTIONS:
            name = f"03-01-{emotion}-01-01-01-{actor}.flac"
            (folder / name).symlink_to(RAVDESS_SAMPLE / f"Actor_{actor}" / name)
    return root


def tiny_recipe(path: Path, data_dir: Path, **values) -> Path:
    """A recipe of a tiny CNN2D trained for two steps, evaluated once at the end (actors 01-02 train, 03 validates,
    04 tests)."""
    recipe = {
        "model_type": "cnn2d",
        "model_config": {"conv_channels": [4, 8]},
        "corpus": "ravdess",
        "data_dir": str(data_dir),
        "labels": list(EMOTIONS.values()),
        "split_protocol": "speaker",
        "train_speakers": ["01", "02"],
        "validation_speakers": ["03"],
        "test_speakers": ["04"],
        "max_duration_seconds": 1.0,
        "preprocessing_num_workers": 1,
        "output_dir": str(path.parent / "run"),
        "max_steps": 2,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "learning_rate": 1.0e-2,
        "eval_strategy": "no",
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "logging_steps": 1,
        "use_cpu": True,
        "seed": 7,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "report_to": "none",
    }
    recipe.update(values)
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return _link_corpus(tmp_path_factory.mktemp("corpus") / "ravdess")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, corpus):
    """A two-point learning-rate sweep trained once for the module's tests (with the datasets cache kept out of the
    user's home, as the autouse fixture does for function-scoped tests)."""
    root = tmp_path_factory.mktemp("experiments")
    recipe = tiny_recipe(root / "sweep.yaml", corpus, output_dir=str(root / "sweep"))
    with pytest.MonkeyPatch.context() as patch:
        import datasets.config

        patch.setenv("HF_DATASETS_CACHE", str(root / "hf_cache"))
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", root / "hf_cache")
        assert cli_main(["sweep", str(recipe), "--grid", "learning_rate=1.0e-3,5.0e-2"]) == 0
    return {"root": root, "recipe": recipe, "sweep": root / "sweep"}


# --- Sweep --------------------------------------------------------------------------------------------------------


def test_sweep_trains_every_point_in_its_own_run_directory_and_ranks_them(workspace):
    sweep = workspace["sweep"]
    points = sorted(path for path in sweep.iterdir() if path.is_dir())
    assert [path.name for path in points] == ["learning_rate=0.001", "learning_rate=0.05"]
    for point, learning_rate in zip(points, (1.0e-3, 5.0e-2)):
        # Each point is a normal run directory whose recipe reproduces it.
        _, _, _, training_args = parse_recipe([str(point / "recipe.yaml")])
        assert training_args.learning_rate == learning_rate and training_args.output_dir == str(point)
        report = json.loads((point / "metrics.json").read_text())
        assert report["training"]["global_step"] == 2 and (point / "model.safetensors").is_file()
        assert json.loads((point / "sweep_point.json").read_text())["values"] == {"learning_rate": learning_rate}

    table = pd.read_csv(sweep / "sweep.csv")
    assert sorted(table["learning_rate"]) == [1.0e-3, 5.0e-2] and (table["status"] == "finished").all()
    ranking = table["validation_unweighted_accuracy"].tolist()
    assert ranking == sorted(ranking, reverse=True)  # best first, by the validation metric
    for row in table.to_dict("records"):
        report = json.loads((sweep / row["point"] / "metrics.json").read_text())
        assert row["validation_unweighted_accuracy"] == pytest.approx(
            report["evaluation"]["validation"]["unweighted_accuracy"]
        )
        assert row["test_macro_f1"] == pytest.approx(report["evaluation"]["test"]["macro_f1"])
    assert "ranked by validation UA" in (sweep / "sweep.md").read_text()
    assert (sweep / "sweep.png").read_bytes()[:4] == PNG


def test_sweep_resumes_without_training_finished_points_again(workspace, monkeypatch, capsys):
    import ser_hf.experiments.sweep

    sweep = workspace["sweep"]
    finished = {path.name: (path / "metrics.json").stat().st_mtime_ns for path in sweep.iterdir() if path.is_dir()}
    trained = []
    run_parsed_recipe = ser_hf.experiments.sweep.run_parsed_recipe  # the sequence ser_hf.train runs a recipe with
    monkeypatch.setattr(
        ser_hf.experiments.sweep,
        "run_parsed_recipe",
        lambda recipe: trained.append((recipe.path, recipe.training.learning_rate)) or run_parsed_recipe(recipe),
    )

    assert cli_main(["sweep", str(workspace["recipe"]), "--grid", "learning_rate=1.0e-3,5.0e-2,2.0e-2"]) == 0
    assert trained == [(str(sweep / "learning_rate=0.02" / "recipe.yaml"), 0.02)]  # only the new point trained
    for name, stamp in finished.items():
        assert (sweep / name / "metrics.json").stat().st_mtime_ns == stamp
    assert len(pd.read_csv(sweep / "sweep.csv")) == 3

    # A finished point is reused only for the very recipe it trained with.
    capsys.readouterr()
    assert cli_main(["sweep", str(workspace["recipe"]), "--grid", "learning_rate=1.0e-3", "--max_steps", "3"]) == 2
    assert "learning_rate=0.001 was trained with other values of max_steps" in capsys.readouterr().err
    assert len(trained) == 1


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--grid", "lerning_rate=1.0e-3,2.0e-3"], r"'lerning_rate' \(did you mean 'learning_rate'\?\)"),
        (["--grid", "model_config.conv_chanels=[4],[8]"], r"'conv_chanels' \(did you mean 'conv_channels'\?\)"),
        (["--grid", "split_protocol=speaker,sideways"], r"split_protocol: 'sideways' is not one of"),
        (["--grid", "learning_rate=1.0e-3,2.0e-3", "--learning_rate", "1.0e-2"], "also set on the command line"),
        (["--grid", "output_dir=a,b"], "output_dir cannot be swept"),
        (["--grid", "learning_rate"], "is not of the form KEY=V1,V2"),
        (["--grid", "learning_rate=1.0e-3", "--metric", "accuracy_x"], "metric 'accuracy_x' is not one of"),
        (["--grid", "learning_rate=1.0e-3", "--num_train_epoch", "3"], r"'num_train_epoch' \(did you mean"),
    ],
)
def test_sweep_errors_name_the_key_before_any_run(tmp_path, corpus, capsys, arguments, message):
    recipe = tiny_recipe(tmp_path / "r.yaml", corpus, output_dir=str(tmp_path / "sweep"))
    assert cli_main(["sweep", str(recipe), *arguments]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "sweep").exists()


def test_random_points_and_a_recipes_sweep_section(tmp_path, corpus, capsys):
    recipe = tiny_recipe(
        tmp_path / "r.yaml",
        corpus,
        output_dir=str(tmp_path / "sweep"),
        sweep={"grid": {"learning_rate": [1.0e-3, 2.0e-3, 3.0e-3], "num_time_masks": [0, 1]}, "random": 3, "seed": 1},
    )
    _, spec, points = run_sweep(recipe, dry_run=True)
    drawn = [point.values for point in points]
    assert spec.random == 3 and len(drawn) == 3 and len({json.dumps(v) for v in drawn}) == 3
    grid = [{"learning_rate": lr, "num_time_masks": m} for lr in (1.0e-3, 2.0e-3, 3.0e-3) for m in (0, 1)]
    assert all(values in grid for values in drawn)
    assert [p.values for p in run_sweep(recipe, dry_run=True)[2]] == drawn  # the draw is seeded
    assert [p.values for p in run_sweep(recipe, {"seed": 5}, dry_run=True)[2]] != drawn

    # A --grid key replaces the section's values for that key; --random on the command line wins too.
    _, _, points = run_sweep(recipe, {"grid_options": ["num_time_masks=2"], "random_points": 10}, dry_run=True)
    assert [p.values for p in points] == [
        {"learning_rate": lr, "num_time_masks": 2} for lr in (1.0e-3, 2.0e-3, 3.0e-3)
    ]
    assert cli_main(["sweep", str(recipe), "--dry-run"]) == 0
    assert "learning_rate=0.001__num_time_masks=" in capsys.readouterr().out
    assert not (tmp_path / "sweep").exists()

    # python -m ser_hf.train refuses the sweep: section, so a sweep recipe is not trained by mistake as a plain one.
    with pytest.raises(ValueError, match="'sweep'"):
        parse_recipe([str(recipe)])


def test_optuna_backend_without_optuna_is_a_clear_error(tmp_path, corpus, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError, installed or not
    recipe = tiny_recipe(tmp_path / "r.yaml", corpus, output_dir=str(tmp_path / "sweep"))
    assert cli_main(["sweep", str(recipe), "--grid", "learning_rate=1.0e-3,2.0e-3", "--backend", "optuna"]) == 2
    assert "backend optuna needs optuna, which is not installed: pip install optuna" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()


# --- Compare ------------------------------------------------------------------------------------------------------


def test_compare_reports_mean_and_std_over_folds_and_single_runs(tmp_path, corpus, workspace, capsys):
    from ser_hf.train import main as train_main

    kfold = tiny_recipe(
        tmp_path / "kfold.yaml",
        corpus,
        output_dir=str(tmp_path / "kfold"),
        split_protocol="kfold",
        num_folds=2,
        validation_size=0.0,
        train_speakers=None,
        validation_speakers=None,
        test_speakers=None,
    )
    folds = train_main([str(kfold)])
    single = workspace["sweep"] / "learning_rate=0.001"
    output = tmp_path / "comparison"
    assert (
        cli_main(
            ["compare", str(tmp_path / "kfold"), str(single), "--names", "kfold,single", "--output-dir", str(output)]
        )
        == 0
    )
    assert "| kfold | cnn2d | kfold | 2 |" in capsys.readouterr().out

    table = pd.read_csv(output / "comparison.csv").set_index("run")
    for metric in ("unweighted_accuracy", "accuracy", "macro_f1"):
        values = [report.evaluation["test"].metric(metric) for report in folds]
        assert table.loc["kfold", metric] == pytest.approx(np.mean(values))
        assert table.loc["kfold", f"{metric}_std"] == pytest.approx(np.std(values, ddof=1))
        single_report = json.loads((single / "metrics.json").read_text())
        assert table.loc["single", metric] == pytest.approx(single_report["evaluation"]["test"][metric])
        assert pd.isna(table.loc["single", f"{metric}_std"])
    assert table.loc["kfold", "folds"] == 2 and table.loc["single", "protocol"] == "speaker"
    assert table.loc["kfold", "trainable_parameters"] == folds[0].training.parameters["trainable"]
    assert table.loc["kfold", "train_seconds"] == pytest.approx(sum(r.training.wall_seconds for r in folds))
    ua = [100 * r.evaluation["test"].unweighted_accuracy for r in folds]
    assert f"{np.mean(ua):.1f} ± {np.std(ua, ddof=1):.1f}" in (output / "comparison.md").read_text()
    assert (output / "comparison.png").read_bytes()[:4] == PNG
    assert "| single | n/a: the runs evaluated different clips" in (output / "comparison.md").read_text()


def test_compare_pairs_runs_evaluated_on_the_same_clips(tmp_path, workspace):
    from scipy.stats import binomtest

    first, second = workspace["sweep"] / "learning_rate=0.001", workspace["sweep"] / "learning_rate=0.05"
    assert cli_main(["compare", str(first), str(second), "--output-dir", str(tmp_path / "out")]) == 0
    markdown = (tmp_path / "out" / "comparison.md").read_text()
    assert "## Paired against learning_rate=0.001, on the same clips" in markdown

    reports = [json.loads((run / "metrics.json").read_text())["evaluation"]["test"] for run in (first, second)]
    clips = [{clip["path"]: clip for clip in report["clip_predictions"]} for report in reports]
    assert set(clips[0]) == set(clips[1]) and len(clips[0]) == reports[0]["clips"]
    right = [{path for path, clip in run.items() if clip["label"] == clip["prediction"]} for run in clips]
    only_first, only_second = len(right[0] - right[1]), len(right[1] - right[0])
    p_value = binomtest(only_first, only_first + only_second, 0.5).pvalue if only_first + only_second else 1.0
    difference = 100 * (reports[1]["unweighted_accuracy"] - reports[0]["unweighted_accuracy"])
    paired = markdown.split("## Paired against")[1]
    row = next(line for line in paired.splitlines() if line.startswith("| learning_rate=0.05 | "))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == f"{difference:+.1f}" and cells[3] == f"{p_value:.3g}"
    assert cells[4] == str(len(clips[0]))
    # The tiny corpus has fewer than 5 test speakers: no interval is printed as if it could be trusted.
    assert cells[2] == "n/a (too few speakers)"
    speakers = len({clip["speaker_id"] for clip in clips[0].values()})
    assert cells[5] == str(speakers) and speakers < 5
    assert f"n/a ({speakers} speaker{'s' if speakers > 1 else ''}: too few for an interval)" in markdown


def test_compare_errors_name_the_run(tmp_path, workspace, capsys):
    assert cli_main(["compare", str(tmp_path / "missing")]) == 2
    assert f"Run directory {tmp_path / 'missing'} does not exist" in capsys.readouterr().err
    (tmp_path / "unfinished").mkdir()
    assert cli_main(["compare", str(tmp_path / "unfinished")]) == 2
    assert "holds no finished ser-hf run" in capsys.readouterr().err
    assert cli_main(["compare", str(workspace["sweep"] / "learning_rate=0.001"), "--split", "dev"]) == 2
    assert "has no 'dev' evaluation (it evaluated test, validation)" in capsys.readouterr().err


# --- Leakage study ------------------------------------------------------------------------------------------------


def _dataset(sizes: dict[str, int]) -> Dataset:
    total = sum(sizes.values())
    return Dataset.from_dict(
        {
            "label": [i % 2 for i in range(total)],
            "speaker_id": [str(i % 5) for i in range(total)],
            "path": [f"clip{i}.wav" for i in range(total)],
        }
    ).cast_column("label", ClassLabel(names=["a", "b"]))


@pytest.mark.parametrize(
    "sizes",
    [
        {"train": 16, "validation": 8, "test": 8},
        {"train": 960, "validation": 240, "test": 240},
        {"train": 11, "validation": 3, "test": 7},
        {"train": 97, "test": 13},
    ],
)
def test_random_split_fractions_give_the_speaker_splits_exact_sizes(sizes):
    test_size, validation_size = matched_random_fractions(sizes)
    splits = random_split(_dataset(sizes), test_size=test_size, validation_size=validation_size, seed=3)
    assert {name: len(split) for name, split in splits.items()} == sizes


def test_matched_random_split_draws_the_same_clips_with_the_same_sizes_and_leaks(corpus):
    dataset = load_corpus("ravdess", corpus, labels=list(EMOTIONS.values()))
    # Actor 02 is in no split: the random split must leave its clips out too.
    speaker = speaker_split(dataset, train_speakers=["01"], validation_speakers=["03"], test_speakers=["04"])
    leaky = matched_random_split(dataset, speaker, seed=0)
    assert {k: len(v) for k, v in leaky.items()} == {k: len(v) for k, v in speaker.items()}
    paths = lambda splits: sorted(p for split in splits.values() for p in column_values(split, "path"))  # noqa: E731
    assert paths(leaky) == paths(speaker)
    assert "02" not in {s for split in leaky.values() for s in column_values(split, "speaker_id")}
    audit = audit_leakage(leaky, raise_on_leakage=False)
    assert audit.protocol == "random" and not audit.speaker_independent and audit.speaker_overlap["train/test"]

    # Without a test split (RAVDESS actors 01-16 / 17-20 where 21-24 are missing) the random split holds out a
    # validation split of the same size.
    speaker = speaker_split(dataset, train_speakers=["01", "02"], validation_speakers=["03"], test_speakers=[])
    leaky = matched_random_split(dataset, speaker, seed=0)
    assert {k: len(v) for k, v in leaky.items()} == {"train": 8, "validation": 4}
    assert paths(leaky) == paths(speaker)
    assert audit_leakage(leaky, raise_on_leakage=False).speaker_overlap["train/validation"]


def test_leakage_study_trains_both_protocols_and_reports_the_inflation(tmp_path, corpus, capsys):
    recipe = tiny_recipe(tmp_path / "r.yaml", corpus)
    study_dir = tmp_path / "study"
    assert cli_main(["leakage-study", str(recipe), "--output_dir", str(study_dir)]) == 0
    assert "UA:" in capsys.readouterr().out
    study = json.loads((study_dir / "leakage.json").read_text())
    sizes = {"train": 8, "validation": 4, "test": 4}
    assert study["split_sizes"] == {"speaker_independent": sizes, "random": sizes}

    speaker_audit, random_audit = study["audits"]["speaker_independent"], study["audits"]["random"]
    assert speaker_audit["passed"] and speaker_audit["speaker_independent"]
    assert random_audit["protocol"] == "random" and not random_audit["speaker_independent"]
    assert random_audit["speaker_overlap"]["train/test"]  # the audit finds the leak

    reports = {
        run: json.loads((study_dir / run / "metrics.json").read_text()) for run in ("speaker_independent", "random")
    }
    assert reports["speaker_independent"]["protocol"] == "speaker" and reports["random"]["protocol"] == "random"
    assert reports["random"]["leakage_audit"]["speaker_overlap"] == random_audit["speaker_overlap"]
    for split in ("test", "validation"):
        for metric, row in study["inflation"][split].items():
            fair = reports["speaker_independent"]["evaluation"][split][metric]
            leaky = reports["random"]["evaluation"][split][metric]
            assert (row["speaker_independent"], row["random"]) == (pytest.approx(fair), pytest.approx(leaky))
            assert row["difference"] == pytest.approx(leaky - fair)
    markdown = (study_dir / "leakage.md").read_text()
    assert "| UA |" in markdown and markdown.count("## Leakage audit") == 2
    # Each run's intervals come with the tables; the tiny corpus's test split has too few speakers for one.
    speakers = study["intervals"]["random"]["test"]["speakers"]
    assert speakers == len({c["speaker_id"] for c in reports["random"]["evaluation"]["test"]["clip_predictions"]})
    assert f"Random split: 95 % confidence intervals: no speaker interval, {speakers} speaker" in markdown
    # Each run's recipe.yaml runs again as it ran: the random one with its protocol and the shares the study drew.
    _, fair_data, _, _ = parse_recipe([str(study_dir / "speaker_independent" / "recipe.yaml")])
    _, random_data, _, random_training = parse_recipe([str(study_dir / "random" / "recipe.yaml")])
    assert fair_data.split_protocol == "speaker" and random_data.split_protocol == "random"
    assert random_data.train_speakers is None and random_data.test_speakers is None
    ran = json.loads((study_dir / "random" / "run_config.json").read_text())["data"]
    assert (random_data.test_size, random_data.validation_size) == (ran["test_size"], ran["validation_size"])
    assert 0 < random_data.test_size < 1 and random_training.output_dir == str(study_dir / "random")
    assert (study_dir / "leakage.png").read_bytes()[:4] == PNG


def test_leakage_study_needs_a_speaker_protocol(tmp_path, corpus, capsys):
    recipe = tiny_recipe(
        tmp_path / "r.yaml",
        corpus,
        split_protocol="kfold",
        num_folds=2,
        train_speakers=None,
        validation_speakers=None,
        test_speakers=None,
    )
    assert cli_main(["leakage-study", str(recipe)]) == 2
    assert "split_protocol 'kfold'" in capsys.readouterr().err


# --- Embeddings ---------------------------------------------------------------------------------------------------


def test_embed_saves_the_classifier_input_as_a_datasets_column_and_plots_it(tmp_path, corpus, workspace, capsys):
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    model_dir = workspace["sweep"] / "learning_rate=0.05"
    output = tmp_path / "embed"
    assert (
        cli_main(
            [
                "embed",
                "--model",
                str(model_dir),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(corpus),
                "--labels",
                ",".join(EMOTIONS.values()),
                "--output-dir",
                str(output),
            ]
        )
        == 0
    )
    assert "the model clusters more by" in capsys.readouterr().out
    embedded = load_from_disk(str(output / "embeddings"))
    model = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    assert len(embedded) == 16 and set(column_values(embedded, "speaker_id")) == {"01", "02", "03", "04"}
    vectors = np.asarray(column_values(embedded, "embedding"), dtype=np.float32)
    assert vectors.shape == (16, model.classifier.in_features)
    assert np.asarray(column_values(embedded, "projection")).shape == (16, 2)

    # The embedding is what the classifier reads: it gives the model's logits for the clip (divided by the
    # temperature the run calibrated on its validation speakers).
    extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    from ser_hf.data.decode import decode_waveform

    clip = decode_waveform(embedded[5]["path"], 16000)
    with torch.no_grad():
        logits = model(**extractor(clip, sampling_rate=16000, return_tensors="pt")).logits[0]
        from_embedding = model.classifier(torch.from_numpy(vectors[5])) / getattr(
            model.config, "calibration_temperature", 1.0
        )
    torch.testing.assert_close(from_embedding, logits, atol=1e-4, rtol=1e-4)
    assert embedded[5]["prediction"] == model.config.id2label[int(logits.argmax())]

    result = json.loads((output / "embed.json").read_text())
    assert result["projection"] == ("umap" if _has_umap() else "tsne")
    assert set(result["silhouette"]) == {"emotion", "speaker"}
    assert Path(result["plot"]).read_bytes()[:4] == PNG

    assert (
        cli_main(
            [
                "embed",
                "--model",
                str(model_dir),
                "--corpus",
                "ravdess",
                "--data-dir",
                str(corpus),
                "--speakers",
                "03,09",
                "--output-dir",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "--speakers ['09'] are not speakers of the corpus" in capsys.readouterr().err


def _has_umap() -> bool:
    import importlib.util

    return importlib.util.find_spec("umap") is not None
