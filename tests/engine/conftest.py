"""Engine fixtures: runs executed in-process, and a resolver that finds their artifacts like the platform does."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.engine.errors import ModelNotAvailable
from experiments.engine.executor import execute
from experiments.engine.kinds import register_kinds
from experiments.engine.registry import KindResult, registry
from experiments.engine.runtime import MemoryReporter, RunContext

register_kinds()  # the experiments app does this at start-up; these tests run without Django


class LocalRuns:
    """Runs kept in memory, numbered from 1; implements the artifact resolver the kinds use.

    `device` is where the kinds run: the CPU, or `cuda` in the GPU tests (tests/engine/test_gpu.py)."""

    def __init__(self, root: Path, *, device: str = "cpu") -> None:
        self.root = root
        self.device = device
        self.contexts: dict[int, RunContext] = {}

    def run(self, key: str, params: dict, *, seed: int = 0) -> tuple[int, KindResult, RunContext]:
        run_id = len(self.contexts) + 1
        ctx = RunContext(
            seed=seed, device=self.device, artifact_dir=self.root / str(run_id), reporter=MemoryReporter(),
            artifact_resolver=self,
        )  # fmt: skip
        kind = registry.get(key)
        result = execute(kind, kind.parse_params(params), ctx)
        self.contexts[run_id] = ctx
        return run_id, result, ctx

    def adopt(self, ctx: RunContext) -> int:
        """Number a run executed elsewhere (another process, with its own LocalRuns) as one of these."""
        run_id = len(self.contexts) + 1
        ctx.artifact_resolver = self
        self.contexts[run_id] = ctx
        return run_id

    def artifact_path(self, run_id: int, name: str) -> Path:
        ctx = self.contexts.get(run_id)
        if ctx is None or name not in ctx.artifacts:
            raise ModelNotAvailable(f"Run {run_id} has no artifact {name!r}.")
        return ctx.artifact_dir / ctx.artifacts[name].path

    def checkpoints(self, run_id: int) -> list[tuple[int, str]]:
        ctx = self.contexts[run_id]
        found = [(rec.meta["step"], name) for name, rec in ctx.artifacts.items() if rec.artifact_type == "checkpoint"]
        return sorted(found)


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory) -> LocalRuns:
    return LocalRuns(tmp_path_factory.mktemp("runs"))
