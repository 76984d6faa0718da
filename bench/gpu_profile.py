"""Where ser-hf's full fine-tuning spends a step's time, and what changes it (issue 95): ser-hf's own command (``ser-hf
train``, run by bench/peer/measure_steps.py in its own process) on the clips and random wav2vec2 encoder that
bench/peer.py makes, every step timed from inside its `Trainer` (bench/step_timing.py: the wait between steps, the
host and CUDA-stream time of a step), one window of steps profiled where asked, and variants of the recipe's data
settings run the same way. Writes JSON (``--json``) and the same figures as markdown tables (``--markdown``).

    python -m bench.gpu_profile --device cuda --bf16 --batch-size 32 --steps 100 --workers 4 --profile-start 41 \\
        --profile-steps 6 --json docs/results/gpu/profile_serhf_real.json           # the profile (one run)
    python -m bench.gpu_profile --device cuda --bf16 --batch-size 32 --steps 100 --workers 4 --gpu-utilisation \\
        --variants default persistent workers0 batch4x --json docs/results/gpu/step_variants_real.json
    python -m bench.gpu_profile --smoke --profile-start 3 --profile-steps 2   # tiny encoder, CPU: that it runs

The variants (:data:`VARIANTS`) change one data setting each (batch4x two), so that a change of the step's wall time
or of the GPU's utilisation is theirs; the first run of each invocation starts from an empty datasets cache.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.harness import (
    UtilisationSampler,
    check_device,
    data_dir,
    result_fields,
    speed_arguments,
    speed_parser,
    write_json,
)
from bench.peer import run_arm, save_encoder, serhf_arguments, write_clips
from bench.step_timing import ENV_PROFILE_START, ENV_PROFILE_STEPS, describe
from ser_hf.experiments.results import machine_description

#: Recipe overrides of each variant (`None`: ser-hf's default), and what it tests.
VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "default": ({}, "the benchmark's recipe (bench/peer.py): DataLoader workers started again every epoch"),
    "persistent": (
        {"dataloader_persistent_workers": True, "max_duration_seconds": None},
        "workers kept across epochs (ser-hf refuses them with random crops: no crop, the clips being under 20 s, "
        "so the same batches)",
    ),
    "workers0": ({"dataloader_num_workers": 0}, "no workers: batches collated in the training process"),
    "batch4x": (
        {"dataloader_persistent_workers": True, "max_duration_seconds": None},
        "four times the batch (--batch-size), workers kept: whether a larger step fills the GPU",
    ),
}
#: Variants whose batch is this many times --batch-size.
BATCH_FACTOR = {"batch4x": 4}


def parse_args(argv=None):
    parser = speed_parser(
        __doc__.split("\n\n")[0],
        quick="the shipped sample, tiny geometry, 12 steps of 4 clips",
        smoke="tiny geometry, 6 steps of 2 clips, CPU",
    )
    parser.add_argument("--data-dir", type=Path, help="RAVDESS folder (default: the shipped sample)")
    parser.add_argument("--geometry", choices=["tiny", "base"], help="encoder sizes (default: tiny quick, base)")
    parser.add_argument("--batch-size", type=int, help="training batch (default: 4 quick, 32)")
    parser.add_argument("--steps", type=int, help="max_steps of each run (default: 12 quick, 100)")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers of the default recipe")
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision (default fp32)")
    parser.add_argument("--seconds", type=float, help="train on every clip cut or padded to this many seconds")
    parser.add_argument("--warmup-steps", type=int, default=5, help="steps of each run before its steady state")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["default"], help="runs, in order")
    parser.add_argument("--profile-start", type=int, default=0, help="first profiled step of each run (0: none)")
    parser.add_argument("--profile-steps", type=int, default=10, help="steps the profiler records (default 10)")
    parser.add_argument("--gpu-utilisation", action="store_true", help="sample nvidia-smi (needs --device cuda)")
    parser.add_argument("--markdown", type=Path, help="also write the figures as markdown tables here")
    args = speed_arguments(parser, argv)
    if args.smoke:
        args.steps, args.batch_size = args.steps or 6, args.batch_size or 2
        args.warmup_steps = min(args.warmup_steps, 1)
        args.workers = 1 if args.workers == 4 else args.workers  # one: the persistent variants need a worker
    args.geometry = args.geometry or ("tiny" if args.quick else "base")
    args.batch_size = args.batch_size or (4 if args.quick else 32)
    args.steps = args.steps or (12 if args.quick else 100)
    # bench/peer.py's helpers read these
    args.equal_inputs, args.clips = False, None
    check_device(args.device, args.gpu_utilisation, args.bf16)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    source = data_dir(True, args.data_dir)
    document: dict[str, Any] = {
        **result_fields(args.device),
        "settings": settings_of(args, source),
        "variants": {},
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="ser_hf_gpu_profile_") as folder:
        work = Path(folder)
        model = work / "encoder"
        save_encoder(model, args.geometry)
        ravdess, _, train, validation, clips = write_clips(source, work, args)
        document["settings"]["training_clips"] = clips
        print(machine_description(args.device), flush=True)
        print(f"ser-hf full fine-tuning, {describe_settings(document['settings'])}", flush=True)
        env = {}
        if args.profile_start:
            env = {ENV_PROFILE_START: str(args.profile_start), ENV_PROFILE_STEPS: str(args.profile_steps)}
        sampler = UtilisationSampler() if args.gpu_utilisation else None
        try:
            for variant in args.variants:
                overrides, what = VARIANTS[variant]
                if variant in BATCH_FACTOR:
                    overrides = {**overrides, "per_device_train_batch_size": BATCH_FACTOR[variant] * args.batch_size}
                arguments = serhf_arguments(
                    args,
                    work / f"recipe_{variant}.yaml",
                    model,
                    ravdess,
                    train,
                    validation,
                    work / f"run_{variant}",
                    **overrides,
                )
                result = run_arm("serhf", arguments, work, variant, args, sampler, **env)
                document["variants"][variant] = {"overrides": overrides, "tests": what}
                document["runs"][variant] = result
                print(run_line(variant, result), flush=True)
                # Written after every run: a call cut short keeps the runs that ended.
                write_json(args.json, document, args.device)
                if args.markdown:
                    args.markdown.parent.mkdir(parents=True, exist_ok=True)
                    args.markdown.write_text(markdown(document))
        finally:
            if sampler is not None:
                sampler.close()
    return document


def settings_of(args, source: Path) -> dict[str, Any]:
    return {
        "data": str(source),
        "clips": f"every clip cut or padded to {args.seconds:g} s" if args.seconds else "real clips",
        "geometry": "wav2vec2-base" if args.geometry == "base" else f"wav2vec2 ({args.geometry})",
        "weights": "random",
        "device": args.device,
        "precision": "bf16" if args.bf16 else "fp32",
        "batch_size": args.batch_size,
        "steps": args.steps,
        "dataloader_workers": args.workers,
        "warmup_steps": args.warmup_steps,
        "profile": {"start": args.profile_start, "steps": args.profile_steps} if args.profile_start else None,
    }


def describe_settings(settings: dict[str, Any]) -> str:
    return (
        f"{settings['geometry']}, {settings['weights']} weights, {settings['device']}, {settings['precision']}; "
        f"{settings.get('training_clips', '?')} training clips of {settings['data']} ({settings['clips']}), batch "
        f"{settings['batch_size']}, {settings['steps']} steps, {settings['dataloader_workers']} DataLoader workers"
    )


def run_line(variant: str, result: dict) -> str:
    steps = result.get("step_times", {})
    line = (
        f"  {variant:>10}: {result['clips_per_second']:7.2f} clips/s, train_loss {result['train_loss']:.4f}, "
        f"whole process {result['process_seconds']:.0f} s"
    )
    if "gpu_utilisation" in result:
        utilisation = result["gpu_utilisation"]
        line += f", GPU {utilisation['mean_percent']:.0f} % ({utilisation['busy_fraction']:.0%} of samples >= 85 %)"
    line += "\n      " + describe(steps.get("summary", {}))
    profile = steps.get("profile")
    if profile:
        line += "\n      profile: " + profile_line(profile)
    return line


def profile_line(profile: dict) -> str:
    parts = [f"{profile['steps']} steps, {profile['wall_ms_per_step']:.1f} ms each (profiled)"]
    if "kernel_ms_per_step" in profile:
        parts.append(
            f"{profile['kernels_per_step']:.0f} kernels a step taking {profile['kernel_ms_per_step']:.1f} ms, the "
            f"device busy {profile['device_busy_share']:.0%} of the window"
        )
    if "kernel_launches_per_step" in profile:
        parts.append(
            f"{profile['kernel_launches_per_step']:.0f} launches a step "
            f"({profile['kernel_launch_host_ms_per_step']:.1f} ms of host time), DataLoader next "
            f"{profile['dataloader_next_ms_per_step']:.1f} ms, "
            f"{profile['synchronisations_per_step']:.1f} synchronisations a step"
        )
    return "; ".join(parts)


def markdown(document: dict[str, Any]) -> str:
    """The runs' step timings and the profile, as markdown tables."""
    settings = document["settings"]
    lines = [
        f"ser-hf full fine-tuning, {describe_settings(settings)}. Measured {document['date']} on "
        f"{document['machine']}; commit {document['commit']}; `{document['command']}`",
        "",
        "| run | what it tests | clips/s | step, median (ms) | between steps: share of wall (epoch starts, after "
        "logs) | host inside a step (ms) | stream span of a step / gap (ms) | GPU utilisation (nvidia-smi): mean, "
        "share >= 85 % | train_loss |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, result in document["runs"].items():
        summary = result.get("step_times", {}).get("summary", {})
        if not summary.get("steps"):
            continue
        kinds = summary["share_between_by_kind"]
        gpu = (
            f"{summary['gpu_step_ms']['median']:.1f} / {summary['gpu_gap_ms']['median']:.1f}"
            if "gpu_step_ms" in summary
            else ""
        )
        utilisation = result.get("gpu_utilisation")
        used = (
            f"{utilisation['mean_percent']:.0f} %, {utilisation['busy_fraction']:.0%}"
            if utilisation and utilisation.get("samples")
            else ""
        )
        lines.append(
            f"| {variant} | {document['variants'][variant]['tests']} | {result['clips_per_second']:.1f} | "
            f"{summary['wall_ms']['median']:.1f} | {summary['share_between']:.0%} ({kinds['first_in_epoch']:.0%}, "
            f"{kinds['after_log']:.0%}) | {summary['host_step_ms']['median']:.1f} | {gpu} | {used} | "
            f"{result['train_loss']:.4f} |"
        )
    for variant, result in document["runs"].items():
        profile = result.get("step_times", {}).get("profile")
        if not profile:
            continue
        lines += ["", f"Profile of `{variant}` ({profile['steps']} steps, torch.profiler, CPU and CUDA activity):", ""]
        lines += ["| measure | per step |", "|---|---:|"]
        for key, label in (
            ("wall_ms_per_step", "wall time, profiled (ms)"),
            ("kernel_ms_per_step", "kernel time on the GPU (ms)"),
            ("copy_ms_per_step", "copies and memsets on the GPU (ms)"),
            ("device_busy_ms_per_step", "time a kernel or copy ran (ms)"),
            ("device_busy_share", "share of the window the GPU ran something"),
            ("kernels_per_step", "kernels"),
            ("kernel_launches_per_step", "kernel launches from the host"),
            ("kernel_launch_host_ms_per_step", "host time in kernel launches (ms)"),
            ("aten_calls_per_step", "aten operator calls"),
            ("dataloader_next_ms_per_step", "host time in DataLoader next (ms)"),
            ("optimizer_step_host_ms_per_step", "host time in the optimizer step (ms)"),
            ("synchronisations_per_step", "host-device synchronisations"),
            ("synchronisation_host_ms_per_step", "host time waiting in them (ms)"),
        ):
            if key in profile:
                value = profile[key]
                lines.append(f"| {label} | {value:.0%} |" if key.endswith("share") else f"| {label} | {value:g} |")
        for title, key in (("device", "top_by_device_time"), ("host", "top_by_host_time")):
            rows = profile.get(key) or []
            if rows:
                lines += ["", f"Operators by self {title} time:", ""]
                lines += [
                    "| operator | calls a step | self device ms a step | self host ms a step |",
                    "|---|---:|---:|---:|",
                ]
                lines += [
                    f"| `{row['name']}` | {row['calls_per_step']:g} | {row['self_device_ms_per_step']:g} | "
                    f"{row['self_host_ms_per_step']:g} |"
                    for row in rows
                ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
