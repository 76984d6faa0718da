#!/bin/bash
# Whisper fine-tuning on a GPU machine lent by the device tool (docs/results/LOG.md "Whisper fine-tuning on a GPU"): what
# ran there on 2026-11-26, in two calls, because the checkout, the wheels, Whisper base's weights and RAVDESS 01-20
# together pass the 64 MiB a call may carry (the first call leaves the wheels and weights in /tmp for the second,
# which must follow within the 30 s the machine stays warm).
#
#   bash bench/gpu_whisper.sh setup [quick]  # carry .whl and .gpu_models/whisper-base-encoder (pretrained/ moved
#                                            # aside); quick: without the training-step benchmark
#   bash bench/gpu_whisper.sh accuracy   # carry .gpu_data/ravdess_16k
#
# On 2026-11-27 the every-layer LoRA speaker recipe's folds 1-4 also ran side by side, one process a fold (bench/accuracy
# --only-folds, since removed: ser-hf kfold trains a run folder's folds in one process, and resumes the ones left).
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
            --model-path "openai/whisper-base=$MODEL" --output-dir /tmp/acc --results "$OUT" 2>&1 \
            | grep --line-buffered -v -i "warn\|it/s\]\|examples/s\]" | tee "$OUT/${run%:*}.log"
    done
    # Each finished fold's metrics, also of a run its time limit stopped
    (cd /tmp && find acc \( -name metrics.json -o -name run_config.json \) | tar czf "$OUT/runs.tgz" -T -)
    ;;
*)
    echo "usage: bash bench/gpu_whisper.sh setup|accuracy" >&2
    exit 2
    ;;
esac
