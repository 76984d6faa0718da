"""Do timeline segments get the label the same model gives the whole clip? Recordings made of held-out RAVDESS clips
with known labels, one after another with short pauses, run through ``ser_hf.deploy.timeline.emotion_timeline`` under
each segment context and smoothing.

    python -m bench.timeline                    # the shipped sample: a demo-recipe model trained on actors 01-05
    python -m bench.timeline --full             # ../shared/data/ravdess_16k: trained on actors 01-14
    python -m bench.timeline --model PATH       # a trained model folder; its held-out actors with --test-speakers

The model (unless ``--model``) is trained here by ``ser_hf.train.main`` on ``--recipe`` (``recipes/demo.yaml``:
eGeMAPS functionals and a linear classifier) with its speakers overridden: the sample's actors 01-05 train, 06
validates, and the clips of 07-08 (the full corpus: 01-14, 15-16, and 17-20), which the model never heard, make the
recordings. Each recording is ``--clips-per-recording`` whole clips (their own leading and trailing silence
included, as the corpus ships them) in a random order, with ``--pause`` seconds of faint noise between them.

For each clip: the label the model gives the whole clip file (``ser_hf.deploy.classify.classify_files``, as ``ser-hf
predict`` does), and the label of the timeline segment that overlaps the clip most. Reported per setting (segment
context seconds x smoothing): clips the VAD finds (exactly one segment overlaps the clip, and it overlaps no other
clip), segments, and the share of clips whose segment label equals the whole-clip label and the true label.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
from pathlib import Path

import numpy as np

from bench.harness import REPO, SAMPLE, SHARED_RAVDESS, add_threads_argument, machine_line, run_fields, set_threads

SAMPLING_RATE = 16000
#: (train, validation, held-out) actors of the shipped sample and of the 20-actor corpus.
SAMPLE_SPEAKERS = ([f"{a:02d}" for a in range(1, 6)], ["06"], ["07", "08"])
FULL_SPEAKERS = ([f"{a:02d}" for a in range(1, 15)], ["15", "16"], ["17", "18", "19", "20"])
CONTEXTS = (0.0, 0.25, 0.5, 1.0, 1.5, math.inf)
SMOOTHINGS = ("none", "mean:3s")
#: Level of the noise in the pauses between clips (RAVDESS's own silence is recorded room noise).
PAUSE_NOISE = 1e-4


def train_model(recipe: str, folder: Path, output_dir: Path, speakers, epochs: int | None) -> Path:
    """A model trained by ``ser_hf.train.main`` on ``recipe`` with the bench's speakers, saved in ``output_dir``."""
    from ser_hf.train import main as train_main

    train, validation, held_out = speakers
    args = [
        recipe,
        "--data_dir",
        str(folder),
        "--output_dir",
        str(output_dir),
        "--train_speakers",
        *train,
        "--validation_speakers",
        *validation,
        "--test_speakers",
        *held_out,
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
    ]
    if epochs is not None:
        args += ["--num_train_epochs", str(epochs)]
    train_main(args)
    return output_dir


def held_out_clips(folder: Path, held_out: list[str], limit: int | None, seed: int) -> list[dict]:
    """The held-out actors' clips (path, label name), shuffled, at most ``limit``."""
    from ser_hf import load_corpus

    corpus = load_corpus("ravdess", folder)
    names = corpus.features["label"].names
    rows = [
        {"path": path, "label": names[label]}
        for path, label, speaker in zip(corpus["path"], corpus["label"], corpus["speaker_id"])
        if speaker in held_out
    ]
    rows.sort(key=lambda row: row["path"])
    order = np.random.default_rng(seed).permutation(len(rows))
    return [rows[i] for i in order][:limit]


def build_recordings(clips: list[dict], per_recording: int, pause: float, seed: int) -> list[dict]:
    """Recordings of ``per_recording`` whole clips each, ``pause`` seconds of faint noise between them: the waveform
    and each clip's (start, end) seconds."""
    from ser_hf.data.decode import decode_waveform

    rng = np.random.default_rng(seed)
    recordings = []
    for first in range(0, len(clips), per_recording):
        group = clips[first : first + per_recording]
        parts, bounds, position = [], [], 0
        for index, clip in enumerate(group):
            if index:
                parts.append(rng.normal(0, PAUSE_NOISE, int(round(pause * SAMPLING_RATE))).astype(np.float32))
                position += len(parts[-1])
            audio = decode_waveform(clip["path"], SAMPLING_RATE)
            parts.append(audio)
            bounds.append((position / SAMPLING_RATE, (position + len(audio)) / SAMPLING_RATE))
            position += len(audio)
        recordings.append({"waveform": np.concatenate(parts), "clips": group, "bounds": bounds})
    return recordings


def clip_labels(timeline, bounds: list[tuple[float, float]]) -> tuple[list[str | None], int]:
    """Each clip's segment label (the segment overlapping it most; `None` if none does) and how many clips the VAD
    found (exactly one segment overlaps the clip, and that segment overlaps no other clip)."""

    def overlap(segment, start, end):
        return max(0.0, min(segment.end, end) - max(segment.start, start))

    labels, found = [], 0
    for start, end in bounds:
        touching = [segment for segment in timeline.segments if overlap(segment, start, end) > 0]
        labels.append(max(touching, key=lambda s: overlap(s, start, end)).label if touching else None)
        if len(touching) == 1:
            others = sum(overlap(touching[0], low, high) > 0 for low, high in bounds)
            found += others == 1
    return labels, found


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help=f"read {SHARED_RAVDESS} (actors 01-20)")
    parser.add_argument("--data-dir", type=Path, help="a RAVDESS folder (default: the shipped sample, or --full's)")
    parser.add_argument("--model", help="a trained model folder (default: train --recipe here)")
    parser.add_argument("--recipe", default=str(REPO / "recipes" / "demo.yaml"), help="recipe of the model trained")
    parser.add_argument("--epochs", type=int, help="override the recipe's num_train_epochs")
    parser.add_argument("--test-speakers", nargs="+", help="the held-out actors whose clips make the recordings")
    parser.add_argument("--clips", type=int, help="at most this many held-out clips (default: all)")
    parser.add_argument("--clips-per-recording", type=int, default=20)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between clips (0.5)")
    parser.add_argument("--contexts", type=float, nargs="+", default=list(CONTEXTS), help="segment context seconds")
    parser.add_argument("--smoothings", nargs="+", default=list(SMOOTHINGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a tiny run for the tests: 1 actor, 2 epochs, 6 clips")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_threads_argument(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    speakers = FULL_SPEAKERS if args.full else SAMPLE_SPEAKERS
    if args.smoke:  # one training actor, two epochs, six clips in two recordings
        args.clips, args.clips_per_recording, args.epochs = args.clips or 6, 3, args.epochs or 2
        speakers = (["01"], ["06"], ["07"])

    folder = args.data_dir or (SHARED_RAVDESS if args.full else SAMPLE)
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing: run without --full (the shipped sample) or give --data-dir DIR.")
    held_out = args.test_speakers or speakers[2]

    from ser_hf.deploy.classify import classify_files
    from ser_hf.deploy.pipelines import load_classifier
    from ser_hf.deploy.timeline import emotion_timeline

    with tempfile.TemporaryDirectory() as scratch:
        if args.model is None:
            model = train_model(args.recipe, folder, Path(scratch) / "model", speakers, args.epochs)
            model_name = f"{Path(args.recipe).name} trained on actors {', '.join(speakers[0])}"
        else:
            model, model_name = args.model, args.model
        logging.getLogger("ser_hf").setLevel(logging.WARNING)  # training turned its INFO lines on
        classifier = load_classifier(str(model))
        clips = held_out_clips(folder, held_out, args.clips, args.seed)
        whole = {p.file: p.label for p in classify_files(classifier, [c["path"] for c in clips], progress=False)}
        recordings = build_recordings(clips, args.clips_per_recording, args.pause, args.seed)

        truth = [clip["label"] for recording in recordings for clip in recording["clips"]]
        expected = [whole[clip["path"]] for recording in recordings for clip in recording["clips"]]
        whole_truth = np.mean([a == b for a, b in zip(expected, truth)])
        print(machine_line())
        print(
            f"{model_name}; {len(truth)} clips of actors {', '.join(held_out)} ({folder}) in {len(recordings)} "
            f"recording(s) of up to {args.clips_per_recording}, {args.pause:g}-s pauses; whole clips: "
            f"{whole_truth:.1%} right"
        )
        print("| context (s) | smoothing | clips found | segments | = whole-clip label | = true label |")
        print("|---|---|---|---|---|---|")
        results = []
        for context in args.contexts:
            for smoothing in args.smoothings:
                labels, found, segments = [], 0, 0
                for recording in recordings:
                    timeline = emotion_timeline(
                        classifier, recording["waveform"], SAMPLING_RATE, smoothing=smoothing, context_seconds=context
                    )
                    clip_label, clip_found = clip_labels(timeline, recording["bounds"])
                    labels += clip_label
                    found += clip_found
                    segments += len(timeline.segments)
                agree_whole = float(np.mean([a == b for a, b in zip(labels, expected)]))
                agree_truth = float(np.mean([a == b for a, b in zip(labels, truth)]))
                results.append(
                    {
                        "context_seconds": context,
                        "smoothing": smoothing,
                        "clips_found": found,
                        "segments": segments,
                        "agreement_with_whole_clip": agree_whole,
                        "agreement_with_truth": agree_truth,
                    }
                )
                print(
                    f"| {context:g} | {smoothing} | {found}/{len(truth)} | {segments} | {agree_whole:.1%} | "
                    f"{agree_truth:.1%} |"
                )
    if args.json is not None:
        report = {
            **run_fields(),
            "model": model_name,
            "clips": len(truth),
            "whole_clip_accuracy": float(whole_truth),
            "results": results,
        }
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
