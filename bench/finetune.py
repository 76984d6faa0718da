"""Fine-tuning the top layers of a Whisper encoder: ser-hf's step (the lower layers' outputs cached once, each clip's
own frames) against the straightforward one (transformers' ``WhisperForAudioClassification``, the same top layers
unfrozen, every clip padded to the 30-s window, the whole encoder run every step, as transformers'
``run_audio_classification.py`` fine-tunes it), on the same real clips, batch, optimiser and learning rate.

    python -m bench.finetune --threads 1                               # RAVDESS (../shared/data), Whisper tiny.en
    python -m bench.finetune --model ../shared/models/whisper-base-encoder --top-layers 1

Printed: the median seconds per training step (forward, backward, AdamW) of each, alternating A B B A over
``--repeats`` steps after one warm-up step each, the clips/s and their ratio; and ser-hf's one-off cost (encoding the
clips up to the first fine-tuned layer), with the epochs after which it has paid for itself. On a GPU (``--device
cuda``) also each step's GPU memory, and ``--bf16`` runs both ways' steps under bf16 autocast:

    python -m bench.finetune --quick --device cuda --bf16 --batch-size 32 --repeats 8 --model WHISPER_BASE_FOLDER

The embedded encoder (``pretrained/whisper-tiny.en-encoder``) is the default model, so the quick mode runs on any
clone.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch

from bench.harness import REPO, SAMPLE, SHARED_RAVDESS, alternating, speed_arguments, speed_parser, write_json
from ser_hf import load_corpus
from ser_hf.data.decode import decode_waveform
from ser_hf.experiments.results import machine_description
from ser_hf.inputs.top_layers import CachedLowerLayersModel
from ser_hf.models import build_ssl_classifier, build_ssl_feature_extractor
from ser_hf.models.modeling_whisper import pool_layer_statistics

EMBEDDED = REPO / "pretrained" / "whisper-tiny.en-encoder"


def top_layers_trainable(model, encoder, top_layers: int) -> list[torch.nn.Parameter]:
    """Freeze `encoder` but its top layers and final layer norm; the parameters that train (with the head's)."""
    encoder.requires_grad_(False)
    for module in (*encoder.layers[-top_layers:], encoder.layer_norm):
        module.requires_grad_(True)
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


def main(argv=None) -> dict:
    parser = speed_parser(
        __doc__.split("\n\n")[0], quick="the shipped sample instead of ../shared/data", smoke="2 clips, 1 step each"
    )
    parser.add_argument("--model", type=Path, default=EMBEDDED, help="a Whisper checkpoint folder")
    parser.add_argument("--top-layers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=4, help="timed steps of each way")
    parser.add_argument("--bf16", action="store_true", help="both ways' steps under bf16 autocast (as Trainer's bf16)")
    args = speed_arguments(parser, argv, batch_size=2, repeats=1)
    data = SAMPLE if args.quick or not SHARED_RAVDESS.is_dir() else SHARED_RAVDESS
    corpus = load_corpus("ravdess", data)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(corpus), size=args.batch_size, replace=False)
    picked = corpus.select_columns(["path", "label"]).select(rows.tolist())  # decoded by ser-hf, not datasets
    clips = [decode_waveform(path, 16000) for path in picked["path"]]
    device = torch.device(args.device)
    labels = torch.tensor(picked["label"], device=device)
    names = corpus.features["label"]
    print(machine_description(args.device))
    print(
        f"{args.model.name}: top {args.top_layers} layer(s) fine-tuned, batch {args.batch_size} real RAVDESS clips "
        f"({np.mean([len(c) for c in clips]) / 16000:.1f} s on average), {args.threads} thread(s)"
    )

    # ser-hf: the encoder run once up to the first fine-tuned layer through each clip's own length (trim_window).
    torch.manual_seed(0)
    ours = build_ssl_classifier(
        str(args.model),
        names,
        freeze_base_model=True,
        use_weighted_layer_sum=True,
        pooling_mode="layer_statistics",
        encoder_window_seconds=10,
    )
    ours.config.trim_window = True
    ours.to(device)
    ours_extractor = build_ssl_feature_extractor(str(args.model), encoder_window_seconds=10)
    lower = ours.config.num_hidden_layers - args.top_layers
    start = time.perf_counter()
    with torch.no_grad():
        inputs = ours_extractor(clips, sampling_rate=16000, return_tensors="pt", return_state_statistics=False)
        inputs = inputs.to(device)
        _, layers = ours.encoder_layers(inputs["input_features"], inputs["attention_mask"])
        mask = ours.frame_mask(inputs["attention_mask"], layers[0].shape[1])
        pooled = pool_layer_statistics(layers, mask)
        lower_states = layers[lower].clone()
    one_off = time.perf_counter() - start
    wrapper = CachedLowerLayersModel(ours, lower).train()
    ours_optimizer = torch.optim.AdamW([p for p in wrapper.parameters() if p.requires_grad], lr=1e-4)

    def synchronize():  # a GPU step is timed to its end, not to its launch
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    def ours_step():
        ours_optimizer.zero_grad()
        with autocast():
            loss = wrapper(encoder_states=pooled, lower_states=lower_states, frame_mask=mask, labels=labels).loss
        loss.backward()
        ours_optimizer.step()
        synchronize()

    # The straightforward way: transformers' classifier on the 30-s window, the whole encoder every step.
    from transformers import WhisperFeatureExtractor, WhisperForAudioClassification

    torch.manual_seed(0)
    peer = WhisperForAudioClassification.from_pretrained(str(args.model), num_labels=names.num_classes)
    peer = peer.to(device).train()
    peer_parameters = top_layers_trainable(peer, peer.encoder, args.top_layers)
    peer_optimizer = torch.optim.AdamW(peer_parameters, lr=1e-4)
    peer_features = WhisperFeatureExtractor.from_pretrained(str(args.model))(
        clips, sampling_rate=16000, return_tensors="pt"
    )["input_features"].to(device)

    def peer_step():
        peer_optimizer.zero_grad()
        with autocast():
            loss = peer(input_features=peer_features, labels=labels).loss
        loss.backward()
        peer_optimizer.step()
        synchronize()

    def step_memory(step) -> dict:
        """A step's GPU memory (the warm-up step, which also allocates the optimiser's state): its peak, and the
        peak less what was allocated before it (both ways' models and inputs stay on the GPU throughout)."""
        if device.type != "cuda":
            step()
            return {}
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        peak = torch.cuda.max_memory_allocated(device)
        return {"peak_mib": peak / 2**20, "step_mib": (peak - before) / 2**20}

    memory = {"ser-hf": step_memory(ours_step), "transformers": step_memory(peer_step)}  # the warm-up steps
    steps = {"ser-hf": ours_step, "transformers": peer_step}
    times = {name: [] for name in steps}
    for _, name in alternating(args.repeats, list(steps), mirrored=True):
        start = time.perf_counter()
        steps[name]()
        times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in medians.items():
        used = memory[name]
        gpu = f"; GPU memory: step {used['step_mib']:.0f} MiB, peak {used['peak_mib']:.0f} MiB" if used else ""
        print(f"  {name:>12}: {seconds:.3f} s a step, {args.batch_size / seconds:.1f} clips/s{gpu}")
    ratio = medians["transformers"] / medians["ser-hf"]
    saved = medians["transformers"] - medians["ser-hf"]
    print(
        f"  ser-hf / transformers clips/s: {ratio:.1f}x; ser-hf's one-off encoding of these clips: {one_off:.2f} s, "
        f"repaid after {one_off / saved:.2f} epoch(s)"
    )
    result = {"medians": medians, "ratio": ratio, "one_off_seconds": one_off, "gpu_memory": memory, "bf16": args.bf16}
    result.update(batch_size=args.batch_size, device=str(device))
    write_json(args.json, result, args.device)
    return result


if __name__ == "__main__":
    main()
