import logging

from infscale.core.progress import Progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_progress_logs_done_rate_and_time_left(caplog):
    clock = Clock()
    p = Progress(100, "generate", "problems", every=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="infscale.core.progress"):
        clock.t = 5.0
        p.update(10)  # within 10 s of the last line: quiet
        assert caplog.messages == []
        clock.t = 20.0
        p.update(30)
        assert caplog.messages[-1] == "generate: 40/100 problems (40%), 2 problems/s, 0:20 elapsed, ~0:30 left"
        clock.t = 21.0
        p.update(60)  # the end is always logged
        assert caplog.messages[-1].startswith("generate: 100/100 problems (100%)") and "done" in caplog.messages[-1]


def test_work_finished_before_a_resume_does_not_inflate_the_rate(caplog):
    clock = Clock()
    p = Progress(100, "shards", every=0, clock=clock)
    with caplog.at_level(logging.INFO, logger="infscale.core.progress"):
        p.update(50, skipped=True)  # reused shards of a killed run, at once
        clock.t = 50.0
        p.update(10)
        assert "60/100 items (60%), 0.2 items/s" in caplog.messages[-1] and "~3:20 left" in caplog.messages[-1]
