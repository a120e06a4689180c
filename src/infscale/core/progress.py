"""Progress of a long job in its log file: items done, rate and time left, so `tail -f` on a log shows where a
run stands. Used by sharded generation (per shard) and by training (a transformers TrainerCallback)."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts `total` units of work and logs `what: done/total (pct), rate/s, elapsed, ~left` at most every
    `every` seconds, and always when the work is complete. Units done before this run (`skipped`, e.g. shards a
    killed run finished) count as done but not in the rate."""

    def __init__(self, total: int, what: str, unit: str = "items", log: logging.Logger | None = None,
                 every: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.total, self.what, self.unit, self.every, self.clock = int(total), what, unit, every, clock
        self.log = log or logging.getLogger("infscale.core.progress")
        self.done = self.skipped = 0
        self.start = self.last = clock()

    def line(self) -> str:
        elapsed = self.clock() - self.start
        worked = self.done - self.skipped
        rate = worked / elapsed if elapsed > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = "done" if self.done >= self.total else ("~? left" if left != left else f"~{_duration(left)} left")
        return (f"{self.what}: {self.done}/{self.total} {self.unit} ({pct:.0f}%), {rate:.3g} {self.unit}/s, "
                f"{_duration(elapsed)} elapsed, {eta}")

    def update(self, n: int = 1, *, skipped: bool = False) -> None:
        self.done += n
        if skipped:
            self.skipped += n
        now = self.clock()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            self.log.info(self.line())


def trainer_callback(what: str, every: float = 30.0):
    """A transformers TrainerCallback that logs steps done, steps/s and time left (Progress)."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.progress = Progress(state.max_steps, what, "steps", every=every)
            self.progress.update(state.global_step, skipped=True)

        def on_step_end(self, args, state, control, **kwargs):
            self.progress.update(state.global_step - self.progress.done)

    return ProgressCallback()
