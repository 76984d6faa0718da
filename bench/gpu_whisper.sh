#!/bin/bash
# Whisper fine-tuning on a GPU machine lent by the device tool (docs/results/LOG.md "Whisper fine-tuning on a GPU"): what
# ran there on 2026-11-26, in two calls, because the checkout, the wheels, Whisper base's weights and RAVDESS 01-20
# together pass the 64 MiB a call may carry (the first call leaves the wheels and weights in /tmp for the second,
# which must follow within the 30 s the machine stays warm).
#
#   bash bench/gpu_whisper.sh setup [quick]  # carry .whl and .gpu_models/whisper-base-encoder (pretrained/ moved
#                                            # aside); quick: without the training-step benchmark
#   bash bench/gpu_whisper.sh accuracy   # carry .gpu_data/ravdess_16k
#   bash bench/gpu_whisper.sh speaker-folds   # after `setup quick`, carry .gpu_data/ravdess_16k (2026-11-27)
#   [THREADS=N] bash bench/gpu_whisper.sh launch RECIPE "FOLDS" [--set KEY=VALUE ...]   # as many as wanted, then
#   [COLLECT_WAIT=S] bash bench/gpu_whisper.sh collect    # in the same call as the launches (carry .gpu_data)
#
# speaker-folds runs the every-layer LoRA speaker recipe's folds 1-4 side by side (`launch`: one process a fold,
# which is how four folds took 4.4 minutes instead of about 11; ten ran with THREADS=1) and returns with every
# finished fold (`collect`).
#
# The image has torch, transformers, peft and accelerate but not datasets, soundfile or librosa (carried as wheels,
# docs/results/LOG.md lists them) nor FFmpeg: torchcodec cannot load there. When this ran, building a corpus imported it
# (since fixed: corpora are built from their paths and cast to Audio), so a stand-in torchcodec whose decoders
# refuse to run was installed instead; ser-hf decodes FLAC with soundfile, and anything that did decode through the
# stand-in would stop with its message, not give other numbers. It is kept as what ran.
# Results go to $OUT (the device tool's folder).
set -u
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
MODEL=/tmp/models/whisper-base-encoder

stand_in_torchcodec() {
    rm -rf /tmp/site/torchcodec && mkdir -p /tmp/site/torchcodec
    printf 'from . import decoders, encoders  # noqa: F401\n' > /tmp/site/torchcodec/__init__.py
    printf 'class AudioEncoder:\n    def __init__(self, *a, **k):\n        raise RuntimeError("no FFmpeg here")\n' \
        > /tmp/site/torchcodec/encoders.py
    sed 's/AudioEncoder/AudioDecoder/' /tmp/site/torchcodec/encoders.py > /tmp/site/torchcodec/decoders.py
    printf '\n\nclass VideoDecoder(AudioDecoder):\n    pass\n' >> /tmp/site/torchcodec/decoders.py
}

case "${1:-}" in
setup)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 2
    stand_in_torchcodec
    mkdir -p /tmp/models && cp -r .gpu_models/whisper-base-encoder /tmp/models/ || exit 2
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, datasets, transformers, peft, ser_hf
print(torch.__version__, transformers.__version__, peft.__version__, datasets.__version__, torch.cuda.get_device_name())" \
        || exit 2
    # A training step: ser-hf's (top 2 layers on the cached lower ones, own lengths), transformers' (30-s window);
    # `setup quick` skips it
    [ "${2:-}" = quick ] && exit 0
    for precision in "" "--bf16"; do
        timeout 90 python3 -m bench.finetune --quick --device cuda $precision --batch-size 32 --repeats 8 \
            --model "$MODEL" --json "$OUT/finetune_base${precision:+_bf16}.json"
    done
    ;;
accuracy)
    test -d /tmp/site -a -d "$MODEL" || { echo "the machine was given back between the calls: setup again"; exit 3; }
    mkdir -p ../shared/data && ln -sfn "$PWD/.gpu_data/ravdess_16k" ../shared/data/ravdess_16k
    # The every-layer LoRA recipes' speaker 5-fold (bf16 through precision: auto), each bounded so that both fit.
    for run in ravdess_whisper_base_lora_all:250 ravdess_whisper_base_lora_all_speaker:220; do
        timeout "${run#*:}" python3 -m bench.accuracy "recipes/${run%:*}.yaml" \
            --model-path "openai/whisper-base=$MODEL" --output-dir /tmp/acc --results "$OUT/${run%:*}.json" 2>&1 \
            | grep --line-buffered -v -i "warn\|it/s\]\|examples/s\]" | tee "$OUT/${run%:*}.log"
    done
    # Each finished fold's metrics, also of a run its time limit stopped
    (cd /tmp && find acc \( -name metrics.json -o -name run_config.json \) | tar czf "$OUT/runs.tgz" -T -)
    ;;
launch)
    # launch RECIPE "FOLDS" [accuracy.py options...]: one process a fold, each with its own datasets cache (so no
    # two build one cache file), in its own process session (it outlives the call; `collect` waits for it)
    test -d /tmp/site -a -d "$MODEL" || { echo "the machine was given back between the calls: setup again"; exit 3; }
    mkdir -p ../shared/data /tmp/logs && ln -sfn "$PWD/.gpu_data/ravdess_16k" ../shared/data/ravdess_16k
    recipe=$2 folds=$3 && shift 3
    for fold in $folds; do
        # the variant's options in the name (letters, digits, '=', '.', '_', '-'), so two variants never share a log
        log="/tmp/logs/$(basename "$recipe" .yaml)$(printf '%s' "${*:+-$*}" | tr -c 'A-Za-z0-9=._-' _)-fold-$fold.log"
        test -e "$log" && continue  # launched by an earlier call
        HF_DATASETS_CACHE="/tmp/hf-$(basename "$log" .log)" OMP_NUM_THREADS=${THREADS:-4} \
            setsid python3 -m bench.accuracy "$recipe" --model-path "openai/whisper-base=$MODEL" \
            --output-dir /tmp/acc --only-folds "$fold" "$@" > "$log" 2>&1 &
    done
    ;;
collect)
    # Wait until every launched fold has its metrics.json, or COLLECT_WAIT seconds (default 530), then return every
    # finished fold's metrics and every log; a fold still running goes on, and a later collect within the warm 30 s
    # picks it up.
    start=$SECONDS
    (sleep 120 && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv > /tmp/logs/gpu-at-2min.csv) &
    while (( SECONDS - start < ${COLLECT_WAIT:-530} )); do
        launched=$(ls /tmp/logs/*.log | wc -l)
        finished=$(grep -l "unweighted_accuracy" /tmp/logs/*.log | wc -l)
        (( finished >= launched )) && break
        sleep 5
    done
    echo "$finished of $launched folds finished after $((SECONDS - start)) s"
    (cd /tmp && find acc \( -name metrics.json -o -name run_config.json \) | tar czf "$OUT/folds.tgz" -T - logs)
    grep -h "fold [0-9]:" /tmp/logs/*.log
    ;;
speaker-folds)
    # What ran on 2026-11-27: the every-layer LoRA speaker recipe's folds 1-4 (fold 0 ran in the accuracy call)
    bash "$0" launch recipes/ravdess_whisper_base_lora_all_speaker.yaml "1 2 3 4" && bash "$0" collect
    ;;
*)
    echo "usage: bash bench/gpu_whisper.sh setup|accuracy|launch|collect|speaker-folds" >&2
    exit 2
    ;;
esac
