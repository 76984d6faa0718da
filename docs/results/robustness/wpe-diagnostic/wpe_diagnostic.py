"""Issue 96 diagnostic: does a WPE dereverberation front end give back what the room takes? The seed-44 room candidate's
leave-one-corpus-out models on bench/robustness.py's samples: the clips in a room of RT60 0.6 s (the condition's own
function), and the same clips dereverberated with nara_wpe (taps 10, delay 3, 3 iterations, STFT 512/128) before the
encoder; and the clean clips through WPE. ser-hf evaluate (evaluate_model) scores every folder.

    PYTHONPATH=NARA_WPE python wpe_diagnostic.py LOCO.json RUN_ROOT OUTPUT_DIR

LOCO.json: the seed-44 candidate's ``ser-hf loco`` result file (its cells' ``run`` folders relative to RUN_ROOT, the
folder it ran in, which also holds bench/robustness.py's ``outputs/robustness_samples``); OUTPUT_DIR receives the
degraded clips and results.json."""
import json, sys, time, zlib
from pathlib import Path
import numpy as np, soundfile as sf
from nara_wpe.wpe import wpe
from nara_wpe.utils import stft, istft
from ser_hf.data.decode import decode_waveform
from ser_hf.inputs.degradations import Reverberation
from ser_hf.evaluation.evaluate_model import CorpusSource, evaluate_model
from ser_hf.experiments.learning_curve import LABEL_REGEX, SPEAKER_REGEX

LOCO, W, OUT = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
OUT.mkdir(parents=True, exist_ok=True)
LABELS = ["neutral", "happy", "sad", "angry", "fearful", "surprised"]
folds = {c["test"]: W / c["run"] for c in json.load(open(LOCO))["cells"]}
room = Reverberation(0.6)
def dereverb(x):
    Y = stft(x[None], size=512, shift=128).transpose(2, 0, 1)
    Z = wpe(Y, taps=10, delay=3, iterations=3, statistics_mode="full").transpose(1, 2, 0)
    return istft(Z, size=512, shift=128)[0][: len(x)].astype(np.float32)
results = {}
wpe_seconds, audio_seconds = 0.0, 0.0
for corpus, model in folds.items():
    folder = W / "outputs/robustness_samples" / f"{corpus}-40"
    dirs = {name: OUT / corpus / name for name in ("reverb", "reverb_wpe", "clean_wpe")}
    for d in dirs.values(): d.mkdir(parents=True, exist_ok=True)
    for clip in sorted(folder.iterdir()):
        x = decode_waveform(str(clip), 16000)
        rng = np.random.default_rng([room.seed(), zlib.crc32(clip.name.encode())])
        r = room.apply(x, 16000, rng)
        started = time.perf_counter(); rw = dereverb(r); cw = dereverb(x); wpe_seconds += (time.perf_counter() - started) / 2
        audio_seconds += len(x) / 16000
        for name, y in (("reverb", r), ("reverb_wpe", rw), ("clean_wpe", cw)):
            sf.write(dirs[name] / clip.name, np.clip(y, -1, 1), 16000)
    labels = [l for l in LABELS if any(f"__{l}__" in p.name for p in folder.iterdir())]
    row = {}
    for name in ("clean", *dirs):
        data = folder if name == "clean" else dirs[name]
        source = CorpusSource("folder", str(data), options={"label_regex": LABEL_REGEX, "speaker_regex": SPEAKER_REGEX})
        (m,) = evaluate_model(str(model), source, split="all", labels=labels)["evaluation"].values()
        row[name] = round(100 * m["unweighted_accuracy"], 2)
    results[corpus] = row
    print(corpus, row, flush=True)
    (OUT / "results.json").write_text(json.dumps({"results": results, "wpe_seconds_per_audio_second": wpe_seconds / audio_seconds}, indent=2))
print("WPE: %.3f s per second of audio (1 thread)" % (wpe_seconds / audio_seconds))
