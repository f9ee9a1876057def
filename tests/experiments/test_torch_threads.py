"""Torch threads per run process: WORKER_TORCH_THREADS, else the worker's CPUs // its concurrency, at least 1."""

from __future__ import annotations

import os
import re

import pytest

from experiments.models import WorkerPresence
from experiments.torch_threads import available_cpus, torch_threads_for
from tests.experiments.conftest import wait_for


@pytest.mark.parametrize(
    ("cpus", "concurrency", "expected"), [(8, 1, 8), (8, 2, 4), (8, 3, 2), (2, 2, 1), (1, 4, 1), (16, 0, 16)]
)
def test_the_cpus_are_shared_by_the_concurrent_runs(cpus, concurrency, expected):
    assert torch_threads_for(concurrency=concurrency, cpus=cpus) == expected


def test_the_override_wins():
    assert torch_threads_for(concurrency=4, cpus=2, override=3) == 3


def test_the_cpus_are_those_this_process_may_use():
    assert available_cpus() == len(os.sched_getaffinity(0))
    assert torch_threads_for(concurrency=1) == len(os.sched_getaffinity(0))


def test_a_worker_s_pool_process_sets_its_torch_threads_and_says_so(start_worker):
    worker = start_worker(queues="cpu", WORKER_TORCH_THREADS="3")
    presence = wait_for(WorkerPresence.objects.first, timeout=30, what="the worker's presence record")
    log = wait_for(
        lambda: "pool process" in worker.log() and worker.log(), timeout=30, what="the pool process to log its threads"
    )
    assert "torch threads per run process: 3 (WORKER_TORCH_THREADS)" in log
    child = re.search(r"pool process (\d+): (\d+) torch threads", log)
    assert child and child.group(2) == "3"  # what torch reports in the child after setting it
    assert presence.torch_threads == 3 and presence.concurrency == 1
    assert int(child.group(1)) in presence.pool_pids and presence.pid == worker.process.pid
