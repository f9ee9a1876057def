"""How many torch threads each run process uses: the CPUs the worker may use, shared by its concurrent runs.

Torch starts as many intra-op threads as the machine has cores in every process. A worker running two runs
at once on two cores then has four busy threads fighting for two cores; measured on such a machine, two
threads per run ran 2.5-4x slower than one. So each pool process sets
`torch.set_num_threads(WORKER_TORCH_THREADS or max(1, cpus // concurrency))`, where `cpus` counts the CPUs
this process may run on (`os.sched_getaffinity`: a container's or `taskset`'s limit, not the machine's).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def torch_threads_for(*, concurrency: int, override: int = 0, cpus: int | None = None) -> int:
    """Threads per run process: `override` when positive, else the CPUs shared by `concurrency` runs, >= 1."""
    if override > 0:
        return override
    cpus = available_cpus() if cpus is None else cpus
    return max(1, cpus // max(1, concurrency))


def torch_threads_apply(threads: int) -> int:
    """Set this process's torch threads; returns what torch now uses."""
    import torch

    torch.set_num_threads(threads)
    return torch.get_num_threads()
