"""The worker's reporter: the estimated time left comes from the pace of the last two minutes."""

from __future__ import annotations

import pytest

from experiments import reporting
from experiments.reporting import DatabaseReporter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(reporting.time, "monotonic", clock)
    return clock


def test_no_estimate_before_the_run_has_moved_for_a_while(clock):
    reporter = DatabaseReporter(run_id=1, attempt=1, interval=1)
    assert reporter.seconds_left() is None
    reporter.progress(0.01, "")
    clock.now += 2
    reporter.progress(0.02, "")
    assert reporter.seconds_left() is None  # 2 s of pace is too little to go on


def test_the_estimate_follows_the_recent_pace_not_the_average(clock):
    reporter = DatabaseReporter(run_id=1, attempt=1, interval=1)
    # A slow first stage: 10% in 10 minutes ...
    for _ in range(600):
        clock.now += 1
        reporter.progress(reporter._pace[-1][1] + 0.1 / 600 if reporter._pace else 0.0, "")
    # ... then a fast one: 1% a second for two minutes.
    for _ in range(120):
        clock.now += 1
        reporter.progress(reporter._pace[-1][1] + 0.005, "")
    left = reporter.seconds_left()
    fraction = reporter._pace[-1][1]
    assert left == pytest.approx((1 - fraction) / 0.005, rel=0.05)  # not the 10-minute average's pace
    assert len(reporter._pace) <= 125  # samples older than the window are dropped


def test_a_stalled_run_has_a_growing_estimate(clock):
    reporter = DatabaseReporter(run_id=1, attempt=1, interval=1)
    for i in range(20):
        clock.now += 1
        reporter.progress(0.01 * (i + 1), "")
    before = reporter.seconds_left()
    clock.now += 30  # no progress for 30 s
    assert reporter.seconds_left() > before
