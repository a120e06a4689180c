"""The training side of a smoke run (infscale.smoke): the steps of one training job, timed, and this rank's peak
GPU and host memory, nothing saved."""
from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from infscale.core.io import write_json


class StepTimer:
    """A Trainer callback that keeps each step's wall seconds."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Timer(TrainerCallback):
            def __init__(self):
                self.seconds, self._start = [], None

            def on_step_begin(self, args, state, control, **kwargs):
                self._start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                self.seconds.append(time.perf_counter() - self._start)

        return _Timer()


def run_smoke_steps(trainer, out_dir: str | Path) -> dict:
    """Train the smoke steps with `trainer` (built by sft.run_training) and write this rank's peaks to
    out_dir/rank<r>.json. Nothing is saved."""
    import torch

    timer = StepTimer()
    trainer.add_callback(timer)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    rank = int(os.environ.get("RANK", "0"))
    report = {"rank": rank, "seconds": timer.seconds,
              "peak_gpu_bytes": torch.cuda.max_memory_reserved() if cuda else None,
              "peak_host_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_json(Path(out_dir) / f"rank{rank}.json", report)
    return report
