"""``ser-hf evaluate --conditions``: the same clips scored clean and under named, seeded recording conditions, on the
shipped sample with the shipped Whisper encoder: the table it prints, figures that move with the condition, the same
seed giving the same figures (read back from the encoder cache, keyed by the condition), and its errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import numpy as np
import pytest

from ser_hf.cli import main as cli_main
from ser_hf.evaluation.conditions import degraded_clips
from ser_hf.evaluation.evaluate_model import CorpusSource, load_evaluation_corpus
from ser_hf.hub.report_table import report_rows
from ser_hf.inputs.degradations import Babble, ColoredNoise, Telephone
from ser_hf.run_record import EvalReport
from tests.conftest import RAVDESS_LABELS, RAVDESS_SAMPLE, REPO, last_error_line

ENCODER = REPO / "pretrained" / "whisper-tiny.en-encoder"
CONDITIONS = ["pink_noise:snr=0", "telephone", "babble:snr=0"]


@pytest.fixture(scope="module")
def whisper_folder(tmp_path_factory):
    """A classifier on the embedded Whisper encoder (real weights, an untrained head over RAVDESS' labels),
    standardised by corpus statistics, as FAST mode caches its encoder states."""
    from datasets import ClassLabel

    from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor

    folder = tmp_path_factory.mktemp("whisper_conditions")
    model = build_ssl_classifier(
        str(ENCODER), ClassLabel(names=RAVDESS_LABELS), freeze_base_model=True, pooling_mode="mean"
    )
    model.config.trim_window = True
    model.save_pretrained(folder)
    build_ssl_feature_extractor(str(ENCODER), normalization="corpus").save_pretrained(folder)
    return folder


def evaluate(model, output, *extra):
    return cli_main(
        [
            "evaluate",
            "--model",
            str(model),
            "--corpus",
            "ravdess",
            "--data-dir",
            str(RAVDESS_SAMPLE),
            "--speakers",
            "01,02",
            "--output-dir",
            str(output),
            *extra,
        ]
    )


@pytest.mark.slow  # end to end, the longest of its file: make test-slow (CI runs both)
def test_conditions_print_the_table_move_the_figures_and_repeat_with_the_seed(tmp_path, whisper_folder, capsys):
    assert evaluate(whisper_folder, tmp_path / "first", "--conditions", *CONDITIONS) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "first" / "eval_report.json").read_text())
    record = report["recording_conditions"]
    assert [row["condition"] for row in record["conditions"]] == [
        "pink_noise:snr=0",
        "telephone",
        "babble:snr=0,speakers=4",
    ]

    # The table, printed as eval_report.md holds it: clean first, then each condition with its change.
    table = printed[printed.index("## Recording conditions") :]
    assert "| condition | what | UA | UA, 95 % interval | change | change, 95 % interval |" in table
    clean_ua = record["clean"]["unweighted_accuracy"]
    assert f"| clean | as recorded | {100 * clean_ua:.1f} % |" in table
    for row in record["conditions"]:
        change = row["change"]["unweighted_accuracy_difference"]
        assert change == pytest.approx(row["unweighted_accuracy"] - clean_ua)
        line = next(line for line in table.splitlines() if line.startswith(f"| `{row['condition']}` |"))
        assert f"| {100 * row['unweighted_accuracy']:.1f} % |" in line
        assert f"{100 * change:+.1f}".replace("-", "\u2212") in line
        assert "n/a (2 speakers: too few for an interval)" in line  # two speakers: no interval to trust
    assert (tmp_path / "first" / "eval_report.md").read_text().count("## Recording conditions") == 1

    # The figures move with the condition: every condition changes the model's scores of the clips, and its UA
    # differs from clean's for some.
    (clean,) = report["evaluation"].values()
    assert record["clean"]["unweighted_accuracy"] == clean["unweighted_accuracy"]
    assert len({round(row["unweighted_accuracy"], 6) for row in record["conditions"]} | {round(clean_ua, 6)}) > 1
    assert all(row["clips"] == clean["clips"] for row in record["conditions"])

    # The same seed gives the same figures, read back from the encoder cache (a file per condition: its key holds it).
    assert evaluate(whisper_folder, tmp_path / "again", "--conditions", *CONDITIONS, "--condition-seed", "0") == 0
    again = json.loads((tmp_path / "again" / "eval_report.json").read_text())
    assert again["recording_conditions"] == record
    encoder_files = list((Path(datasets.config.HF_DATASETS_CACHE) / "ser_hf").glob("encoder-*.arrow"))
    assert len(encoder_files) >= 1 + len(CONDITIONS)
    assert not list(RAVDESS_SAMPLE.rglob("*.arrow"))  # nothing written beside the recordings

    # The Hub reports table: a row for clean and one per condition, each with its change.
    rows = report_rows(EvalReport.from_dict(report), "reports/ravdess")
    assert [row["condition"] for row in rows] == ["clean", *[row["condition"] for row in record["conditions"]]]
    assert [row["ua_change"] for row in rows[1:]] == [
        pytest.approx(row["change"]["unweighted_accuracy_difference"]) for row in record["conditions"]
    ]
    assert len({tuple(sorted(row)) for row in rows}) == 1  # every row has the same columns


def test_the_seed_draws_the_degradation_and_babble_comes_from_other_speakers():
    dataset = load_evaluation_corpus(CorpusSource("ravdess", str(RAVDESS_SAMPLE)), 16000, speakers=["01", "02"])
    dataset = dataset.select(range(0, len(dataset), 10))
    clean = [np.asarray(row) for row in dataset["waveform"]]

    def waveforms(condition, seed):
        degraded = degraded_clips(dataset, condition, seed, 16000)
        return degraded, [np.asarray(row) for row in degraded["waveform"]]

    first, noisy = waveforms(ColoredNoise(10.0), 0)
    again, noisy_again = waveforms(ColoredNoise(10.0), 0)
    other, noisy_other = waveforms(ColoredNoise(10.0), 1)
    assert all(np.array_equal(a, b) for a, b in zip(noisy, noisy_again))
    assert not any(np.array_equal(a, b) for a, b in zip(noisy, noisy_other))
    assert first._fingerprint == again._fingerprint != other._fingerprint  # the encoder cache's key follows
    assert waveforms(Telephone(), 0)[0]._fingerprint not in (first._fingerprint, dataset._fingerprint)
    assert all(len(a) == len(b) and not np.array_equal(a, b) for a, b in zip(clean, noisy))
    # Babble: each clip of speaker 01 gets speaker 02's clips mixed in, and the reverse, never its own speaker's.
    _, babbled = waveforms(Babble(0.0, speakers=2), 0)
    assert all(len(a) == len(b) and not np.array_equal(a, b) for a, b in zip(clean, babbled))
    one_speaker = dataset.filter(lambda speaker: speaker == "01", input_columns="speaker_id")
    with pytest.raises(ValueError, match="mixes in clips of other speakers than each clip's own, and the evaluated"):
        degraded_clips(one_speaker, Babble(0.0), 0, 16000)


def test_a_bad_condition_is_a_usage_error_listing_the_valid_ones(tmp_path, capsys):
    missing = tmp_path / "no_model"  # never loaded: the conditions are read first
    with pytest.raises(SystemExit) as usage_error:
        evaluate(missing, tmp_path / "out", "--conditions", "pink_noise:snr=10", "pinknoise:snr=3")
    assert usage_error.value.code == 2
    error = last_error_line(capsys)
    assert error.startswith("ser-hf evaluate: error: argument --conditions: unknown condition 'pinknoise:snr=3'; the ")
    assert re.search(r"pink_noise:snr=DB, .*telephone, opus:bitrate=BITS, .*reverb:rt60=SECONDS", error)
    with pytest.raises(SystemExit):
        evaluate(missing, tmp_path / "out", "--conditions", "reverb")
    assert last_error_line(capsys).endswith("condition 'reverb' needs rt60: write it as reverb:rt60=SECONDS.")
    assert evaluate(missing, tmp_path / "out", "--conditions", "telephone", "telephone") == 2
    assert last_error_line(capsys) == "ser-hf: error: condition telephone is given more than once."
    assert not (tmp_path / "out").exists()


def test_babble_among_one_speakers_clips_is_refused_before_the_clean_pass(
    tmp_path, whisper_folder, capsys, monkeypatch
):
    import ser_hf.evaluation.evaluate_model as evaluate_model

    def no_clean_pass(*args, **kwargs):
        raise AssertionError("the clean pass ran before the condition was refused")

    monkeypatch.setattr(evaluate_model, "evaluate_on_dataset", no_clean_pass)
    output = tmp_path / "out"
    status = cli_main(
        ["evaluate", "--model", str(whisper_folder), "--corpus", "ravdess", "--data-dir", str(RAVDESS_SAMPLE)]
        + ["--speakers", "01", "--output-dir", str(output), "--conditions", "telephone", "babble:snr=5"]
    )
    assert status == 2
    error = last_error_line(capsys)
    assert error.startswith("ser-hf: error: condition babble:snr=5,speakers=4: speakers=4 mixes in clips of other ")
    assert "the evaluated clips have one speaker only (01); babble needs clips of 2 speakers or more" in error
    assert not output.exists()


@pytest.mark.slow  # the longest test of `make test` (18 s): make test-slow (CI runs both)
def test_a_condition_failing_on_the_clips_is_named_and_the_passes_scored_are_written(
    tmp_path, whisper_folder, capsys, monkeypatch
):
    import ser_hf.evaluation.evaluate_model as evaluate_model

    def refusing_telephone(dataset, condition, seed, sampling_rate):
        if str(condition) == "telephone":
            raise RuntimeError("initializeEncoder: avcodec_open2 failed")  # as FFmpeg's encoder refuses a clip
        return degraded_clips(dataset, condition, seed, sampling_rate)

    monkeypatch.setattr(evaluate_model, "degraded_clips", refusing_telephone)
    output = tmp_path / "out"
    assert evaluate(whisper_folder, output, "--conditions", "pink_noise:snr=0", "telephone", "babble:snr=0") == 2
    captured = capsys.readouterr()
    error = captured.err.strip().splitlines()[-1]
    assert error == (
        "ser-hf: error: condition telephone could not be scored (RuntimeError: initializeEncoder: avcodec_open2 "
        f"failed); the clean figures and the other conditions' are written to {output / 'eval_report.json'}."
    )
    report = json.loads((output / "eval_report.json").read_text())
    record = report["recording_conditions"]
    (clean,) = report["evaluation"].values()
    assert record["clean"]["unweighted_accuracy"] == clean["unweighted_accuracy"]
    assert [row["condition"] for row in record["conditions"]] == ["pink_noise:snr=0", "babble:snr=0,speakers=4"]
    assert all(row["clips"] == clean["clips"] for row in record["conditions"])
    assert [(row["condition"], row["error"]) for row in record["failed"]] == [
        ("telephone", "RuntimeError: initializeEncoder: avcodec_open2 failed")
    ]
    markdown = (output / "eval_report.md").read_text()
    assert "| `telephone` | telephone: 300-3,400 Hz, 8 kHz, mu-law | not scored: RuntimeError: " in markdown
    assert (
        f"| `pink_noise:snr=0` | pink noise, 0 dB SNR | {100 * record['conditions'][0]['unweighted_accuracy']:.1f} %"
        in markdown
    )
    assert "## Recording conditions" in captured.out
