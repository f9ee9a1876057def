"""What the training benchmarks share: a reporter that notes when each progress report arrives, and the
command-line options every one of them takes."""

from __future__ import annotations

import argparse
import time

from experiments.engine.runtime import MemoryReporter


class TimedReporter(MemoryReporter):
    """Notes when each progress report arrives (`times[i]` follows the i-th report)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def progress(self, fraction: float, message: str) -> None:
        self.times.append(time.perf_counter())
        super().progress(fraction, message)


def add_common_arguments(parser: argparse.ArgumentParser, *, warmup: int) -> None:
    """--warmup (untimed steps), --repeats and --threads."""
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps at the start of each training")
    parser.add_argument("--repeats", type=int, default=3, help="trainings of each trainer and size")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
