"""The your-data guide's recipe, run as written on a real folder it was not made for: nEMO (Polish, nine actors) laid
out flat as ``SPEAKER_EMOTION_N.flac``, speakers SM0 validating and TP0, WR0 testing.

    python -m docs.results.studies.your_data --model-path openai/whisper-base=../shared/models/whisper-base-encoder \\
        --results docs/results/your-data/nemo-flat.json

The recipe is read from docs/guides/your-data.md (its ``outputs/my_clips.yaml`` block), so the figure the guide quotes
is the recipe's as the guide writes it; only the folder, its speakers and the output folder change. Variants: the
guide's statistics (its ``feature_extractor_config.normalization``) against the other kind (global against
speaker), and its encoder (the embedded English-only tiny.en) against Whisper base (multilingual). Each run's test UA
on the two test speakers, with the clip-level bootstrap interval (two speakers are too few for a speaker bootstrap),
is written to ``--results`` as it finishes; a run started again reads finished runs back.

Archived study (issue 77): kept beside docs/results/LOG.md's account of it as the record of how its result file was
made; not run by the tests and not kept in step with bench/. Run it from the repository root as a module,
``python -m docs.results.studies.your_data``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import yaml

from bench.harness import REPO, SHARED_CORPORA
from ser_hf.cli.flags import model_paths as parse_model_paths
from ser_hf.cli.loco import add_model_path_argument
from ser_hf.experiments.results import machine_description, source_commit

GUIDE = REPO / "docs" / "guides" / "your-data.md"
#: The folder's split: one speaker validates, two test, the other six train.
SPLIT = {"validation_speakers": ["SM0"], "test_speakers": ["TP0", "WR0"]}
SPEAKER_REGEX = r"^(?P<speaker>[A-Z]+\d)_"
BASE = "openai/whisper-base"


def guide_recipe() -> dict:
    """The recipe the guide writes with ``cat > outputs/my_clips.yaml <<'EOF' ... EOF``."""
    match = re.search(r"cat > outputs/my_clips\.yaml <<'EOF'\n(.*?)\nEOF", GUIDE.read_text(), re.S)
    if match is None:
        raise SystemExit(f"{GUIDE}: no outputs/my_clips.yaml block")
    return yaml.safe_load(match[1])


def flat_folder(root: Path) -> Path:
    """nEMO's clips as links in one folder (its own names are already SPEAKER_EMOTION_N.flac)."""
    folder = root / "nemo_flat"
    folder.mkdir(parents=True, exist_ok=True)
    for clip in sorted(SHARED_CORPORA["nemo"].rglob("*.flac")):
        link = folder / clip.name
        if not link.is_symlink():
            link.symlink_to(clip.resolve())
    return folder


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    add_model_path_argument(parser)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, default=REPO / "outputs" / "bench_your_data")
    args = parser.parse_args(argv)
    model_paths = parse_model_paths(args.model_paths, "--model-path")
    if not SHARED_CORPORA["nemo"].is_dir():
        raise SystemExit(f"{SHARED_CORPORA['nemo']} missing: this study needs ../shared/data.")
    from ser_hf.train import main as train_main

    recipe = guide_recipe()
    guide_normalization = recipe["feature_extractor_config"]["normalization"]
    other = "speaker" if guide_normalization == "global" else "global"
    folder = flat_folder(args.output_dir)
    rows = json.loads(args.results.read_text())["rows"] if args.results.is_file() else []
    print(machine_description(), flush=True)
    encoders = {"guide": recipe["model_name_or_path"], "whisper-base": model_paths.get(BASE, BASE)}
    for encoder, path in encoders.items():
        for normalization in (guide_normalization, other):
            name = f"{encoder}, {normalization} statistics"
            if any(row["variant"] == name for row in rows):
                continue
            output_dir = args.output_dir / re.sub(r"[^a-z0-9]+", "_", name.lower())
            values = {
                **recipe,
                **SPLIT,
                "model_name_or_path": path,
                "feature_extractor_config": {**recipe["feature_extractor_config"], "normalization": normalization},
                "data_dir": str(folder),
                "corpus_options": {**recipe["corpus_options"], "speaker_regex": SPEAKER_REGEX, "corpus_name": "nemo"},
                "output_dir": str(output_dir),
                "report_to": "none",
                "disable_tqdm": True,
            }
            recipe_file = args.output_dir / f"{output_dir.name}.yaml"
            recipe_file.write_text(yaml.safe_dump(values, sort_keys=False))
            started = time.perf_counter()
            (report,) = train_main([str(recipe_file)])
            test = report.evaluation["test"].to_dict()
            rows.append(
                {
                    "variant": name,
                    "model_name_or_path": encoders[encoder] if encoder == "guide" else BASE,
                    "normalization": normalization,
                    "unweighted_accuracy": round(100 * test["unweighted_accuracy"], 2),
                    "accuracy": round(100 * test["accuracy"], 2),
                    "macro_f1": round(100 * test["macro_f1"], 2),
                    "confidence_intervals": test.get("confidence_intervals"),
                    "per_speaker": test.get("per_speaker"),
                    "minutes": round((time.perf_counter() - started) / 60, 1),
                }
            )
            print(f"  {name}: test UA {rows[-1]['unweighted_accuracy']:.1f}", flush=True)
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(
                json.dumps(
                    {
                        "benchmark": "docs/results/studies/your_data.py",
                        "protocol": f"the guide's recipe on nEMO laid out flat; {SPLIT}",
                        "command": "python " + " ".join(sys.argv),
                        "machine": machine_description(),
                        "date": time.strftime("%Y-%m-%d"),
                        "commit": source_commit(),
                        "rows": rows,
                    },
                    indent=1,
                    default=str,
                )
                + "\n"
            )
    return rows


if __name__ == "__main__":
    main()
