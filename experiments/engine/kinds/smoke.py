"""Smoke test for operators: count through N steps with progress, optionally fail.

Proves that workers are alive and drives the run-lifecycle tests: it reports
progress and a step series, checks for cancellation at every step, sleeps a
chosen delay per step, and can fail at a chosen step with an error. With
`SMOKE_ALLOW_EXIT=1` in the worker's environment it can also kill its own
worker process (`exit_at_step`), to test what happens when a worker dies.
It also draws one number from each seeded generator, so a replication with the
same seed must report the same draws.
"""

from __future__ import annotations

import os
import random
import signal
import time

import numpy as np
import torch
from pydantic import Field

from experiments.engine.params import KindParams
from experiments.engine.registry import KindResult

KEY = "smoke"
TITLE = "Smoke test (counts steps)"
DEVICE = "cpu"
SOFT_TIME_LIMIT = 3000
TIME_LIMIT = 3060
METRICS = {
    "steps_completed": "How many steps ran.",
    "sum_of_steps": "1 + 2 + ... + steps: a check that every step ran once.",
    "torch_draw": "torch.rand() after seeding: equal across runs with the same seed.",
    "numpy_draw": "numpy.random.rand() after seeding.",
    "python_draw": "random.random() after seeding.",
}
PART_METRICS = {"steps": "Steps counted in this part.", "sum": "Their sum."}
SERIES = {"count": "the step's number"}


class Params(KindParams):
    steps: int = Field(10, ge=1, le=10_000, description="How many steps to count.")
    delay_seconds: float = Field(0.0, ge=0.0, le=60.0, description="Sleep per step.")
    fail_at_step: int | None = Field(None, ge=1, le=10_000, description="Raise an error at this step.")
    exit_at_step: int | None = Field(
        None, ge=1, le=10_000, description="Kill the worker process at this step (needs SMOKE_ALLOW_EXIT=1)."
    )
    parts: int | None = Field(
        None,
        ge=2,
        le=10,
        description="Count in this many parts (P1, P2, ...), each stored as it finishes: for testing what a run "
        "cancelled or failed after some parts keeps.",
    )
    time_limit_seconds: int | None = Field(
        None,
        ge=1,
        le=TIME_LIMIT,
        description="A lower hard time limit for this run, with no soft limit before it: the worker process "
        "is killed when it passes. For testing what a hard time limit does.",
    )


def limits_for(params: Params) -> tuple[int, int]:
    if params.time_limit_seconds is None:
        return SOFT_TIME_LIMIT, TIME_LIMIT
    return params.time_limit_seconds, params.time_limit_seconds


class SmokeFailure(RuntimeError):
    pass


def run(params: Params, ctx) -> KindResult:
    draws = {
        "torch_draw": float(torch.rand(1).item()),
        "numpy_draw": float(np.random.rand()),
        "python_draw": random.random(),
    }
    if params.parts:
        total = sum(_count_part(params, ctx, i) for i in range(1, params.parts + 1))
    else:
        total = _count(params, ctx, 1, params.steps)
    metrics = {"steps_completed": params.steps, "sum_of_steps": total, **draws}
    return KindResult(findings=findings(metrics), metrics=metrics)


def _count_part(params: Params, ctx, i: int) -> int:
    """Count the i-th of `params.parts` parts of the steps as a part of the run (`ctx.part`)."""
    first, last = round(params.steps * (i - 1) / params.parts) + 1, round(params.steps * i / params.parts)
    with ctx.part(f"P{i}", f"part {i}") as part:
        total = _count(params, ctx, first, last)
        part.metrics = {"steps": last - first + 1, "sum": total}
        part.findings = [f"Counted steps {first} to {last}; their sum is {total}."]
    return total


def _count(params: Params, ctx, first: int, last: int) -> int:
    """Count from `first` to `last`, checking for cancellation and failing or exiting where asked."""
    total = 0
    for step in range(first, last + 1):
        ctx.check_cancelled()
        if params.fail_at_step == step:
            raise SmokeFailure(f"Failing at step {step} as asked (fail_at_step={step}).")
        if params.exit_at_step == step:
            if os.environ.get("SMOKE_ALLOW_EXIT") != "1":
                raise SmokeFailure("exit_at_step needs SMOKE_ALLOW_EXIT=1 in the worker's environment.")
            os.kill(os.getpid(), signal.SIGKILL)
        if params.delay_seconds:
            time.sleep(params.delay_seconds)
        total += step
        ctx.log_metric("count", step, step)
        ctx.progress(step / params.steps, f"step {step}/{params.steps}")
    return total


def findings(metrics: dict) -> list[str]:
    steps, total = metrics["steps_completed"], metrics["sum_of_steps"]
    expected = steps * (steps + 1) // 2
    check = "as expected" if total == expected else f"expected {expected}: a step ran twice or not at all"
    return [
        f"Counted {steps} steps; their sum is {total}, {check}.",
        f"Seeded draws: torch {metrics['torch_draw']:.4f}, NumPy {metrics['numpy_draw']:.4f}, Python "
        f"{metrics['python_draw']:.4f}; a run with the same seed must draw the same.",
    ]
