"""Where a training step's time goes, measured from inside the `Trainer` that a user's command builds (a
`TrainerCallback`, added by ``bench/peer/measure_steps.py`` to every `Trainer` of the process it runs), never by a loop
of its own.

:class:`StepTimes` stamps every optimizer step on the host clock: the time *between* steps (the end of one step to
the start of the next: the wait for the next batch, the start of an epoch's `DataLoader` workers, logging) and the host
time *inside* a step (forward, backward and optimizer calls issued). On CUDA it also records an event on the stream at
each step's start and end, read once training ends (one ``torch.cuda.synchronize``), which give the stream's own span
of each step and the GPU's idle gap between steps. :class:`StepProfiler` runs ``torch.profiler`` over a window of
steps (``SER_HF_BENCH_PROFILE_START`` and ``SER_HF_BENCH_PROFILE_STEPS``) and keeps its summary only: kernels and their
time per step, the share of the window a kernel ran, the host's kernel launches, the operators that took most device
and host time. What both measured is written as JSON to ``SER_HF_BENCH_STEP_TIMES`` when training ends, with a batch
fetched and collated again in the main process (its keys, shapes, padding and time) and the settings that decide the
loss (the model's class and config, the sampler, the optimizer's and schedule's arguments).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Optional

from transformers import TrainerCallback

ENV_PATH = "SER_HF_BENCH_STEP_TIMES"
ENV_PROFILE_START = "SER_HF_BENCH_PROFILE_START"
ENV_PROFILE_STEPS = "SER_HF_BENCH_PROFILE_STEPS"
ENV_WARMUP = "SER_HF_BENCH_WARMUP_STEPS"
#: The CUDA runtime calls in which the host waits for the device.
SYNCHRONISATIONS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")

#: The config fields that change what a step computes or draws (dropout, masking, the head).
CONFIG_FIELDS = (
    "hidden_dropout",
    "attention_dropout",
    "activation_dropout",
    "feat_proj_dropout",
    "final_dropout",
    "layerdrop",
    "apply_spec_augment",
    "mask_time_prob",
    "mask_time_length",
    "mask_feature_prob",
    "classifier_proj_size",
    "pooling_mode",
    "use_weighted_layer_sum",
    "feat_extract_norm",
    "num_labels",
    "id2label",
)
#: The training arguments that change the loss of a run (besides its data).
TRAINING_FIELDS = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "warmup_ratio",
    "weight_decay",
    "optim",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "label_smoothing_factor",
    "seed",
    "data_seed",
    "bf16",
    "fp16",
    "tf32",
    "torch_compile",
    "group_by_length",
    "train_sampling_strategy",
    "class_weights",
    "head_learning_rate",
    "one_cycle_lr",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "dataloader_num_workers",
    "dataloader_pin_memory",
    "dataloader_persistent_workers",
    "dataloader_prefetch_factor",
    "logging_nan_inf_filter",
)


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 3)


class StepTimes(TrainerCallback):
    """Per-step host and (on CUDA) stream timings of a training run, and optionally a profiled window of steps.

    Args:
        path (`Path`): where the JSON is written when training ends.
        profile_start (`int`, *optional*, defaults to 0): the first global step (1-based) the profiler records; 0: off.
        profile_steps (`int`, *optional*, defaults to 10): steps it records.
    """

    def __init__(self, path: Path, profile_start: int = 0, profile_steps: int = 10):
        self.path = Path(path)
        self.profile_start, self.profile_steps = profile_start, profile_steps
        self.rows: list[dict[str, Any]] = []
        self.record: dict[str, Any] = {}
        self._events: list[tuple[Any, Any]] = []
        self._profiler: Optional[StepProfiler] = None
        self._epoch = -1
        self._first_in_epoch = False
        self._logged_at = -1

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        import torch

        self.cuda = args.device.type == "cuda" and torch.cuda.is_available()
        self.record["settings"] = {key: _plain(getattr(args, key, None)) for key in TRAINING_FIELDS}
        if model is not None:
            config = getattr(model, "config", None)
            self.record["model"] = {
                "class": type(model).__name__,
                "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "config": {key: _plain(getattr(config, key, None)) for key in CONFIG_FIELDS},
            }
        if train_dataloader is not None:
            self.record["dataloader"] = describe_dataloader(train_dataloader)
        self._previous_end = time.perf_counter()
        if self.profile_start == 1:
            self._profiler = StepProfiler(self.cuda)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._epoch += 1
        self._first_in_epoch = True
        self._epoch_begin = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        self._logged_at = state.global_step

    def on_step_begin(self, args, state, control, **kwargs):
        now = time.perf_counter()
        row = {
            "step": state.global_step + 1,
            "epoch": self._epoch,
            "first_in_epoch": self._first_in_epoch,
            "after_log": self._logged_at == state.global_step and state.global_step > 0,
            "between_ms": _ms(now - self._previous_end),
            "profiled": self._profiler is not None,
        }
        if self._first_in_epoch:
            # From on_epoch_begin: the epoch's DataLoader iterator (workers started) and its first batch.
            row["epoch_start_ms"] = _ms(now - self._epoch_begin)
        self._first_in_epoch = False
        self.rows.append(row)
        self._step_begin = now
        if self.cuda:
            import torch

            begin = torch.cuda.Event(enable_timing=True)
            begin.record()
            self._events.append((begin, None))

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.rows[-1]["host_step_ms"] = _ms(now - self._step_begin)
        if self.cuda:
            import torch

            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._events[-1] = (self._events[-1][0], end)
        step = state.global_step
        if self._profiler is not None:
            self._profiler.step()
            if step >= self.profile_start + self.profile_steps - 1:
                self.record["profile"] = self._profiler.finish(self.profile_steps)
                self._profiler = None
        elif self.profile_start and step == self.profile_start - 1:
            self._profiler = StepProfiler(self.cuda)
        self._previous_end = time.perf_counter()

    def on_train_end(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        if self._profiler is not None:  # training ended inside the window
            self.record["profile"] = self._profiler.finish(len([r for r in self.rows if r["profiled"]]))
            self._profiler = None
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            previous_end = None
            for row, (begin, end) in zip(self.rows, self._events):
                if end is not None:
                    row["gpu_step_ms"] = round(begin.elapsed_time(end), 3)
                if previous_end is not None:
                    row["gpu_gap_ms"] = round(previous_end.elapsed_time(begin), 3)
                previous_end = end
        warmup = int(os.environ.get(ENV_WARMUP, "5"))
        self.record["summary"] = summarise(self.rows, warmup)
        self.record["steps"] = self.rows
        if train_dataloader is not None:
            try:
                self.record["batch"] = collate_again(train_dataloader, args.per_device_train_batch_size)
            except Exception as error:  # a description, not a figure: never lose the timings for it
                self.record["batch"] = {"error": repr(error)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.record, indent=1, default=str))


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return str(value)


def _underlying(dataloader):
    """The torch `DataLoader` inside accelerate's wrappers."""
    return getattr(dataloader, "base_dataloader", dataloader)


def describe_dataloader(dataloader) -> dict[str, Any]:
    """The training `DataLoader`'s settings: workers, pinned memory, persistence, prefetch, sampler and collator."""
    loader = _underlying(dataloader)
    batch_sampler = getattr(loader, "batch_sampler", None)
    sampler = getattr(batch_sampler, "sampler", None) or getattr(loader, "sampler", None)
    inner = getattr(batch_sampler, "batch_sampler", None)  # accelerate's BatchSamplerShard
    if inner is not None:
        sampler = getattr(inner, "sampler", sampler)
    collate = getattr(loader, "collate_fn", None)
    return {
        "num_workers": getattr(loader, "num_workers", None),
        "pin_memory": getattr(loader, "pin_memory", None),
        "persistent_workers": getattr(loader, "persistent_workers", None),
        "prefetch_factor": getattr(loader, "prefetch_factor", None),
        "batch_size": getattr(loader, "batch_size", None) or getattr(batch_sampler, "batch_size", None),
        "sampler": type(sampler).__name__ if sampler is not None else None,
        "collate_fn": type(collate).__name__ if collate is not None else None,
        "wrapper": type(dataloader).__name__,
        "clips": len(loader.dataset) if hasattr(loader, "dataset") else None,
    }


def collate_again(dataloader, batch_size: int, batches: int = 3) -> dict[str, Any]:
    """The first training batches the run's sampler draws, fetched and collated again in this process (after training:
    nothing measured above is disturbed): the time of each, the first one's keys and shapes, whether it has an
    attention mask, and on raw audio each batch's share of padding, the largest value in its padding and the range of
    its clips' standard deviations over their real samples (1 where each clip is normalised on its own)."""
    import itertools

    import numpy as np
    import torch

    loader = _underlying(dataloader)
    dataset, collate = loader.dataset, loader.collate_fn
    batch_sampler = getattr(loader, "batch_sampler", None)
    if batch_sampler is not None:
        index_batches = [list(indices) for indices in itertools.islice(iter(batch_sampler), batches)]
    else:
        index_batches = [list(range(b * batch_size, min((b + 1) * batch_size, len(dataset)))) for b in range(batches)]
    described: dict[str, Any] = {"fetch_and_collate_ms": [], "padded_fraction": [], "padding_abs_max": []}
    described["clip_std_range"] = []
    for number, indices in enumerate(index_batches):
        start = time.perf_counter()
        rows = dataset.__getitems__(indices) if hasattr(dataset, "__getitems__") else [dataset[i] for i in indices]
        batch = collate(rows)
        described["fetch_and_collate_ms"].append(_ms(time.perf_counter() - start))
        values, mask = batch.get("input_values"), batch.get("attention_mask")
        if number == 0:
            described["keys"] = sorted(batch.keys())
            described["shapes"] = {key: list(value.shape) for key, value in batch.items() if torch.is_tensor(value)}
            described["attention_mask"] = mask is not None
        if values is None or values.dim() != 2:  # cached feature-encoder outputs, spectrograms: no padding figures
            continue
        values = values.float().numpy()
        if mask is not None:
            lengths = mask.sum(dim=1).numpy()
        else:  # the real samples, from the clips themselves
            lengths = np.array([_clip_length(row) or values.shape[1] for row in rows])
        described["padded_fraction"].append(round(float(1 - lengths.sum() / values.size), 4))
        padding = [abs(values[i, int(n) :]).max() for i, n in enumerate(lengths) if n < values.shape[1]]
        described["padding_abs_max"].append(round(float(max(padding, default=0.0)), 4))
        deviations = [values[i, : int(n)].std() for i, n in enumerate(lengths)]
        described["clip_std_range"].append([round(float(min(deviations)), 4), round(float(max(deviations)), 4)])
    return described


def _clip_length(row: dict) -> Optional[int]:
    for key in ("waveform", "input_values"):
        if key in row:
            return len(row[key])
    audio = row.get("audio")
    if isinstance(audio, dict) and "array" in audio:
        return len(audio["array"])
    return None


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 3),
        "mean": round(statistics.fmean(values), 3),
        "max": round(max(values), 3),
        "sum": round(sum(values), 3),
    }


def summarise(rows: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    """Where the steady state's time went: the steps after `warmup` outside the profiled window. A step's wall time is
    the time between steps before it plus the host time inside it; the time between steps is split into the first
    step of an epoch (the epoch's workers start), the step after a log (the log reads the loss from the device) and
    the others (the wait for the next batch alone)."""
    steady = [row for row in rows if row["step"] > warmup and not row["profiled"] and "host_step_ms" in row]
    if not steady:
        return {"steps": 0}
    wall = [row["between_ms"] + row["host_step_ms"] for row in steady]
    kinds = {
        "first_in_epoch": [r for r in steady if r["first_in_epoch"]],
        "after_log": [r for r in steady if r["after_log"] and not r["first_in_epoch"]],
        "other": [r for r in steady if not r["first_in_epoch"] and not r["after_log"]],
    }
    total = sum(wall)
    summary: dict[str, Any] = {
        "steps": len(steady),
        "wall_ms": _stats(wall),
        "host_step_ms": _stats([r["host_step_ms"] for r in steady]),
        "between_ms": {kind: _stats([r["between_ms"] for r in group]) for kind, group in kinds.items()},
        "share_between": round(sum(r["between_ms"] for r in steady) / total, 4),
        "share_between_by_kind": {
            kind: round(sum(r["between_ms"] for r in group) / total, 4) for kind, group in kinds.items()
        },
        "share_host_step": round(sum(r["host_step_ms"] for r in steady) / total, 4),
    }
    if all("epoch_start_ms" in r for r in kinds["first_in_epoch"]):
        summary["epoch_start_ms"] = _stats([r["epoch_start_ms"] for r in kinds["first_in_epoch"]])
    if all("gpu_step_ms" in r and "gpu_gap_ms" in r for r in steady):
        gpu = [r["gpu_step_ms"] for r in steady]
        gaps = [r["gpu_gap_ms"] for r in steady]
        summary["gpu_step_ms"] = _stats(gpu)
        summary["gpu_gap_ms"] = _stats(gaps)
        # The stream's span of the steps over their wall time: an upper bound of the GPU's busy share (kernels may
        # leave gaps inside a step's span, which the profile's busy share counts).
        summary["gpu_span_share"] = round(sum(gpu) / (sum(gpu) + sum(gaps)), 4)
    return summary


class StepProfiler:
    """``torch.profiler`` from its creation until :meth:`finish`, summarised as where each step's time went."""

    def __init__(self, cuda: bool):
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        self.cuda = cuda
        self.profile = profile(activities=activities, record_shapes=False, with_stack=False)
        self.profile.__enter__()
        self.started = time.perf_counter()

    def step(self) -> None:
        self.profile.step()

    def finish(self, steps: int) -> dict[str, Any]:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - self.started
        self.profile.__exit__(None, None, None)
        processing = time.perf_counter()
        summary: dict[str, Any] = {"steps": steps, "window_wall_ms": _ms(wall), "wall_ms_per_step": _ms(wall / steps)}
        for name, part in (("events", self._events), ("operators", self._operators)):
            try:
                summary.update(part(steps))
            except Exception as error:  # one part failing keeps the others
                summary[f"{name}_error"] = repr(error)
        summary["processing_seconds"] = round(time.perf_counter() - processing, 1)
        return summary

    def _events(self, steps: int) -> dict[str, Any]:
        from torch.autograd import DeviceType

        events = self.profile.events()
        device = [e for e in events if e.device_type != DeviceType.CPU]
        host = [e for e in events if e.device_type == DeviceType.CPU]
        result: dict[str, Any] = {}
        step_marks = [e for e in host if e.name.startswith("ProfilerStep#")]
        if step_marks:
            result["profiler_step_host_ms"] = _stats([e.cpu_time_total / 1000 for e in step_marks])
        launches = [e for e in host if e.name.startswith(("cudaLaunchKernel", "cuLaunchKernel"))]
        result["kernel_launches_per_step"] = round(len(launches) / steps, 1)
        result["kernel_launch_host_ms_per_step"] = round(sum(e.cpu_time_total for e in launches) / 1000 / steps, 3)
        loader = [e for e in host if e.name.startswith("enumerate(DataLoader)")]
        result["dataloader_next_ms_per_step"] = round(sum(e.cpu_time_total for e in loader) / 1000 / steps, 3)
        optimizer = [e for e in host if e.name.startswith("Optimizer.step#")]
        result["optimizer_step_host_ms_per_step"] = round(sum(e.cpu_time_total for e in optimizer) / 1000 / steps, 3)
        syncs = [e for e in host if e.name in SYNCHRONISATIONS]
        result["synchronisations_per_step"] = round(len(syncs) / steps, 1)
        result["synchronisation_host_ms_per_step"] = round(sum(e.cpu_time_total for e in syncs) / 1000 / steps, 3)
        aten = [e for e in host if e.name.startswith("aten::")]
        result["aten_calls_per_step"] = round(len(aten) / steps, 1)
        if device:
            is_copy = ["memcpy" in e.name.lower() or "memset" in e.name.lower() for e in device]
            copies = [e for e, copy in zip(device, is_copy) if copy]
            kernels = [e for e, copy in zip(device, is_copy) if not copy]
            result["kernels_per_step"] = round(len(kernels) / steps, 1)
            result["kernel_ms_per_step"] = round(sum(e.time_range.elapsed_us() for e in kernels) / 1000 / steps, 3)
            result["copy_ms_per_step"] = round(sum(e.time_range.elapsed_us() for e in copies) / 1000 / steps, 3)
            intervals = sorted((e.time_range.start, e.time_range.end) for e in device)
            busy, current_start, current_end = 0.0, None, None
            for start, end in intervals:
                if current_end is None or start > current_end:
                    if current_end is not None:
                        busy += current_end - current_start
                    current_start, current_end = start, end
                else:
                    current_end = max(current_end, end)
            if current_end is not None:
                busy += current_end - current_start
            first = min(e.time_range.start for e in host) if host else intervals[0][0]
            last = max(e.time_range.end for e in host) if host else intervals[-1][1]
            result["device_busy_ms_per_step"] = round(busy / 1000 / steps, 3)
            result["device_busy_share"] = round(busy / max(last - first, 1), 4)
        return result

    def _operators(self, steps: int, top: int = 12) -> dict[str, Any]:
        averages = self.profile.key_averages()

        def device_time(event) -> float:
            return getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0)) or 0

        def rows(key) -> list[dict[str, Any]]:
            ranked = sorted(averages, key=key, reverse=True)[:top]
            return [
                {
                    "name": event.key[:90],
                    "calls_per_step": round(event.count / steps, 1),
                    "self_device_ms_per_step": round(device_time(event) / 1000 / steps, 3),
                    "self_host_ms_per_step": round(event.self_cpu_time_total / 1000 / steps, 3),
                }
                for event in ranked
            ]

        return {
            "top_by_device_time": rows(device_time) if self.cuda else [],
            "top_by_host_time": rows(lambda event: event.self_cpu_time_total),
        }


def install_from_environment() -> None:
    """Add :class:`StepTimes` to every `Trainer` built in this process, where ``SER_HF_BENCH_STEP_TIMES`` names its
    JSON file (``SER_HF_BENCH_PROFILE_START``: the first profiled step, 0 or unset: no profile)."""
    path = os.environ.get(ENV_PATH)
    if not path:
        return
    from transformers import Trainer

    profile_start = int(os.environ.get(ENV_PROFILE_START, "0"))
    profile_steps = int(os.environ.get(ENV_PROFILE_STEPS, "10"))
    init = Trainer.__init__

    def timed_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(StepTimes(Path(path), profile_start, profile_steps))

    Trainer.__init__ = timed_init


def describe(summary: dict[str, Any]) -> str:
    """A steady state's step timings (:func:`summarise`) in a line."""
    if not summary.get("steps"):
        return "no steady-state steps timed"
    kinds = summary["share_between_by_kind"]
    line = (
        f"step {summary['wall_ms']['median']:.1f} ms (median): between steps {summary['share_between']:.0%} of the "
        f"wall time (epoch starts {kinds['first_in_epoch']:.0%}, after logs {kinds['after_log']:.0%}), host inside "
        f"steps {summary['host_step_ms']['median']:.1f} ms"
    )
    if "gpu_step_ms" in summary:
        line += (
            f", stream span of a step {summary['gpu_step_ms']['median']:.1f} ms, gap "
            f"{summary['gpu_gap_ms']['median']:.1f} ms ({summary['gpu_span_share']:.0%} spanned)"
        )
    return line


__all__ = ["StepProfiler", "StepTimes", "collate_again", "describe", "install_from_environment", "summarise"]
