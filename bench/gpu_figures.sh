#!/bin/bash
# BENCHMARKS.md's GPU table in one call of the device tool (docs/results/LOG.md, "GPU"): wav2vec2-base full
# fine-tuning against transformers' example script (bench/peer.py), the LoRA and FAST rows (bench/train_step.py), the
# Whisper FAST cache (bench/whisper.py) and one `ser-hf adapt` of a general speaker-statistics model at k = 20 clips per
# emotion. Each step is bounded, the slowest last; what a step wrote is packed into $OUT after it, so that a call cut
# short still returns the steps that ended.
#
#   # here, once (ignored folders: .gitignore):
#   #   .gpu_wheels/  the wheels the image lacks (docs/results/LOG.md "GPU" lists them; python 3.12, manylinux x86_64)
#   #   .gpu_ffmpeg/  FFmpeg 5.1's shared libraries, built audio-only (WAV/FLAC/PCM, no other dependency than libc),
#   #                 what torchcodec loads: the image has no FFmpeg, and Debian's build needs 200 MB of libraries
#   #   .gpu_data/ravdess_adapt/  RAVDESS actors 09-13 (../shared/data/ravdess_16k), the clips adapted on
#   # the device tool's run, carry [".gpu_wheels", ".gpu_ffmpeg", ".gpu_data"]:
#   COMMIT=<the commit> bash bench/gpu_figures.sh
#   # here, the same steps at smoke size on the CPU (the venv's packages, the system's FFmpeg):
#   DEVICE=cpu PYTHON=.venv/bin/python OUT=/tmp/gpu_out bash bench/gpu_figures.sh
#
# Sizes: wav2vec2-base geometry, random weights, bf16, batch 32, the shipped RAVDESS sample (actors 01-06 train, 180
# clips). The general model is recipes/general_whisper_base_speaker.yaml's model and training settings on Whisper
# tiny.en's embedded encoder (pretrained/; base's 41 MB of weights do not fit the 64 MiB a call carries beside the
# wheels and clips) trained on the sample alone (actors 01-04 train, 05-08 validation: enough clips for its
# temperature to be fitted, as a real run's is); it is adapted on 20 clips of each of its 8 emotions of actors 09-13.
set -u
: "${OUT:?OUT: the folder the results go to}"
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
COMMIT=${COMMIT:-unknown}
BUDGET=${BUDGET:-300}  # seconds: no step runs past it (the call's limit leaves room for a rerun)
# CALIBRATE=0: the general model without a fitted temperature (for a checkout where `ser-hf adapt` cannot adapt one)
CALIBRATE=${CALIBRATE:-1}
# STEPS="adapt_k20 ...": only these steps (a rerun of the ones a call did not finish); default: every step
WORK=/tmp/gpu_figures
rm -rf "$WORK" && mkdir -p "$WORK/results" "$OUT"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HF_DATASETS_CACHE=$WORK/datasets_cache
export LD_LIBRARY_PATH=$PWD/.gpu_ffmpeg${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
SAMPLE=data/ravdess_sample
if [ "$DEVICE" = cuda ]; then
    QUICK=()
    PEER=(--batch-size 32 --steps 100 --workers 4 --repeats 2 --bf16 --gpu-utilisation)
    STEP=(--ssl-batch-size 32 --ssl-clips 180 --ssl-epochs 3 --repeats 2 --num-workers 4 --bf16 --gpu-utilisation)
    WHISPER_CLIPS=240
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .gpu_wheels/*.whl || exit 2
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -lms 1000 > "$WORK/results/smi.csv" &
    SMI=$!
else  # the smoke sizes, on the CPU: checks that every step runs and writes what the GPU run will
    QUICK=(--geometry tiny)
    PEER=(--batch-size 2 --steps 4 --repeats 1 --warmup-steps 1)
    STEP=(--ssl-geometry tiny --ssl-batch-size 2 --ssl-clips 8 --ssl-epochs 2 --repeats 1 --warmup-steps 1)
    WHISPER_CLIPS=8
fi

RESULTS=$WORK/results PACK=gpu_figures.tgz
source bench/gpu_steps.sh  # pack, and step NAME SECONDS COMMAND...

# What ran where: the device, the versions, the command
$PY -m bench.device_run "$WORK/results/run.json" "$COMMIT" "$DEVICE" bench/gpu_figures.sh || exit 2
# torchcodec must decode through the carried FFmpeg (the example script and the straightforward loop decode with it)
$PY -c "
import glob, torchcodec.decoders as d
s = d.AudioDecoder(sorted(glob.glob('$SAMPLE/Actor_01/*.flac'))[0]).get_all_samples()
print('torchcodec decodes:', tuple(s.data.shape), s.sample_rate)" || exit 2
pack

# 1. Full fine-tuning: ser-hf against the example script, real clips (the run of 2026-11 also profiled a ser-hf run:
# bench/peer.py --profile, since removed; its figures are in docs/results/LOG.md)
step peer_full_real 150 $PY -m bench.peer --data-dir $SAMPLE --device "$DEVICE" "${QUICK[@]}" "${PEER[@]}" \
    --json "$WORK/results/peer_full_real.json"

# 2. ser-hf adapt: the general model, then one adaptation at k = 20 (a fresh process, its own empty caches)
general() {
    local work=$WORK/adapt
    mkdir -p "$work/recordings"
    $PY - "$work" "$DEVICE" "$CALIBRATE" <<'EOF' || return 1
import sys, yaml
work, device, calibrate = sys.argv[1:]
values = yaml.safe_load(open("recipes/general_whisper_base_speaker.yaml"))
for key in ("train_only_corpora", "corpus_weights"):
    values.pop(key)
values.update(
    model_name_or_path="pretrained/whisper-tiny.en-encoder", corpus=["ravdess"], data_dir=["data/ravdess_sample"],
    train_speakers=["01", "02", "03", "04"], validation_speakers=["05", "06", "07", "08"], test_speakers=[],
    output_dir=f"{work}/general", report_to="none", disable_tqdm=True,
)
if calibrate == "0":
    values.update(calibrate_temperature=False)
if device == "cpu":
    values.update(num_train_epochs=1, use_cpu=True)
yaml.safe_dump(values, open(f"{work}/general.yaml", "w"), sort_keys=False)
EOF
    local started=$SECONDS
    $PY -m ser_hf.train "$work/general.yaml" || return 1
    local general_seconds=$((SECONDS - started))
    # 20 clips of each emotion (RAVDESS' codes 01-08), actors 09-13 in order, named SPEAKER_EMOTION_N.flac
    local names=(neutral calm happy sad angry fearful disgust surprised) per_emotion=20 code
    [ "$DEVICE" = cuda ] || per_emotion=2
    for code in 1 2 3 4 5 6 7 8; do
        ls .gpu_data/ravdess_adapt/Actor_*/03-01-0$code-*.flac | head -n $per_emotion | while read -r clip; do
            actor=${clip##*-}
            ln -s "$PWD/$clip" "$work/recordings/${actor%.flac}_${names[$((code - 1))]}_$(basename "$clip" .flac).flac"
        done
    done
    local command=(-m ser_hf.cli adapt "$work/general" --data_dir "$work/recordings" --output_dir "$work/adapted"
        --label_regex '_(?P<label>[a-z]+)_[0-9-]+\.flac$' --speaker_regex '^(?P<speaker>[0-9]+)_')
    local begin end
    begin=$(date +%s.%N)
    HF_DATASETS_CACHE=$work/adapt_cache $PY "${command[@]}" || return 1
    end=$(date +%s.%N)
    $PY - "$WORK/results/adapt_k20.json" "$begin" "$end" "$general_seconds" "$work" "${command[*]}" <<'EOF'
import json, pathlib, sys
path, begin, end, general_seconds, work, command = sys.argv[1:]
recordings = sorted(pathlib.Path(work, "recordings").iterdir())
config = json.loads(pathlib.Path(work, "general", "config.json").read_text())
record = {
    "benchmark": "bench/gpu_figures.sh: one ser-hf adapt of the general speaker-statistics model",
    "command": "python " + command.replace(work, "WORK"),
    "clips": len(recordings),
    "clips_per_emotion": len(recordings) // len({p.name.split("_")[1] for p in recordings}),
    "wall_seconds": round(float(end) - float(begin), 1),
    "general_model_training_seconds": int(general_seconds),
    "general_model": "recipes/general_whisper_base_speaker.yaml's settings, pretrained/whisper-tiny.en-encoder, "
    "the shipped RAVDESS sample (actors 01-04 train, 05-08 validation)",
    "general_model_temperature": config.get("calibration_temperature"),
}
json.dump(record, open(path, "w"), indent=1)
print(json.dumps(record))
EOF
}
export -f general && export WORK PY DEVICE CALIBRATE
step adapt_k20 120 bash -c general

# 3. LoRA and FAST against the straightforward loop, 3-s clips
for mode in lora fast; do
    step "train_step_${mode}_3s" 75 $PY -m bench.train_step --data-dir $SAMPLE --device "$DEVICE" \
        --ssl-mode $mode --seconds 3 "${STEP[@]}" --json "$WORK/results/train_step_${mode}_3s.json"
done

# 4. The Whisper FAST cache: encoding every clip once (tiny.en, 10-s window) against transformers' 30-s way
step whisper_fast_cache 60 $PY -m bench.whisper --model pretrained/whisper-tiny.en-encoder --data-dir $SAMPLE \
    --clips $WHISPER_CLIPS --device "$DEVICE" --skip-30s --results "$WORK/results/whisper_fast_cache.json"

# 5. Full fine-tuning on clips cut or padded to 3 s, if the budget allows
step peer_full_3s 120 $PY -m bench.peer --data-dir $SAMPLE --device "$DEVICE" "${QUICK[@]}" "${PEER[@]}" --seconds 3 \
    --json "$WORK/results/peer_full_3s.json"

[ -n "${SMI:-}" ] && kill "$SMI" 2> /dev/null
pack
echo "== done in $SECONDS s"
cat "$WORK/results/steps.log"
