"""One arm of bench/peer.py, in its own process: run ser-hf's training or transformers' example script unchanged, with
the same measurement added to both from outside, and write what it measured to a JSON file.

    python bench/peer/measure.py REPORT.json serhf RECIPE.yaml [--key value ...]
    python bench/peer/measure.py REPORT.json peer [run_audio_classification.py flags ...]

Every `Trainer` either builds gets a callback (by wrapping ``Trainer.__init__``) that records the wall clock of the
step loop (``on_train_begin`` to ``on_train_end``, and from the end of the first step to the end of the last, which
leaves out the first step's warm-up), Trainer's own logged ``train_runtime``, ``train_samples_per_second`` and
``train_loss``, the logged losses, and on CUDA ``torch.cuda.max_memory_allocated()`` (reset when training begins).
Peak RSS is this process's ``ru_maxrss`` (DataLoader workers are other processes: their peak is reported apart).
``SER_HF_BENCH_WARMUP_STEPS`` (default 5): the run's steady state starts at the end of that step; its start and end are
recorded on ``time.perf_counter``'s clock (CLOCK_MONOTONIC on Linux, the same in every process), so that bench/peer.py
can cut its nvidia-smi samples to it.

The example script calls ``evaluate.load("accuracy")``, which downloads the metric from the Hub; the benchmark runs
offline, so that one call is answered here with a local accuracy (the benchmark never evaluates, so it is not used).
"""

from __future__ import annotations

import json
import os
import resource
import runpy
import sys
import time
from pathlib import Path

PEER_SCRIPT = Path(__file__).resolve().parent / "run_audio_classification.py"


class _Accuracy:
    """What ``evaluate.load("accuracy").compute`` returns, without the Hub."""

    def compute(self, predictions, references):
        import numpy as np

        return {"accuracy": float(np.mean(np.asarray(predictions) == np.asarray(references)))}


def _offline_accuracy() -> None:
    import evaluate

    load = evaluate.load

    def offline_load(path, *args, **kwargs):
        return _Accuracy() if path == "accuracy" else load(path, *args, **kwargs)

    evaluate.load = offline_load


def _measure_every_trainer(record: dict) -> None:
    import torch
    from transformers import Trainer, TrainerCallback

    warmup_steps = int(os.environ.get("SER_HF_BENCH_WARMUP_STEPS", "5"))

    class StepLoopTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            record["batch_size"] = args.per_device_train_batch_size * args.gradient_accumulation_steps
            record["device"] = str(args.device)
            record["bf16"] = bool(args.bf16)
            record["dataloader_num_workers"] = args.dataloader_num_workers
            self._begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self._first_step_end = time.perf_counter()
            if state.global_step == warmup_steps:
                record["steady_clock"] = [time.perf_counter(), None]

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" in logs:
                record.setdefault("losses", []).append([state.global_step, logs["loss"]])
            for key in ("train_runtime", "train_samples_per_second", "train_loss"):
                if key in logs:
                    record[key] = logs[key]

        def on_train_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                record["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated()
            end = time.perf_counter()
            if "steady_clock" in record:
                record["steady_clock"][1] = end
            record["steps"] = state.global_step
            record["step_loop_seconds"] = end - self._begin
            if state.global_step > 1 and hasattr(self, "_first_step_end"):
                record["steps_after_first_seconds"] = end - self._first_step_end

    init = Trainer.__init__

    def measured_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(StepLoopTimer())

    Trainer.__init__ = measured_init


def main(argv: list[str]) -> None:
    report_path, arm, *arguments = argv
    record: dict = {"arm": arm}
    threads = os.environ.get("SER_HF_BENCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    _measure_every_trainer(record)
    start = time.perf_counter()
    if arm == "serhf":
        from ser_hf.train import main as train_main

        train_main(arguments)
    elif arm == "peer":
        _offline_accuracy()
        sys.argv = [str(PEER_SCRIPT), *arguments]
        runpy.run_path(str(PEER_SCRIPT), run_name="__main__")
    else:
        raise SystemExit(f"arm must be serhf or peer, got {arm!r}")
    record["process_seconds"] = time.perf_counter() - start
    # ru_maxrss is in kibibytes on Linux.
    record["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    record["peak_rss_workers_bytes"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    Path(report_path).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
