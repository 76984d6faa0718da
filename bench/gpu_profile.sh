#!/bin/bash
# Issue 95, points 1 and 2, in one call of the device tool (docs/results/LOG.md, "GPU"): where ser-hf's full
# fine-tuning spends a step on real clips, and whether it ends at the example script's loss when both read the same
# inputs. Each step is bounded and what it wrote is packed into $OUT after it (gpu_profile.tgz), most valuable first,
# so that a call cut short still returns the steps that ended.
#
#   1. profile_serhf_real  one ser-hf run (bench/gpu_profile.py): every step timed from inside its Trainer
#                          (bench/step_timing.py), steps 41-46 under torch.profiler (an epoch starts at 43)
#   2. peer_equal_real     bench/peer.py --equal-inputs: ser-hf against the example script with the same attention
#                          mask, normalisation, padding and random batches, seeds 42 and 43 each; every step timed
#   3. step_variants_real  ser-hf's data settings one at a time (workers kept across epochs, no workers, 4x the batch),
#                          nvidia-smi's utilisation over each run's steady state
#
#   # here, once (ignored folders: .gitignore):
#   #   .gpu_wheels/  the wheels the image lacks (docs/results/LOG.md "GPU"; python 3.12, manylinux x86_64)
#   #   .gpu_ffmpeg/  FFmpeg 5.1's shared libraries, built audio-only (WAV/FLAC/PCM; libc and libm only): the
#   #                 example script decodes its audiofolder through datasets and torchcodec
#   # the device tool's run, carry [".gpu_wheels", ".gpu_ffmpeg"]:
#   COMMIT=<the commit> bash bench/gpu_profile.sh
#   # here, the same steps at smoke size on the CPU (the venv's packages, the system's FFmpeg):
#   DEVICE=cpu PYTHON=.venv/bin/python OUT=/tmp/gpu_smoke bash bench/gpu_profile.sh
#
# Sizes: wav2vec2-base geometry, random weights, bf16, batch 32, 100 steps, 4 DataLoader workers, the shipped RAVDESS
# sample (actors 01-06 train: 180 clips, 3.1-5.0 s), as BENCHMARKS.md's GPU row of 2026-11-28.
set -u
: "${OUT:?OUT: the folder the results go to}"
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
COMMIT=${COMMIT:-unknown}
BUDGET=${BUDGET:-330}  # seconds after the wheels are installed: no step runs past it
# STEPS="peer_equal_real ...": only these steps (a rerun of the ones a call did not finish); default: every step
WORK=/tmp/gpu_profile
rm -rf "$WORK" && mkdir -p "$WORK/results" "$OUT"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HF_DATASETS_CACHE=$WORK/datasets_cache
[ "$COMMIT" = unknown ] || export BENCH_COMMIT=$COMMIT  # the copy's own .git names another commit
export LD_LIBRARY_PATH=$PWD/.gpu_ffmpeg${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
SAMPLE=data/ravdess_sample
R=$WORK/results
if [ "$DEVICE" = cuda ]; then
    COMMON=(--device cuda --bf16 --batch-size 32 --steps 100 --workers 4)
    PROFILE=(--profile-start 41 --profile-steps 6)
    PEER=(--repeats 1 --gpu-utilisation)
    VARIANTS=(--gpu-utilisation)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .gpu_wheels/*.whl || exit 2
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -lms 500 > "$R/smi.csv" &
    SMI=$!
else  # the smoke sizes, on the CPU: checks that every step runs and writes what the GPU run will
    COMMON=(--device cpu --geometry tiny --batch-size 2 --steps 6 --workers 1 --warmup-steps 1 --threads 1)
    PROFILE=(--profile-start 3 --profile-steps 2)
    PEER=(--repeats 1)
    VARIANTS=()
fi
SECONDS=0

RESULTS=$R PACK=gpu_profile.tgz
source bench/gpu_steps.sh  # pack, and step NAME SECONDS COMMAND...

# What ran where: the date, the device, the versions, the commit and a digest of the bench files that ran
$PY -m bench.device_run "$R/run.json" "$COMMIT" "$DEVICE" bench/gpu_profile.sh bench/gpu_profile.sh \
    bench/gpu_profile.py bench/step_timing.py bench/peer.py bench/harness.py bench/peer/measure.py \
    bench/peer/measure_steps.py ser_hf/inputs/collators.py ser_hf/training/trainer.py || exit 2
# torchcodec must decode through the carried FFmpeg (the example script decodes its audiofolder with it)
$PY -c "
import glob, torchcodec.decoders as d
s = d.AudioDecoder(sorted(glob.glob('$SAMPLE/Actor_01/*.flac'))[0]).get_all_samples()
print('torchcodec decodes:', tuple(s.data.shape), s.sample_rate)" || exit 2
pack

# 1. Where the time goes: one ser-hf run on real clips, steps timed from inside its Trainer, steps 41-46 profiled
step profile_serhf_real 120 $PY -m bench.gpu_profile --data-dir $SAMPLE "${COMMON[@]}" "${PROFILE[@]}" \
    --json "$R/profile_serhf_real.json" --markdown "$R/profile_serhf_real.md"

# 2. Equal losses: ser-hf against the example script on the same inputs and random batches, two seeds each
step peer_equal_real 150 $PY -m bench.peer --data-dir $SAMPLE "${COMMON[@]}" "${PEER[@]}" --equal-inputs \
    --seeds 42 43 --json "$R/peer_equal_real.json"

# 3. What changes the step: ser-hf's data settings one at a time, GPU utilisation over each steady state
step step_variants_real 120 $PY -m bench.gpu_profile --data-dir $SAMPLE "${COMMON[@]}" "${VARIANTS[@]}" \
    --variants default persistent workers0 batch4x --json "$R/step_variants_real.json" \
    --markdown "$R/step_variants_real.md"

[ -n "${SMI:-}" ] && kill "$SMI" 2> /dev/null
pack
echo "== done in $SECONDS s (after the wheels)"
cat "$R/steps.log"
