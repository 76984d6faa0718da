import csv
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from datasets import Audio, ClassLabel

from ser_hf import CorpusError, InvalidClipError, get_ser_info, load_corpus, merge_corpora
from ser_hf.data.corpora import cremad
from ser_hf.data.errors import InvalidClipsError
from tests.conftest import RAVDESS_48K_SAMPLE, RAVDESS_SAMPLE, write_audio

CORE_COLUMNS = {"audio", "label", "speaker_id", "corpus", "path", "emotion_code", "duration"}


def test_ravdess_sample_builds_a_typed_dataset():
    ds = load_corpus("ravdess", RAVDESS_SAMPLE)
    assert len(ds) == 240
    assert CORE_COLUMNS | {"intensity", "statement", "repetition", "sex", "text"} <= set(ds.column_names)
    assert isinstance(ds.features["audio"], Audio) and ds.features["audio"].sampling_rate == 16000
    assert isinstance(ds.features["label"], ClassLabel)
    assert ds.features["label"].names == [
        "neutral",
        "calm",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgust",
        "surprised",
    ]
    assert sorted(set(ds["speaker_id"])) == [f"{i:02d}" for i in range(1, 9)]
    row = ds.filter(lambda p: p.endswith("03-01-05-02-01-01-03.flac"), input_columns="path")[0]
    assert ds.features["label"].int2str(row["label"]) == "angry"
    assert (row["intensity"], row["statement"], row["repetition"], row["sex"]) == ("strong", "01", 1, "male")
    assert row["text"] == "Kids are talking by the door"
    assert row["corpus"] == "ravdess" and row["emotion_code"] == "05"
    audio = row["audio"]
    assert audio["sampling_rate"] == 16000 and audio["array"].ndim == 1
    assert abs(len(audio["array"]) / 16000 - row["duration"]) < 0.05
    assert all(sex == ("male" if int(s) % 2 else "female") for s, sex in zip(ds["speaker_id"], ds["sex"]))


@pytest.mark.parametrize(
    "label_map, n_clips, names",
    [
        ({"calm": "neutral"}, 240, ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]),
        ({"calm": None}, 208, ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]),
    ],
)
def test_calm_can_be_merged_or_dropped_and_the_choice_is_recorded(label_map, n_clips, names):
    ds = load_corpus("ravdess", RAVDESS_SAMPLE, label_map=label_map)
    assert len(ds) == n_clips
    assert ds.features["label"].names == names
    record = get_ser_info(ds)
    assert record["label_policy"]["label_map"] == label_map
    if label_map["calm"] is None:
        assert record["dropped_by_label_policy"] == {"calm": 32}
    else:
        assert ds["label"].count(0) == 16 + 32  # neutral and the merged calm clips


def test_labels_option_keeps_only_the_task_labels():
    ds = load_corpus("ravdess", RAVDESS_SAMPLE, labels=["angry", "sad", "neutral", "happy"])
    assert ds.features["label"].names == ["neutral", "happy", "sad", "angry"]
    assert len(ds) == 16 + 3 * 32


def test_48k_originals_with_extra_riff_chunks_decode_to_16k_mono():
    ds = load_corpus("ravdess", RAVDESS_48K_SAMPLE)
    assert sorted(ds["num_channels"]) == [1, 2] and set(ds["original_sampling_rate"]) == {48000}
    for row in ds:
        array = row["audio"]["array"]
        assert row["audio"]["sampling_rate"] == 16000 and array.ndim == 1
        assert abs(len(array) / 16000 - row["duration"]) < 0.02


def test_all_48k_originals_load_as_16k_mono(shared_data):
    ds = load_corpus("ravdess", shared_data / "ravdess_48k_originals")
    assert len(ds) == 60 and ds["num_channels"].count(2) == 2
    stereo = ds.filter(lambda n: n == 2, input_columns="num_channels")
    for row in stereo:
        assert row["audio"]["sampling_rate"] == 16000 and row["audio"]["array"].ndim == 1


def test_full_ravdess_16k(shared_data):
    ds = load_corpus("ravdess", shared_data / "ravdess_16k")
    assert len(ds) == 1200
    assert len(set(ds["speaker_id"])) == 20
    assert len(ds.features["label"].names) == 8


def _write_cremad_names(root: Path, names, seconds=0.05, hard_links: bool = False):
    """One clip per name; with ``hard_links`` every name after the first is a hard link to the first clip (a real
    file to every reader, and thousands of names cost no more than one clip's writing)."""
    first = None
    for i, name in enumerate(names):
        if hard_links and first is not None:
            os.link(first, root / "AudioWAV" / name)
        else:
            first = write_audio(root / "AudioWAV" / name, seconds=seconds, seed=i)


def _write_demographics(path: Path, actors):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ActorID", "Age", "Sex", "Race", "Ethnicity"])
        for i, actor in enumerate(actors):
            writer.writerow([actor, 20 + i, "Female" if i % 2 else "Male", "Caucasian", "Not Hispanic"])


def test_cremad_parses_names_and_joins_demographics(tmp_path):
    names = [
        "1001_DFA_ANG_XX.wav",
        "1001_IEO_HAP_HI.wav",
        "1002_TIE_NEU_XX.wav",
        "1002_IWW_SAD_LO.wav",
        "1003_MTI_FEA_MD.wav",
        "1003_ITS_DIS_XX.wav",
    ]
    _write_cremad_names(tmp_path, names)
    _write_demographics(tmp_path / "VideoDemographics.csv", ["1001", "1002", "1003"])
    ds = load_corpus("cremad", tmp_path / "AudioWAV")
    assert ds.features["label"].names == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    row = ds.filter(lambda p: p.endswith("1001_IEO_HAP_HI.wav"), input_columns="path")[0]
    assert (row["speaker_id"], row["sentence"], row["level"]) == ("1001", "IEO", "high")
    assert row["text"] == "It's eleven o'clock"
    assert (row["sex"], row["age"], row["race"]) == ("male", 20, "Caucasian")


def test_cremad_real_file_list(shared_data, tmp_path):
    """The 7442 real CREMA-D names, written as short clips: 91 speakers, published counts, demographics."""
    metadata = shared_data / "cremad_metadata"
    with open(metadata / "AudioWAV_files.csv", newline="") as handle:
        names = [row["filename"] for row in csv.DictReader(handle)]
    assert len(names) == 7442
    _write_cremad_names(tmp_path, names, seconds=0.02, hard_links=True)
    ds = load_corpus("cremad", tmp_path / "AudioWAV", demographics_csv=str(metadata / "VideoDemographics.csv"))
    assert len(ds) == 7442
    assert len(set(ds["speaker_id"])) == 91
    counts = dict(zip(ds.features["label"].names, np.bincount(ds["label"])))
    assert counts == {"neutral": 1087, "happy": 1271, "sad": 1271, "angry": 1271, "fearful": 1271, "disgust": 1271}
    assert set(ds["sex"]) == {"male", "female"} and None not in ds["age"]
    # Actor 1001 is a 51-year-old man in VideoDemographics.csv.
    first = ds[0]
    assert (first["speaker_id"], first["sex"], first["age"]) == ("1001", "male", 51)


def test_tess_savee_emodb_names(tmp_path):
    for name in ["OAF_back_angry.wav", "OAF_back_ps.wav", "YAF_dog_fear.wav", "OA_bite_neutral.wav"]:
        write_audio(tmp_path / "tess" / name.split("_")[0] / name)
    tess = load_corpus("tess", tmp_path / "tess")
    assert sorted(set(tess["speaker_id"])) == ["OAF", "YAF"]
    assert tess.features["label"].names == ["neutral", "angry", "fearful", "surprised"]
    assert "Say the word back" in tess["text"]

    for name in ["AudioData/DC/a01.wav", "AudioData/JE/su03.wav", "ALL/KL_sa02.wav", "ALL/JK_n10.wav"]:
        write_audio(tmp_path / "savee" / name)
    savee = load_corpus("savee", tmp_path / "savee")
    assert sorted(set(savee["speaker_id"])) == ["DC", "JE", "JK", "KL"]
    assert savee.features["label"].names == ["neutral", "sad", "angry", "surprised"]

    for name in ["03a01Fa.wav", "08b02Lb.wav", "16a05Wc.wav", "10b09Nd.wav"]:
        write_audio(tmp_path / "emodb" / "wav" / name)
    emodb = load_corpus("emodb", tmp_path / "emodb")
    assert len(emodb) == 3  # boredom (L) is outside the vocabulary and dropped by default
    assert get_ser_info(emodb)["dropped_by_label_policy"] == {"boredom": 1}
    assert dict(zip(emodb["speaker_id"], emodb["sex"])) == {"03": "male", "16": "female", "10": "male"}
    kept = load_corpus("emodb", tmp_path / "emodb", label_map={"boredom": "calm"})
    assert len(kept) == 4 and "calm" in kept.features["label"].names


@pytest.mark.parametrize("extension, subtype", [("wav", "PCM_16"), ("flac", None), ("ogg", None), ("mp3", None)])
def test_every_supported_format_loads_and_decodes(tmp_path, extension, subtype):
    path = write_audio(
        tmp_path / "happy" / f"spk1_a.{extension}", seconds=0.5, sampling_rate=22050, channels=2, subtype=subtype
    )
    ds = load_corpus("folder", tmp_path, speaker_regex=r"(spk\d+)_")
    assert ds[0]["path"] == str(path)
    array = ds[0]["audio"]["array"]
    assert ds[0]["audio"]["sampling_rate"] == 16000 and array.ndim == 1
    assert abs(len(array) - 8000) < 1200  # mp3 adds encoder padding


def test_folder_layout_with_parent_labels_and_speaker_regex(tmp_path):
    for label in ["Anger", "happiness", "neutral"]:
        for speaker in ["s1", "s2"]:
            write_audio(tmp_path / label / f"{speaker}_take1.wav")
    ds = load_corpus("folder", tmp_path, speaker_regex=r"^[^/]+/(?P<speaker>s\d)_", corpus_name="mycorpus")
    assert ds.features["label"].names == ["neutral", "happy", "angry"]
    assert sorted(set(ds["speaker_id"])) == ["s1", "s2"] and set(ds["corpus"]) == {"mycorpus"}


def test_csv_layout_reads_columns_and_keeps_extra_metadata(tmp_path):
    rows = [
        ("clips/a.wav", "sad", "A", "hello"),
        ("clips/b.wav", "angry", "B", "bye"),
        ("clips/c.wav", "bored", "B", "hm"),
    ]
    for path, *_ in rows:
        write_audio(tmp_path / path)
    with open(tmp_path / "meta.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "emotion", "speaker", "transcript"])
        writer.writerows(rows)
    common = dict(
        csv_path=str(tmp_path / "meta.csv"),
        path_column="file",
        label_column="emotion",
        speaker_column="speaker",
        text_column="transcript",
    )
    with pytest.raises(InvalidClipError, match=r"c\.wav: label 'bored'"):
        load_corpus("folder", tmp_path, **common)
    ds = load_corpus("folder", tmp_path, label_map={"bored": None}, **common)
    assert ds["speaker_id"] == ["A", "B"] and ds["transcript"] == ["hello", "bye"]
    assert get_ser_info(ds)["text_column"] == "transcript"


def test_csv_paths_cannot_escape_the_data_directory(tmp_path):
    outside = write_audio(tmp_path / "outside.wav")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "meta.csv").write_text(f"path,label,speaker\n../outside.wav,sad,A\n{outside},sad,A\n")
    with pytest.raises(CorpusError, match=r"line 2: path '../outside.wav' points outside"):
        load_corpus("folder", tmp_path / "corpus", csv_path=str(tmp_path / "meta.csv"), speaker_column="speaker")


def _ravdess_with_bad_clips(root: Path) -> dict[str, Path]:
    good = write_audio(root / "Actor_01" / "03-01-05-01-01-01-01.wav")
    write_audio(root / "Actor_02" / "03-01-04-01-01-01-02.wav")
    bad = {
        "unparseable": write_audio(root / "Actor_01" / "angry_take_3.wav"),
        "unknown code": write_audio(root / "Actor_01" / "03-01-09-01-01-01-01.wav"),
        "empty": root / "Actor_01" / "03-01-03-01-01-01-01.wav",
        "corrupt": root / "Actor_01" / "03-01-03-01-02-01-01.wav",
        "zero-length": root / "Actor_01" / "03-01-03-02-01-01-01.wav",
    }
    bad["empty"].write_bytes(b"")
    bad["corrupt"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really audio" * 3)
    import soundfile

    soundfile.write(bad["zero-length"], np.zeros((0, 1), dtype=np.float32), 16000)
    (root / "README.txt").write_text("not audio, ignored")
    return {"good": good, **bad}


@pytest.mark.parametrize(
    "problem, message",
    [
        ("unparseable", "does not follow RAVDESS"),
        ("unknown code", "unknown RAVDESS emotion code '09'"),
        ("empty", "the file is empty"),
        ("corrupt", "cannot be decoded"),
        ("zero-length", "no samples"),
    ],
)
def test_bad_clips_stop_the_load_with_the_file_named(tmp_path, problem, message):
    files = _ravdess_with_bad_clips(tmp_path)
    for other, path in files.items():
        if other not in ("good", problem) and path.exists():
            path.unlink()
    with pytest.raises(InvalidClipError, match=message) as error:
        load_corpus("ravdess", tmp_path)
    assert error.value.path == str(files[problem])


def test_skip_invalid_skips_and_lists_every_bad_clip(tmp_path, caplog):
    files = _ravdess_with_bad_clips(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ser_hf"):  # whatever level an earlier run left on ser_hf
        ds = load_corpus("ravdess", tmp_path, skip_invalid=True)
    assert len(ds) == 2
    skipped = {item["path"] for item in get_ser_info(ds)["skipped"]}
    assert skipped == {str(p) for k, p in files.items() if k != "good"}
    assert all(str(p) in caplog.text for k, p in files.items() if k != "good")


def test_missing_and_empty_folders_are_named(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus("ravdess", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="No audio files"):
        load_corpus("ravdess", tmp_path / "empty")
    with pytest.raises(CorpusError, match="Unknown corpus 'iemocap'"):
        load_corpus("iemocap", tmp_path)
    with pytest.raises(
        CorpusError, match="Corpus 'ravdess' has no option 'demographics_csv': it takes no corpus options"
    ):
        load_corpus("ravdess", RAVDESS_SAMPLE, demographics_csv="x.csv")
    # A misspelt option is named with the one meant, and the corpus' options listed, before any file is read.
    with pytest.raises(CorpusError) as error:
        load_corpus("folder", tmp_path / "nope", label_regexp="x", speaker_regex="y")
    assert str(error.value).startswith("Corpus 'folder' has no option 'label_regexp' (did you mean 'label_regex'?)")
    assert "its options are csv_path, path_column, label_column, speaker_column, speaker_regex, label_regex" in str(
        error.value
    )


def test_merge_corpora_reindexes_labels_and_keeps_speakers_apart(tmp_path):
    names = ["1001_DFA_ANG_XX.wav", "1002_IEO_NEU_XX.wav", "1001_TIE_SAD_LO.wav"]
    _write_cremad_names(tmp_path, names)
    crema = load_corpus("cremad", tmp_path / "AudioWAV")
    ravdess = load_corpus("ravdess", RAVDESS_SAMPLE, label_map={"calm": "neutral"})
    merged = merge_corpora([ravdess, crema])
    assert len(merged) == len(ravdess) + len(crema)
    names_out = merged.features["label"].names
    assert names_out == ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    originals = [ravdess.features["label"].int2str(i) for i in ravdess["label"]] + [
        crema.features["label"].int2str(i) for i in crema["label"]
    ]
    assert [names_out[i] for i in merged["label"]] == originals
    assert "cremad:1001" in merged["speaker_id"] and "ravdess:01" in merged["speaker_id"]
    assert get_ser_info(merged)["corpora"] == ["ravdess", "cremad"]
    shared = merge_corpora([ravdess, crema], labels=["neutral", "sad", "angry"])
    assert shared.features["label"].names == ["neutral", "sad", "angry"]
    assert set(shared["label"]) == {0, 1, 2}


def test_cremad_demographics_problems_are_named(tmp_path):
    _write_cremad_names(tmp_path, ["1005_DFA_ANG_XX.wav"])
    _write_demographics(tmp_path / "demo.csv", ["1001"])
    with pytest.raises(CorpusError, match="actor 1005"):
        load_corpus("cremad", tmp_path / "AudioWAV", demographics_csv=str(tmp_path / "demo.csv"))
    with pytest.raises(CorpusError, match="does not exist"):
        cremad.find_demographics(tmp_path, str(tmp_path / "missing.csv"))


def test_user_label_map_extends_the_corpus_default(tmp_path):
    for name in ["03a01Fa.wav", "08b02Lb.wav", "16a05Wc.wav"]:
        write_audio(tmp_path / "wav" / name)
    ds = load_corpus("emodb", tmp_path, label_map={"happy": "neutral"})  # boredom is still dropped
    assert ds.features["label"].names == ["neutral", "angry"] and len(ds) == 2


def test_csv_columns_may_not_overwrite_core_columns(tmp_path):
    write_audio(tmp_path / "a.wav")
    (tmp_path / "meta.csv").write_text("path,label,speaker,duration\na.wav,sad,A,3.1\n")
    with pytest.raises(CorpusError, match=r"\['duration'\] would overwrite"):
        load_corpus("folder", tmp_path, csv_path=str(tmp_path / "meta.csv"), speaker_column="speaker")


def test_paths_are_absolute_whatever_the_working_directory(monkeypatch):
    monkeypatch.chdir(RAVDESS_SAMPLE.parent)
    ds = load_corpus("ravdess", "ravdess_sample/Actor_02")
    assert all(Path(p).is_absolute() for p in ds["path"])


def test_merge_labels_are_checked_and_put_in_canonical_order():
    ravdess = load_corpus("ravdess", RAVDESS_SAMPLE / "Actor_01")
    with pytest.raises(ValueError, match="'Joyful'"):
        merge_corpora([ravdess], labels=["Joyful", "sad"])
    assert merge_corpora([ravdess], labels=["sad", "Neutral"]).features["label"].names == ["neutral", "sad"]


def test_every_corpus_spec_has_every_fact_a_model_card_reads():
    """Corpus facts live in each corpus' spec, the one place a new corpus fills in (issue 32): a corpus missing one
    would silently get a thinner card."""
    from ser_hf.data.corpora import CORPORA

    card_fields = ("full_name", "homepage", "license", "license_name", "citation", "language", "speakers", "texts")
    for name, spec in CORPORA.items():
        missing = [field for field in card_fields if not getattr(spec, field)]
        assert not missing, f"{name}: {missing}"
        assert spec.texts.startswith(spec.full_name), name  # the card joins them: "RAVDESS: two statements ..."


def test_nemo_names_and_its_metadata_table(tmp_path):
    samples = tmp_path / "samples"
    rows = [
        ("EB0_anger_10", "EB0", "female", 27),
        ("WR0_surprised_58", "WR0", "male", 23),
        ("SM0_happiness_3", "SM0", "male", 24),
    ]
    for index, (stem, *_) in enumerate(rows):
        write_audio(samples / f"{stem}.flac", seed=index)
    with open(tmp_path / "data.tsv", "w", encoding="utf-8") as handle:
        handle.write("file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage\n")
        for stem, speaker, gender, age in rows:
            handle.write(f"{stem}.wav\tx\tTo jest zdanie.\tto jest zdanie\t{speaker}\t{gender}\t{age}\n")
    ds = load_corpus("nemo", samples)  # data.tsv one folder up, as nEMO is published
    assert ds.features["label"].names == ["happy", "angry", "surprised"]
    by_speaker = {row["speaker_id"]: row for row in ds}
    assert by_speaker["EB0"]["sex"] == "female" and by_speaker["EB0"]["age"] == 27
    assert by_speaker["WR0"]["text"] == "To jest zdanie." and by_speaker["WR0"]["sentence_number"] == 58
    write_audio(samples / "EB0-anger-11.flac")
    with pytest.raises(InvalidClipError, match="EB0-anger-11"):
        load_corpus("nemo", samples)


def test_real_nemo(shared_data):
    ds = load_corpus("nemo", shared_data / "nemo")
    assert len(ds) == 994 and len(set(ds["speaker_id"])) == 9
    assert ds.features["label"].names == ["neutral", "happy", "sad", "angry", "fearful", "surprised"]
    assert all(ds["text"]) and set(ds["sex"]) == {"female", "male"}


def test_folder_labels_from_file_names_and_the_regex_error_shows_the_string_tried(tmp_path):
    for speaker in ["AB0", "CD1"]:
        for number, emotion in enumerate(["anger", "sadness", "neutral"]):
            write_audio(tmp_path / f"{speaker}_{emotion}_{number}.wav")
    options = dict(speaker_regex=r"^(?P<speaker>[A-Z]{2}\d)_", label_regex=r"_(?P<label>[a-z]+)_\d+\.wav$")
    ds = load_corpus("folder", tmp_path, **options)
    assert ds.features["label"].names == ["neutral", "sad", "angry"]
    assert sorted(set(ds["speaker_id"])) == ["AB0", "CD1"]
    write_audio(tmp_path / "nested" / "EF2-joy.wav")
    with pytest.raises(InvalidClipError) as error:
        load_corpus("folder", tmp_path, **options)
    assert "does not match 'nested/EF2-joy.wav'" in str(error.value)
    ds = load_corpus("folder", tmp_path, skip_invalid=True, **options)
    assert len(ds) == 6 and get_ser_info(ds)["skipped"][0]["path"].endswith("EF2-joy.wav")
    # Several unusable files: each named in one error, with the way to leave them out.
    write_audio(tmp_path / "GH3-joy.wav")
    write_audio(tmp_path / "AB0_boredom_7.wav")
    with pytest.raises(InvalidClipsError) as error:
        load_corpus("folder", tmp_path, **options)
    message = str(error.value)
    # The corpus is named after its folder (it has no corpus_name).
    assert message.startswith(f"3 unusable {tmp_path.name} clip(s):") and len(error.value.errors) == 3
    assert "does not match 'nested/EF2-joy.wav'" in message and "does not match 'GH3-joy.wav'" in message
    assert "label 'boredom' is not an emotion ser-hf knows" in message and "skip_invalid: true" in message
    assert isinstance(error.value, InvalidClipError) and pickle.loads(pickle.dumps(error.value)).errors
    with pytest.raises(CorpusError, match="label_regex"):
        load_corpus("folder", tmp_path, speaker_regex=options["speaker_regex"], label_regex="no group")
