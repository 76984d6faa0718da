"""A model card states only what ser-hf knows: a user's own folder corpus gets its name from ``corpus_name``, "unknown"
where its language, licence or kind of speech is unknown, no citation sentence without citations and a licence the user
can set; the first sentence is one grammatical sentence for every model kind of the registry."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from ser_hf.hub.card import SERCardData, create_model_card
from ser_hf.hub.push import push_to_hub
from ser_hf.models import POOLING_MODES
from ser_hf.models.runtime.registry import BASELINES, ENCODER_FAMILIES
from ser_hf.run_folder import RunRecord
from ser_hf.run_record import RunConfig, RunReport
from ser_hf.train import main as train_main
from tests.conftest import RAVDESS_SAMPLE, write_cnn_recipe

#: RAVDESS emotion code -> the word a user's own file names might use (calm left out: it is not in the vocabulary).
_EMOTION_WORDS = {"01": "neutral", "03": "happiness", "04": "sadness", "05": "anger", "06": "fear", "07": "disgust"}


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> Path:
    """A tiny log-mel CNN trained on a folder corpus named "my-clips": real RAVDESS clips under nEMO-style names
    (``SPEAKER_EMOTION_N.flac``, all in one folder), labels and speakers read from the names."""
    root = tmp_path_factory.mktemp("folder_corpus")
    corpus = root / "clips"
    corpus.mkdir()
    for actor in ("01", "02", "03", "04"):
        for number, clip in enumerate(sorted((RAVDESS_SAMPLE / f"Actor_{actor}").glob("*.flac"))):
            word = _EMOTION_WORDS.get(clip.name.split("-")[2])
            if word is not None:
                (corpus / f"SP{actor}_{word}_{number}.flac").symlink_to(clip)
    recipe = write_cnn_recipe(
        root / "recipe.yaml",
        corpus=["folder"],
        data_dir=[str(corpus)],
        corpus_options={
            "corpus_name": "my-clips",
            "speaker_regex": r"^(?P<speaker>SP\d+)_",
            "label_regex": r"_(?P<label>[a-z]+)_\d+\.flac$",
        },
        train_speakers=["SP01", "SP02"],
        validation_speakers=["SP03"],
        test_speakers=["SP04"],
        output_dir=str(root / "run"),
    )
    train_main([str(recipe)])
    return root / "run"


def _section(card: str, heading: str) -> str:
    return card.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_folder_corpus_card_names_the_corpus_and_says_unknown_where_unknown(folder_run):
    card = create_model_card(folder_run)
    text, data = str(card), card.data.to_dict()
    assert "- **Trained on:** my-clips (" in text
    assert "folder" not in data.get("datasets", []) and "folder" not in data["tags"]
    assert "my-clips" not in data.get("datasets", [])  # not a Hub dataset: no broken link
    # The licence of a corpus ser-hf does not know is the Hub's `unknown`, said so in the body.
    assert data["license"] == "unknown" and "license_link" not in data
    training_data = _section(text, "Training data")
    row = next(line for line in training_data.splitlines() if line.startswith("| my-clips"))
    assert [cell.strip() for cell in row.strip("|").split("|")][:3] == ["my-clips", "unknown", "unknown"]
    assert "[my-clips]()" not in text and "]()" not in text
    assert "not a corpus ser-hf knows" in training_data
    # Nothing said about the clips that ser-hf cannot know.
    assert "actor" not in text.lower() and "on cue" not in text
    limitations = _section(text, "Intended use and limitations")
    assert "**Kind of speech: unknown.**" in limitations and "**Language and accent:** unknown" in limitations
    assert "my-clips, whose licence is unknown" in limitations
    # No citation sentence without citations.
    assert "Please cite" not in text and "## Citation" not in text
    first = text.split("---\n", 2)[2].split("\n\n")[1]
    assert first == (
        "A speech emotion baseline — log-mel 2-D CNN with statistics pooling — trained with ser-hf on my-clips, "
        "evaluated on speakers it never heard during training."
    )


def test_a_licence_set_by_the_user_replaces_the_unknown_one_and_other_links_its_text(folder_run, tmp_path):
    assert create_model_card(folder_run, license="cc-by-4.0").data.to_dict()["license"] == "cc-by-4.0"
    run = tmp_path / "run"
    shutil.copytree(folder_run, run)
    with pytest.raises(ValueError, match=r"LICENSE"):
        create_model_card(run, license="other")
    # A push says so before it asks the Hub anything (nothing listens at this endpoint).
    with pytest.raises(ValueError, match=r"license 'other' needs the licence's text"):
        push_to_hub(run, "me/my-clips", license="other", endpoint="http://127.0.0.1:9", token="hf_unused")
    (run / "LICENSE.md").write_text("Licence of my clips: research use only.\n")
    data = create_model_card(run, license="other").data.to_dict()
    assert data["license"] == "other" and data["license_link"] == "LICENSE.md" and data["license_name"]


def test_corpora_under_one_other_licence_each_get_a_licence_link(cnn_run):
    """RAVDESS's licence (a Hub id) is inherited as it is; whenever the card's licence is `other` it has a link."""
    data = create_model_card(cnn_run).data.to_dict()
    assert data["license"] == "cc-by-nc-sa-4.0" and "license_link" not in data
    record = _record(model_type="cnn2d", corpus=["ravdess", "tess"])
    license_id, name, link = SERCardData(record).card_license()
    assert license_id == "other" and name and link


def _record(corpus=("ravdess",), training_corpora=None, **model) -> RunRecord:
    report = RunReport(labels=["neutral", "angry"], training_corpora=training_corpora or list(corpus))
    config = RunConfig(model=model, data={"corpus": list(corpus), "split_protocol": "speaker"})
    return RunRecord(run_dir=Path("runs/x"), report=report, run_config=config)


def _model_kinds() -> list[dict]:
    """Every model kind a recipe can name (the registry's baselines and encoder families, each family with every
    pooling and with or without the weighted layer sum, and ser-hf's pooling types of them), and ensembles."""
    kinds = [{"model_type": name} for name in BASELINES]
    for family in ENCODER_FAMILIES.values():
        kinds.append({"model_type": family.pooling_config_class.model_type})
    for family in ENCODER_FAMILIES:
        for pooling in (None, *POOLING_MODES):
            for weighted in (False, True):
                kinds.append({"model_type": family, "pooling_mode": pooling, "use_weighted_layer_sum": weighted})
    ensembles = [{"model_type": "ser_ensemble", "member_names": ["crnn", "whisper"]}, {"model_type": "ser_ensemble"}]
    return kinds + ensembles


@pytest.mark.parametrize("corpora", [(["ravdess"], None), (["ravdess", "tess"], None), (["folder"], ["my-clips"])])
def test_first_sentence_is_grammatical_for_every_model_kind(corpora):
    corpus, recorded = corpora
    for model in _model_kinds():
        sentence = SERCardData(_record(corpus, recorded, **model))._summary_sentence()
        kind = "baseline" if model["model_type"] in BASELINES else "classifier"
        assert sentence.startswith(f"A speech emotion {kind} — "), sentence
        assert sentence.endswith(", evaluated on speakers it never heard during training."), sentence
        assert len(re.findall(r"\.(?!\d)", sentence)) == 1, sentence  # one sentence ("wav2vec 2.0" is no full stop)
        assert sentence.count(" — ") == 2 and sentence.count("speech emotion") == 1, sentence
        assert sentence.count("classifier") + sentence.count("baseline") == 1, sentence
        assert not re.search(r"\b(\w+) \1\b", sentence), sentence  # no doubled word
        assert sentence.count("(") == sentence.count(")"), sentence
        architecture = sentence.split(" — ")[1]
        assert "trained" not in architecture and "speech emotion" not in architecture, sentence
    random_split = SERCardData(
        RunRecord(
            run_dir=Path("runs/x"),
            report=RunReport(labels=["angry"]),
            run_config=RunConfig(model={"model_type": "crnn"}, data={"corpus": ["tess"], "split_protocol": "random"}),
        )
    )._summary_sentence()
    assert random_split.startswith(
        "A speech emotion baseline — log-mel CRNN (CNN + BiLSTM) — trained with ser-hf on TESS. **Its split is random"
    )


def test_card_of_a_folder_corpus_run_parses_as_a_model_card(folder_run):
    card = ModelCard(str(create_model_card(folder_run, model_id="me/my-clips-cnn")))
    assert card.data.model_name == "me/my-clips-cnn"
    assert card.data.eval_results[0].dataset_name.startswith("my-clips (in-corpus, test speakers: SP04)")


def test_one_reader_serves_compare_and_the_card_which_names_what_it_lacks(tmp_path):
    """read_run reads any finished run (compare needs no more); the card asks for what it states besides: a k-fold
    root's summary.json and the run's run_config.json."""
    from ser_hf.run_folder import read_run

    report = {"labels": ["angry"], "evaluation": {"test": {"unweighted_accuracy": 0.5, "clips": 2}}}
    for fold in (0, 1):
        (tmp_path / f"fold-{fold}").mkdir()
        (tmp_path / f"fold-{fold}" / "metrics.json").write_text(json.dumps({"fold": fold, **report}))
    run = read_run(tmp_path)
    assert run.is_kfold_root and [r.fold for r in run.reports] == [0, 1] and run.model_dir == tmp_path / "fold-0"
    assert run.summary is None and run.run_config is None and run.model_type is None
    with pytest.raises(FileNotFoundError, match=r"its folds are there but not the summary\.json"):
        SERCardData.read(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"fold-1/run_config\.json is missing: the card needs"):
        SERCardData.read(tmp_path / "fold-1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty holds no finished ser-hf run: neither metrics\.json"):
        read_run(tmp_path / "empty")


def test_label_policy_states_each_corpus_own_drops_unless_the_recipe_maps_the_label():
    """A corpus spec's ``default_label_map`` (EmoDB drops boredom, outside the vocabulary) is stated on the card from
    the spec; a recipe's ``label_map`` naming that label replaces it."""
    record = _record(model_type="cnn2d", corpus=["emodb", "ravdess"])
    policy = SERCardData(record)._label_policy()
    assert "EmoDB's boredom is outside the vocabulary and was dropped" in policy
    record.run_config.data["label_map"] = {"boredom": "calm"}
    policy = SERCardData(record)._label_policy()
    assert "`boredom` merged into `calm`" in policy and "EmoDB's boredom" not in policy
    assert SERCardData(_record(model_type="cnn2d", corpus=["ravdess"]))._label_policy() is None
