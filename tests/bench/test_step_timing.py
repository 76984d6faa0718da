"""bench/step_timing.py: the callback that times every step of a `Trainer` from inside it (the GPU profile of issue
95, bench/gpu_profile.py), run here on a tiny model on CPU, and the summary it writes."""

from __future__ import annotations

import json

import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from bench.step_timing import StepTimes, summarise


class _TinyClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, input_values, labels=None):
        logits = self.linear(input_values)
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


def _rows(count: int) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    return [{"input_values": torch.randn(4, generator=generator), "labels": i % 3} for i in range(count)]


def test_every_step_is_timed_and_a_window_profiled_from_inside_the_trainer(tmp_path):
    """Two epochs of three steps: each step has its time between steps and inside it, the first step of each epoch
    is marked, steps 3-4 are profiled, and the batch is described again after training."""
    path = tmp_path / "steps.json"
    args = TrainingArguments(
        str(tmp_path / "out"),
        per_device_train_batch_size=2,
        num_train_epochs=2,
        logging_steps=2,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = Trainer(model=_TinyClassifier(), args=args, train_dataset=_rows(6))
    trainer.add_callback(StepTimes(path, profile_start=3, profile_steps=2))
    trainer.train()
    record = json.loads(path.read_text())
    steps = record["steps"]
    assert [row["step"] for row in steps] == [1, 2, 3, 4, 5, 6]
    assert [row["first_in_epoch"] for row in steps] == [True, False, False, True, False, False]
    assert [row["profiled"] for row in steps] == [False, False, True, True, False, False]
    assert [row["after_log"] for row in steps] == [False, False, True, False, True, False]
    assert all(row["between_ms"] >= 0 and row["host_step_ms"] > 0 for row in steps)
    assert record["profile"]["steps"] == 2 and record["profile"]["aten_calls_per_step"] > 0
    # The steady state: step 6 alone (after the 5 warm-up steps, outside the profiled window).
    assert record["profile"]["top_by_host_time"] and record["summary"]["steps"] == 1
    assert record["settings"]["per_device_train_batch_size"] == 2 and record["model"]["class"] == "_TinyClassifier"
    assert record["batch"]["keys"] == ["input_values", "labels"] and len(record["batch"]["fetch_and_collate_ms"]) == 3


def test_the_summary_splits_the_time_between_steps_by_what_happened_there():
    rows = [
        {"step": 1, "first_in_epoch": True, "after_log": False, "between_ms": 500.0, "host_step_ms": 50.0},
        {"step": 2, "first_in_epoch": True, "after_log": False, "between_ms": 100.0, "host_step_ms": 50.0},
        {"step": 3, "first_in_epoch": False, "after_log": True, "between_ms": 20.0, "host_step_ms": 30.0},
        {"step": 4, "first_in_epoch": False, "after_log": False, "between_ms": 10.0, "host_step_ms": 40.0},
    ]
    for row, (span, gap) in zip(rows, [(60, 0), (40, 100), (30, 20), (45, 5)]):
        row.update(profiled=False, gpu_step_ms=float(span), gpu_gap_ms=float(gap))
    summary = summarise(rows, warmup=1)  # step 1 is warm-up
    assert summary["steps"] == 3
    assert summary["wall_ms"]["sum"] == 250.0
    assert summary["share_between"] == round(130 / 250, 4)
    assert summary["share_between_by_kind"] == {"first_in_epoch": 0.4, "after_log": 0.08, "other": 0.04}
    assert summary["gpu_span_share"] == round(115 / (115 + 125), 4)
