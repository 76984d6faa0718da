"""Model cards, evaluation reports, pushing to a Hub and loading back what was pushed.

The Hub is :class:`tests.hub_server.LocalHub`, a Hub-compatible HTTP server on 127.0.0.1 that the real
``huggingface_hub`` client reaches through ``HF_ENDPOINT``. Pushing and loading by repository id run in fresh
processes (``ser-hf train``/``ser-hf push``, then ``pipeline`` and ``ModelCard.load``), with the token in
``HF_TOKEN`` or in ``$HF_HOME/token``, as users have it.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results
from transformers import pipeline

from ser_hf.cli import main as cli_main
from ser_hf.data.decode import decode_waveform
from ser_hf.deploy.windows import window_bounds
from ser_hf.evaluation.metrics import SCALAR_METRICS
from ser_hf.hub.card import model_card_template_path
from ser_hf.hub.card_results import MODEL_INDEX_METRICS
from ser_hf.hub.push import HubPushError, push_reports_to_hub, push_to_hub
from ser_hf.recipe.parser import parse_recipe
from ser_hf.train import main as train_main
from tests.conftest import RAVDESS_SAMPLE, REPO, local_scores, write_cnn_recipe
from tests.conftest_models import TINY_SSL, TINY_WHISPER
from tests.hub_server import LocalHub

TOKEN = "hf_localTestToken0123456789abcdefXYZ"
USER = "ser-hf-tester"


# --- Fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub():
    with LocalHub(token=TOKEN, user=USER) as server:
        yield server


def hub_env(hub: LocalHub, home: Path, token_source: str = "env") -> dict[str, str]:
    """The environment of a fresh process that talks to the local Hub, with the token where users keep it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_TOKEN", "HUGGING_FACE_HUB"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(home),
        HF_HUB_CACHE=str(home / "hub"),
        PYTHONWARNINGS="ignore",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_ETAG_TIMEOUT="30",
    )
    home.mkdir(parents=True, exist_ok=True)
    if token_source == "env":
        env["HF_TOKEN"] = TOKEN
    elif token_source == "file":  # where `hf auth login` stores it
        (home / "token").write_text(TOKEN)
    return env


def run(args, env, cwd=REPO, timeout=600) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def run_python(code: str, env, cwd: Path = REPO) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON document last."""
    result = run([sys.executable, "-c", textwrap.dedent(code)], env, cwd=cwd)
    return json.loads(result.stdout.strip().splitlines()[-1])


def clips_of(folder: Path, actor: str, count: int = 2) -> list[str]:
    return [str(p) for p in sorted((folder / f"Actor_{actor}").glob("*.flac"))[:count]]


def assert_no_token(folder: Path, *texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
    for path in folder.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def assert_scores_equal(remote: list[dict], local: list[dict]) -> None:
    assert len(remote) == len(local)
    for r, lo in zip(remote, local):
        assert r.keys() == lo.keys()
        assert all(r[label] == pytest.approx(lo[label], abs=1e-6) for label in lo)


# --- Templates and cards ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """ser-hf laid out as its wheel installs it: the packages and package data setup.py declares (hub_cards/ becomes
    ser_hf/hub_cards/), for a fresh process to import through PYTHONPATH."""
    layout = runpy.run_path(str(REPO / "setup.py"), run_name="setup_layout")
    site = tmp_path_factory.mktemp("site")
    for package in layout["PACKAGES"]:
        source = REPO / layout["PACKAGE_DIR"].get(package, package.replace(".", "/"))
        target = site.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for pattern in ["*.py", *layout["PACKAGE_DATA"].get(package, [])]:
            for path in source.glob(pattern):
                shutil.copy(path, target / path.name)
    return site


def test_card_template_ships_as_package_data_and_is_found(wheel_site):
    """setup.py ships hub_cards/ as the package ser_hf.hub_cards (an installed wheel's copy is found through
    importlib.resources, checked in a fresh process by the baseline round trip below); from this checkout the
    renderer finds hub_cards/ itself."""
    layout = runpy.run_path(str(REPO / "setup.py"), run_name="setup_layout")
    assert layout["PACKAGE_DIR"] == {"ser_hf.hub_cards": "hub_cards"}
    assert {"ser_hf", "ser_hf.models", "ser_hf.data.corpora", "ser_hf.hub_cards"} <= set(layout["PACKAGES"])
    installed = wheel_site / "ser_hf" / "hub_cards"
    assert (installed / "__init__.py").is_file()
    assert (installed / "model_card_template.md").read_text() == model_card_template_path().read_text()
    assert model_card_template_path().resolve() == (REPO / "hub_cards" / "model_card_template.md").resolve()


def test_training_writes_a_card_with_metadata_eval_results_and_the_run_facts(cnn_run):
    card = ModelCard.load(cnn_run / "README.md")
    report = json.loads((cnn_run / "metrics.json").read_text())
    data = card.data
    assert data.pipeline_tag == "audio-classification" and data.library_name == "transformers"
    assert data.license == "cc-by-nc-sa-4.0" and data.datasets == ["ravdess"] and data.language == ["en"]
    assert {"speech-emotion-recognition", "ser-hf", "cnn2d", "ravdess", "custom_code"} <= set(data.tags)
    # One EvalResult per metric of the test split the Hub has a type for, equal to metrics.json, each type one of the
    # Hub's metric ids with a name that says which metric it is; the model-index parses back.
    results = {(r.metric_type, r.metric_config): r for r in data.eval_results}
    test = report["evaluation"]["test"]
    assert list(results) == [("recall", "macro"), ("accuracy", None), ("f1", "macro"), ("f1", "weighted")]
    assert data.metrics == ["recall", "accuracy", "f1"]
    ua = results["recall", "macro"]
    assert ua.metric_value == pytest.approx(test["unweighted_accuracy"], abs=1e-4)
    assert ua.metric_name == "Unweighted accuracy (UA, macro recall), test split"
    assert results["accuracy", None].metric_value == pytest.approx(test["accuracy"], abs=1e-4)
    assert results["accuracy", None].metric_name == "Weighted accuracy (WA, accuracy), test split"
    assert results["f1", "macro"].metric_value == pytest.approx(test["macro_f1"], abs=1e-4)
    assert results["f1", "weighted"].metric_value == pytest.approx(test["weighted_f1"], abs=1e-4)
    assert all(
        r.dataset_split == "test" and r.task_type == "audio-classification" and r.dataset_type == "ravdess"
        for r in data.eval_results
    )
    name, parsed = model_index_to_eval_results(data.to_dict()["model-index"])
    assert name == "run" and len(parsed) == len(MODEL_INDEX_METRICS)
    assert "expected_calibration_error" in SCALAR_METRICS and "| ECE |" in card.text  # in the table, not the index

    text = card.text
    for expected in (
        "`neutral`, `calm`, `happy`",
        "| test | 8 | 1 | 04 |",
        "| train | 16 | 2 | 01, 02 |",
        "Leakage audit: passed.** Speakers shared between splits: none",
        "CC BY-NC-SA 4.0",
        "| learning_rate | 0.02 |",
        "random gain (p = 0.5",
        "SpecAugment (1 time masks",
        "Trained from scratch",
        "**Architecture:** log-mel 2-D CNN",  # the registry's name of the model kind
        "## Intended use and limitations",
        "Acted speech",
        "North American English",
        "trust_remote_code=True",
        "@article{livingstone2018ravdess",
    ):
        assert expected in text, expected
    assert f"| {next(iter(test['per_class']))} | " in text  # per-class table
    parameters = report["training"]["parameters"]
    assert f"{parameters['total']:,} in all, {parameters['trainable']:,} trained" in text
    assert "![Confusion matrix, test split" in text and (cnn_run / "confusion_matrix_test.png").is_file()
    assert "(confusion_matrix_test.png)" in text

    # recipe.yaml holds what the run used (the command line's learning rate too) and trains it again.
    assert "[`recipe.yaml`](recipe.yaml)" in text
    model_args, data_args, _, training_args = parse_recipe([str(cnn_run / "recipe.yaml")])
    assert training_args.learning_rate == 2.0e-2 and training_args.max_steps == 4
    assert data_args.test_speakers == ["04"] and model_args.model_config == {"conv_channels": [4, 8]}
    assert "hub_token" not in (cnn_run / "recipe.yaml").read_text()


def test_kfold_run_card_states_mean_and_std(tmp_path, tiny_ravdess):
    recipe = write_cnn_recipe(
        tmp_path / "r.yaml",
        data_dir=[str(tiny_ravdess)],
        split_protocol="kfold",
        num_folds=2,
        validation_size=0.0,
        train_speakers=None,
        validation_speakers=None,
        test_speakers=None,
        max_steps=2,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )
    train_main([str(recipe)])
    run_dir = tmp_path / "run"
    summary = json.loads((run_dir / "summary.json").read_text())
    card = ModelCard.load(run_dir / "README.md")
    mean_ua = next(r for r in card.data.eval_results if r.metric_type == "recall")
    assert mean_ua.metric_value == pytest.approx(summary["mean"]["unweighted_accuracy"], abs=1e-4)
    assert "mean of 2 folds" in mean_ua.metric_name
    mean = f"{100 * summary['mean']['unweighted_accuracy']:.1f} ± {100 * summary['std']['unweighted_accuracy']:.1f}"
    assert f"| **mean ± std** | {mean} |" in card.text and 'subfolder="fold-0"' in card.text
    fold_card = ModelCard.load(run_dir / "fold-1" / "README.md")
    assert f"| **mean ± std** | {mean} |" in fold_card.text and "fold 1 of the run" in fold_card.text


def test_card_says_where_every_figure_comes_from_and_quotes_the_cross_corpus_benchmark(
    tmp_path, cnn_run, tiny_ravdess, cremad_clips
):
    """Every figure of the card names the corpora the model trained on and whether the evaluated corpus is one of them;
    the limitations quote BENCHMARKS.md's cross-corpus figures, which a test keeps equal to that section."""
    from ser_hf.hub.card import create_model_card

    model_dir = tmp_path / "model"
    shutil.copytree(cnn_run, model_dir)
    for corpus, data_dir, split in (("ravdess", tiny_ravdess, "test"), ("cremad", cremad_clips.parent, "all")):
        evaluate = ["evaluate", "--model", str(model_dir), "--corpus", corpus, "--data-dir", str(data_dir)]
        assert cli_main([*evaluate, "--split", split]) == 0
    card = create_model_card(model_dir)
    text = card.text
    results = text.split("## Results", 1)[1].split("## Training procedure", 1)[0]
    assert results.lstrip().startswith(
        "**In-corpus.** The model was trained on RAVDESS; every figure in this section is on its held-out test "
        "speakers of the same corpus."
    )
    assert "| RAVDESS → RAVDESS (in-corpus) | 8 |" in results
    assert "| RAVDESS → CREMA-D (cross-corpus) |" in results
    by_corpus = {r.dataset_type: r.dataset_name for r in card.data.eval_results}
    assert by_corpus["ravdess"].startswith("RAVDESS (in-corpus, test speakers: 04")
    assert by_corpus["cremad"].startswith("CREMA-D (cross-corpus, trained on RAVDESS, all, ")

    limitations = text.split("## Intended use and limitations", 1)[1]
    quoted = limitations.split("- **Other corpora (cross-corpus).**", 1)[1].split("\n- **", 1)[0]
    figures = re.findall(r"\d+\.\d %", quoted)
    assert figures == ["78.6 %", "45.0 %", "31.9 %", "14.3 %", "85.3 %", "49.7 %"]
    benchmarks = (REPO / "BENCHMARKS.md").read_text()
    heading = next(line for line in benchmarks.splitlines() if line.startswith("### Cross-corpus: RAVDESS and TESS"))
    section = benchmarks.split(heading, 1)[1].split("\n### ", 1)[0]
    for figure in figures:
        number = re.escape(figure[:-2])
        assert re.search(rf"\*\*{number}\*\*|\| {number} ", section), figure  # a table cell, bold or not
    # Cited by file and heading: ser-hf has no public repository to link (tests/hub/test_card_links.py).
    assert f'(BENCHMARKS.md in ser-hf\'s source, "{heading.lstrip("# ").split(" (")[0]}")' in quoted


# --- The Hub round trip -------------------------------------------------------------------------------------------

LOAD_AND_PREDICT = """
    import json, sys
    from huggingface_hub import ModelCard
    from transformers import pipeline
    import soundfile, soxr

    def load(path):
        audio, rate = soundfile.read(path, dtype="float32")
        return soxr.resample(audio, rate, 16000, quality="HQ") if rate != 16000 else audio

    repo, clips, kwargs = {repo!r}, {clips!r}, {kwargs!r}
    result = {{}}
    {before}
    classifier = pipeline("audio-classification", model=repo, **kwargs)
    result["scores"] = [{{s["label"]: s["score"] for s in classifier({{"raw": load(c), "sampling_rate": 16000}},
                                                                    top_k=None)}} for c in clips]
    result["model_class"] = type(classifier.model).__module__ + "." + type(classifier.model).__name__
    result["ser_hf_imported"] = "ser_hf" in sys.modules
    card = ModelCard.load(repo)
    result["card"] = card.data.to_dict()
    {after}
    print(json.dumps(result))
"""


@pytest.mark.slow
def test_ssl_model_trained_pushed_and_loaded_by_repo_id_in_a_fresh_process(tmp_path, hub, tiny_ravdess):
    """ser-hf train with push_to_hub (token in HF_TOKEN) -> a private repo -> pipeline(REPO_ID) and ModelCard.load in a
    process with no ser-hf code: the model is a plain transformers wav2vec2 (LoRA merged)."""
    repo_id = f"{USER}/tiny-wav2vec2-lora"
    recipe = write_cnn_recipe(
        tmp_path / "recipe.yaml",
        data_dir=[str(tiny_ravdess)],
        model_type="wav2vec2",
        model_config=TINY_SSL,
        use_lora=True,
        lora_r=2,
        num_time_masks=0,
        push_to_hub=True,
        hub_model_id=repo_id,
        hub_private_repo=True,
    )
    env = hub_env(hub, tmp_path / "hf_home", token_source="env")
    trained = run([str(Path(sys.executable).parent / "ser-hf"), "train", str(recipe)], env)
    run_dir = tmp_path / "run"
    assert_no_token(run_dir, trained.stdout, trained.stderr)
    assert json.loads((run_dir / "run_config.json").read_text())["training"]["hub_token"] == "<HUB_TOKEN>"

    # What the repo holds: one commit of the finished run (Trainer pushed no checkpoint), private, no token inside.
    repo = hub.repos[("model", repo_id)]
    assert repo.private and len(repo.commits) == 2
    files = hub.files(repo_id)
    assert {
        "model.safetensors",
        "config.json",
        "preprocessor_config.json",
        "README.md",
        "recipe.yaml",
        "metrics.json",
        "run_config.json",
        "confusion_matrix_test.png",
        "training_curves.png",
    } <= set(files)
    assert not any(name.startswith("checkpoint-") for name in files)
    assert all(TOKEN.encode() not in content for content in files.values())
    # The token travelled in the Authorization header only: in no URL and no request body.
    assert all(TOKEN not in path for _, path in hub.requests)
    assert all(TOKEN.encode() not in body for body in hub.received)
    assert files["model.safetensors"] == (run_dir / "model.safetensors").read_bytes()

    clips = clips_of(tiny_ravdess, "04")
    remote = run_python(LOAD_AND_PREDICT.format(repo=repo_id, clips=clips, kwargs={}, before="", after=""), env)
    assert not remote["ser_hf_imported"]
    assert remote["model_class"].startswith("transformers.models.wav2vec2.")
    assert_scores_equal(remote["scores"], local_scores(run_dir, clips))
    card = remote["card"]
    assert card["pipeline_tag"] == "audio-classification" and "lora" in card["tags"]
    assert card["model-index"][0]["name"] == repo_id
    # Without the token, the private repository does not exist for the client.
    denied = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from huggingface_hub import hf_hub_download; hf_hub_download({repo_id!r}, 'config.json')",
        ],
        env=hub_env(hub, tmp_path / "no_token", token_source="none"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert denied.returncode != 0 and "RepositoryNotFoundError" in denied.stderr, denied.stderr[-2000:]


@pytest.mark.slow
def test_baseline_pushed_by_the_cli_loads_with_ser_hf_and_with_remote_code(
    tmp_path, hub, cnn_run, tiny_ravdess, wheel_site
):
    """ser-hf push (token saved by `hf auth login` in HF_HOME) -> pipeline(REPO_ID, trust_remote_code=True) in a
    process that never imports ser_hf, then pipeline(REPO_ID) once ser_hf.models (laid out as its wheel installs it) is
    imported; the card and run files come along."""
    repo_id = f"{USER}/tiny-cnn2d"
    run_dir = tmp_path / "cnn"
    shutil.copytree(cnn_run, run_dir)
    env = hub_env(hub, tmp_path / "hf_home", token_source="file")
    pushed = run([str(Path(sys.executable).parent / "ser-hf"), "push", str(run_dir), "--repo-id", repo_id], env)
    assert f"/{repo_id}/commit/" in pushed.stdout
    assert_no_token(run_dir, pushed.stdout, pushed.stderr)
    files = hub.files(repo_id)
    code_files = {"configuration_cnn2d.py", "modeling_cnn2d.py", "feature_extraction_log_mel.py"}
    assert code_files <= set(files) and "auto_map" in json.loads(files["config.json"])
    assert "auto_map" in json.loads(files["preprocessor_config.json"])
    assert not any(name.startswith("checkpoint-") for name in files)
    assert f'pipeline("audio-classification", model="{repo_id}")' in files["README.md"].decode()

    clips = clips_of(tiny_ravdess, "04")
    env["PYTHONPATH"] = str(wheel_site)
    remote = run_python(
        LOAD_AND_PREDICT.format(
            repo=repo_id,
            clips=clips,
            kwargs={"trust_remote_code": True},
            before="",
            after="""
    result["remote_scores"], result["remote_class"] = result["scores"], result["model_class"]
    assert not result["ser_hf_imported"], "trust_remote_code loaded ser_hf"
    import ser_hf.models  # registers the model types with the Auto classes
    from ser_hf.evaluation.evaluate_model import load_trained_model
    classifier = pipeline("audio-classification", model=repo)
    result["scores"] = [{s["label"]: s["score"] for s in classifier({"raw": load(c), "sampling_rate": 16000},
                                                                   top_k=None)} for c in clips]
    result["model_class"] = type(classifier.model).__module__ + "." + type(classifier.model).__name__
    trained = load_trained_model(repo)
    result["corpora"], result["test_speakers"] = trained.corpora, trained.split_speakers("test", "ravdess")
    from ser_hf.hub.card import model_card_template_path
    result["ser_hf_file"], result["template"] = ser_hf.__file__, str(model_card_template_path())
    """,
        ),
        env,
        cwd=tmp_path,
    )  # not the checkout, whose ser_hf/ would come first on sys.path
    local = local_scores(run_dir, clips)
    assert remote["remote_class"].startswith("transformers_modules.")  # the repo's own code
    assert_scores_equal(remote["remote_scores"], local)
    assert remote["model_class"] == "ser_hf.models.modeling_cnn2d.CNN2DForAudioClassification"
    assert_scores_equal(remote["scores"], local)
    assert remote["card"]["license"] == "cc-by-nc-sa-4.0" and remote["card"]["model-index"][0]["name"] == repo_id
    assert remote["corpora"] == ["ravdess"] and remote["test_speakers"] == ["04"]
    # The wheel's layout: ser_hf and its card template (package data of ser_hf.hub_cards) come from the install.
    assert remote["ser_hf_file"] == str(wheel_site / "ser_hf" / "__init__.py")
    assert remote["template"] == str(wheel_site / "ser_hf" / "hub_cards" / "model_card_template.md")


#: A card's "How to use" snippet run as written in a fresh interpreter (``{preamble}`` first), then every label's score
#: of each clip.
CARD_SNIPPET = """
import importlib.util, json, sys
{preamble}
import numpy as np
{snippet}
scores = [{{s["label"]: s["score"] for s in classifier({{"raw": np.load(path), "sampling_rate": 16000}}, top_k=None)}}
          for path in {arrays!r}]
print(json.dumps({{"scores": scores, "model_class": type(classifier.model).__module__,
                   "ser_hf_imported": any(name.split(".")[0] == "ser_hf" for name in sys.modules)}}))
"""
#: For ``python -I -S``, which leaves out the working directory, PYTHON* variables and the ``.pth`` files of
#: site-packages (among them the finder of ser-hf's editable install): the site-packages folder itself is put back on
#: the path, so that transformers, torch and numpy import, and ser_hf cannot.
WITHOUT_SER_HF = """
sys.path.append({site_packages!r})
assert importlib.util.find_spec("ser_hf") is None, "ser_hf is importable"
"""


@pytest.mark.slow
def test_whisper_model_pushed_loads_from_its_card_snippet_where_ser_hf_cannot_be_imported(tmp_path, hub, tiny_ravdess):
    """A Whisper model (ser-hf's own classes, tagged custom_code) pushed with `ser-hf push`: the card's snippet for
    readers with transformers alone (`pipeline(..., trust_remote_code=True)`) runs as written in an interpreter that
    cannot import ser_hf, and scores as `ser-hf predict` does."""
    repo_id = f"{USER}/tiny-whisper"
    recipe = write_cnn_recipe(
        tmp_path / "recipe.yaml",
        data_dir=[str(tiny_ravdess)],
        model_type="whisper",
        model_config=TINY_WHISPER,
        freeze_base_model=True,
        cache_encoder_outputs=True,
        use_weighted_layer_sum=True,
        num_time_masks=0,
        gain_prob=0.0,
    )
    train_main([str(recipe)])
    run_dir = tmp_path / "run"
    env = hub_env(hub, tmp_path / "hf_home", token_source="env")
    run([str(Path(sys.executable).parent / "ser-hf"), "push", str(run_dir), "--repo-id", repo_id], env)
    files = hub.files(repo_id)
    card = files["README.md"].decode()
    assert "custom_code" in ModelCard(card).data.tags
    code_files = sorted(name for name in files if name.endswith(".py"))
    assert {"configuration_whisper.py", "modeling_whisper.py", "feature_extraction_whisper.py"} <= set(code_files)
    how_to_use = card.split("## How to use\n", 1)[1].split("\n## ", 1)[0]
    # Not on a package index: the install line names the version and ser-hf's own wheel (tests/hub/test_card_links.py).
    assert "pip install ser-hf" not in how_to_use and "git+https://" not in how_to_use
    assert "pip install ser_hf-" in how_to_use and "-py3-none-any.whl" in how_to_use
    assert ", ".join(f"`{name}`" for name in code_files) in how_to_use  # the code that trust_remote_code runs
    with_ser_hf, transformers_only = re.findall(r"```python\n(.*?)```", how_to_use, flags=re.S)
    assert with_ser_hf.startswith("import ser_hf") and "trust_remote_code" not in with_ser_hf
    assert f'pipeline("audio-classification", model="{repo_id}", trust_remote_code=True)' in transformers_only

    # What the reader classifies: 16-kHz clips, as speech.wav for the snippet and as arrays for every label's score.
    clips = [decode_waveform(clip, 16000) for clip in clips_of(tiny_ravdess, "04", count=3)]
    reader = tmp_path / "reader"
    reader.mkdir()
    wavs, arrays = [], []
    for number, audio in enumerate(clips):
        wavs.append(reader / f"clip{number}.wav")
        soundfile.write(wavs[-1], audio, 16000, subtype="FLOAT")
        arrays.append(str(reader / f"clip{number}.npy"))
        np.save(arrays[-1], audio)
    shutil.copy(wavs[0], reader / "speech.wav")
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    isolated = WITHOUT_SER_HF.format(site_packages=site_packages)
    code = CARD_SNIPPET.format(preamble=isolated, snippet=transformers_only, arrays=arrays)
    result = run([sys.executable, "-I", "-S", "-c", code], env, cwd=reader)
    snippet_output, remote = result.stdout.strip().splitlines()[-2:]
    remote = json.loads(remote)
    assert not remote["ser_hf_imported"] and remote["model_class"].startswith("transformers_modules.")
    assert len(re.findall(r"'label': '(\w+)'", snippet_output)) == 3  # the snippet's own print: the top 3
    # The snippet for readers with ser-hf: `import ser_hf` registers the model types, so ser-hf's classes load.
    installed = run_python(CARD_SNIPPET.format(preamble="", snippet=with_ser_hf, arrays=arrays), env, cwd=reader)
    assert installed["model_class"] == "ser_hf.models.modeling_whisper"

    assert (
        cli_main(["predict", str(run_dir), *map(str, wavs), "--output", str(tmp_path / "p.json"), "--no-progress"])
        == 0
    )
    predicted = {Path(r["file"]).name: r["scores"] for r in json.loads((tmp_path / "p.json").read_text())}
    for wav, scores, own in zip(wavs, remote["scores"], installed["scores"]):
        assert scores.keys() == own.keys() == predicted[wav.name].keys()
        assert all(scores[label] == pytest.approx(predicted[wav.name][label], abs=1e-4) for label in scores)
        assert all(own[label] == pytest.approx(predicted[wav.name][label], abs=1e-4) for label in own)


def test_push_refuses_a_folder_holding_the_token_and_a_push_without_token_fails(tmp_path, hub, cnn_run):
    run_dir = tmp_path / "leaky"
    shutil.copytree(cnn_run, run_dir)
    (run_dir / "notes.md").write_text(f"token: {TOKEN}\n")
    with pytest.raises(ValueError, match=r"notes\.md contains your Hugging Face token"):
        push_to_hub(run_dir, f"{USER}/leaky", token=TOKEN, endpoint=hub.url)
    assert ("model", f"{USER}/leaky") not in hub.repos
    (run_dir / "notes.md").unlink()
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError, match="401"):
        push_to_hub(run_dir, f"{USER}/anonymous", token=False, endpoint=hub.url)
    assert ("model", f"{USER}/anonymous") not in hub.repos
    with pytest.raises(FileNotFoundError, match="holds no finished ser-hf run"):
        push_to_hub(tmp_path, f"{USER}/empty", token=TOKEN, endpoint=hub.url)


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.mark.slow
def test_a_failed_push_changes_no_local_file_and_can_be_run_again(tmp_path, hub, cnn_run):
    """The Hub answers the commit with a server error: `ser-hf push` says so in one line (no token), commits
    nothing and changes no file of the run; the same command then pushes it. An unreachable Hub is named likewise."""
    repo_id, run_dir = f"{USER}/pushed-twice", tmp_path / "run"
    shutil.copytree(cnn_run, run_dir)
    # What a run killed while exporting a fold leaves (a temporary folder) is never published.
    (run_dir / ".fold-0.x1y2.partial").mkdir()
    (run_dir / ".fold-0.x1y2.partial" / "model.safetensors").write_bytes(b"half")
    before = _folder_bytes(run_dir)
    env, command = (
        hub_env(hub, tmp_path / "hf_home"),
        [str(Path(sys.executable).parent / "ser-hf"), "push", str(run_dir), "--repo-id", repo_id],
    )
    hub.fail("POST", rf"/api/models/{repo_id}/commit/main", times=None)
    try:
        failed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    finally:
        hub.failures.clear()
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr[-3000:]
    error = failed.stderr[failed.stderr.index("ser-hf: error: ") :].strip()
    assert error.startswith(
        f"ser-hf: error: Server error '500 Internal Server Error' for url '{hub.url}/api/models/{repo_id}/commit/main'"
    ), error
    assert error.endswith(
        f"\nNothing in {run_dir} was changed; to try again, run `ser-hf push {run_dir} --repo-id {repo_id}`."
    ), error
    assert_no_token(run_dir, failed.stdout, failed.stderr)
    assert _folder_bytes(run_dir) == before  # README.md included: the card for the repository was not written
    assert set(hub.files(repo_id)) == {".gitattributes"}  # the repository exists, the commit never landed

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(
        HubPushError,
        match=rf"Could not reach the Hub at {closed} to push {run_dir}: .*Nothing in "
        rf"{run_dir} was changed",
    ) as unreachable:
        push_to_hub(run_dir, repo_id, token=TOKEN, endpoint=closed, private=True, create_card=False)
    # The command to run again keeps every option of the failed push: a private repository stays private.
    assert str(unreachable.value).endswith(f"run `ser-hf push {run_dir} --repo-id {repo_id} --private --no-card`.")
    assert _folder_bytes(run_dir) == before

    pushed = run(command, env)
    assert f"/{repo_id}/commit/" in pushed.stdout
    files, after = hub.files(repo_id), _folder_bytes(run_dir)
    published = {
        name
        for name in before
        if not name.startswith(("checkpoint-", "runs/", ".fold-0.x1y2.partial/", ".ser-hf.lock", "clip_fingerprint"))
    }
    assert set(files) == published | {".gitattributes"}
    # The training's lock and its record of the clips each split held stay local.
    local_only = {".ser-hf.lock", "clip_fingerprint.json"}
    assert local_only <= set(before) and not local_only & set(files)
    assert all(files[name] == after[name] for name in published)
    # The card went up rendered for the repository, and is the run's README.md from now on.
    assert after["README.md"] != before["README.md"] and f'model="{repo_id}"' in after["README.md"].decode()
    assert {name: data for name, data in after.items() if name != "README.md"} == {
        name: data for name, data in before.items() if name != "README.md"
    }


def test_push_to_a_branch_leaves_main_alone(tmp_path, hub, cnn_run):
    run_dir = tmp_path / "run"
    shutil.copytree(cnn_run, run_dir)
    repo_id = f"{USER}/branches"
    push_to_hub(run_dir, repo_id, token=TOKEN, endpoint=hub.url, revision="experiment", commit_message="An experiment")
    assert set(hub.files(repo_id)) == {".gitattributes"}
    experiment = hub.files(repo_id, revision="experiment")
    assert experiment["model.safetensors"] == (run_dir / "model.safetensors").read_bytes()
    assert hub.repos[("model", repo_id)].resolve("experiment").message == "An experiment"


# --- ser-hf evaluate reports on the card and the Hub ---------------------------------------------------------------


def test_evaluate_reports_appear_on_the_card_and_push_to_their_own_repo(tmp_path, hub, cnn_run, tiny_ravdess):
    model_dir = tmp_path / "model"
    shutil.copytree(cnn_run, model_dir)
    evaluate = ["evaluate", "--model", str(model_dir), "--corpus", "ravdess", "--data-dir", str(tiny_ravdess)]
    assert cli_main([*evaluate, "--split", "test"]) == 0
    report_dir = model_dir / "reports" / "ravdess-test"
    report = json.loads((report_dir / "eval_report.json").read_text())
    # The card lists the report once it is written again (as a push does).
    from ser_hf.hub.card import create_model_card

    card = create_model_card(model_dir)
    assert "[ravdess / test](reports/ravdess-test/eval_report.md)" in card.text
    assert any("reports/ravdess-test" in (r.metric_name or "") for r in card.data.eval_results)

    # A report can go to a dataset repository of its own.
    push_reports_to_hub(report_dir, f"{USER}/ser-reports", token=TOKEN, endpoint=hub.url)
    pushed = hub.files(f"{USER}/ser-reports", repo_type="dataset")
    (folder,) = {name.rsplit("/", 1)[0] for name in pushed if name.endswith("/eval_report.json")}
    assert folder.startswith("model-") and folder.endswith("/ravdess-test")  # <model>/<report folder>
    assert json.loads(pushed[f"{folder}/eval_report.json"]) == report
    assert {f"{folder}/eval_report.md", f"{folder}/confusion_matrix.png"} <= set(pushed)


# --- ser-hf predict -----------------------------------------------------------------------------------------------


def test_window_bounds_cover_the_whole_recording():
    assert window_bounds(16000, 16000, None) == [(0, 16000)]
    assert window_bounds(30000, 16000, 2.0) == [(0, 30000)]  # shorter than a window: whole
    assert window_bounds(80000, 16000, 2.0, 1.0) == [(0, 32000), (16000, 48000), (32000, 64000), (48000, 80000)]
    assert window_bounds(85000, 16000, 2.0) == [(0, 32000), (32000, 64000), (53000, 85000)]  # a tail window
    assert window_bounds(65000, 16000, 2.0) == [(0, 32000), (32000, 65000)]  # a short tail extends the last
    with pytest.raises(ValueError, match="must be positive"):
        window_bounds(80000, 16000, 2.0, 0.0)


def test_predict_classifies_folders_and_long_recordings_in_windows(tmp_path, cnn_run, capsys):
    folder = tmp_path / "recordings"
    folder.mkdir()
    clips = [decode_waveform(str(p), 16000) for p in sorted((RAVDESS_SAMPLE / "Actor_05").glob("*.flac"))[:3]]
    long_audio = np.concatenate(clips)
    soundfile.write(folder / "long.wav", long_audio, 16000)
    short = decode_waveform(str(sorted((RAVDESS_SAMPLE / "Actor_06").glob("*.flac"))[0]), 16000)[:24000]
    (folder / "more").mkdir()
    soundfile.write(folder / "more" / "short.flac", short, 16000)

    assert (
        cli_main(
            [
                "predict",
                str(cnn_run),
                str(folder),
                "--window-seconds",
                "2",
                "--hop-seconds",
                "1",
                "--output",
                str(tmp_path / "out.json"),
                "--no-progress",
            ]
        )
        == 0
    )
    results = {Path(r["file"]).name: r for r in json.loads((tmp_path / "out.json").read_text())}
    assert set(results) == {"long.wav", "short.flac"}
    long = results["long.wav"]
    bounds = window_bounds(len(long_audio), 16000, 2.0, 1.0)
    assert [(w["start"], w["end"]) for w in long["windows"]] == [
        (round(s / 16000, 3), round(e / 16000, 3)) for s, e in bounds
    ]
    # Each window is what the pipeline says of that slice; the file's scores are their duration-weighted mean.
    classifier = pipeline("audio-classification", model=str(cnn_run))
    start, end = bounds[1]
    direct = {
        s["label"]: s["score"] for s in classifier({"raw": long_audio[start:end], "sampling_rate": 16000}, top_k=None)
    }
    assert long["windows"][1]["scores"] == pytest.approx(direct, abs=1e-5)
    weights = np.array([w["end"] - w["start"] for w in long["windows"]])
    for label, score in long["scores"].items():
        expected = sum(wt * w["scores"][label] for wt, w in zip(weights, long["windows"])) / weights.sum()
        assert score == pytest.approx(expected, abs=1e-4)
    assert long["label"] == max(long["scores"], key=long["scores"].get)
    assert len(results["short.flac"]["windows"]) == 1  # shorter than the window: the whole clip

    # CSV: one row per window and one aggregated row per file.
    assert (
        cli_main(
            [
                "predict",
                str(cnn_run),
                str(folder / "long.wav"),
                "--window-seconds",
                "2",
                "--output",
                str(tmp_path / "out.csv"),
                "--no-progress",
            ]
        )
        == 0
    )
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0].startswith("file,window,start,end,label,score,neutral,calm,happy")
    assert len(rows) == 1 + len(window_bounds(len(long_audio), 16000, 2.0)) + 1 and ",all," in rows[-1]
    assert cli_main(["predict", str(cnn_run), str(tmp_path / "missing.wav")]) == 2
    assert "is neither an audio file nor a folder" in capsys.readouterr().err


# --- The committed example ----------------------------------------------------------------------------------------

EXAMPLE = REPO / "hub_cards" / "examples" / "ravdess_crnn"


@pytest.mark.skipif(not (EXAMPLE / "README.md").is_file(), reason="the RAVDESS CRNN example card is not generated yet")
def test_committed_ravdess_crnn_example_card_and_report_parse():
    card = ModelCard.load(EXAMPLE / "README.md")
    name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert card.data.pipeline_tag == "audio-classification" and card.data.datasets == ["ravdess"]
    assert {r.metric_type for r in results} == {"recall", "accuracy", "f1"}
    report = json.loads((EXAMPLE / "reports" / "ravdess-actors-17-20" / "eval_report.json").read_text())
    assert report["corpus"] == "ravdess" and report["split"]["speakers"]
    (metrics,) = report["evaluation"].values()
    assert sorted(next(iter(report["split"]["speakers"].values()))) == ["17", "18", "19", "20"]
    assert metrics["clips"] == 240
