"""Run one kind with validated params inside a context: seed, run, check the result."""

from __future__ import annotations

import math
import re

from pydantic import BaseModel

from experiments.engine.errors import EngineError
from experiments.engine.registry import Kind, KindResult
from experiments.engine.runtime import RunContext, seed_everything

METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,99}$")


class BadResult(EngineError):
    """A kind returned something that is not a result (a bug in the kind, reported as the run's error)."""


def execute(kind: Kind, params: BaseModel, ctx: RunContext) -> KindResult:
    """Seed every generator with ctx.seed, run the kind, and return its checked result."""
    seed_everything(ctx.seed)
    result = kind.run(params, ctx)
    if not isinstance(result, KindResult):
        raise BadResult(f"Kind {kind.key!r} returned {type(result).__name__}, not a KindResult.")
    metrics: dict[str, float | None] = {}
    for name, value in result.metrics.items():
        if not METRIC_NAME.match(name):
            raise BadResult(f"Kind {kind.key!r} returned a metric with a bad name: {name!r}.")
        number = float(value)
        metrics[name] = number if math.isfinite(number) else None
    result.metrics = metrics
    result.summary = _finite(result.summary)
    ctx.progress(1.0, "done")
    return result


def _finite(value):
    """The summary as strict JSON: NaN and infinities (a diverged model) become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
