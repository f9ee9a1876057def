"""Run one kind with validated params inside a context: seed, run, check the result."""

from __future__ import annotations

import math
import re
import warnings

from pydantic import BaseModel

from experiments.engine.errors import EngineError
from experiments.engine.registry import Kind, KindResult
from experiments.engine.runtime import RunContext, part_metrics, seed_everything

MAX_FINDINGS = 20
MAX_FINDING_CHARS = 400

METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,99}")  # the whole name: use fullmatch


class BadResult(EngineError):
    """A kind returned something that is not a result (a bug in the kind, reported as the run's error)."""


def execute(kind: Kind, params: BaseModel, ctx: RunContext) -> KindResult:
    """Seed every generator with ctx.seed, run the kind, and return its checked result.

    Warnings raised while the kind runs go to the run's log (their text only, without file paths)."""
    seed_everything(ctx.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # each warning once per place it is raised from
        # Logged as it happens (with its time), its text only: where it was raised is a server path.
        warnings.showwarning = lambda message, category, *_, **__: ctx.log(
            f"{category.__name__}: {message}", level="warning"
        )
        result = kind.run(params, ctx)
    if not isinstance(result, KindResult):
        raise BadResult(f"Kind {kind.key!r} returned {type(result).__name__}, not a KindResult.")
    findings = result.findings
    if not isinstance(findings, list) or not findings or not all(isinstance(f, str) and f for f in findings):
        raise BadResult(f"Kind {kind.key!r} must state its findings: a non-empty list of sentences.")
    result.findings = [finding[:MAX_FINDING_CHARS] for finding in findings[:MAX_FINDINGS]]
    if result.headline is not None and result.headline not in ctx.artifacts:
        raise BadResult(f"Kind {kind.key!r} names a headline figure it did not save: {result.headline!r}.")
    metrics: dict[str, float | None] = {}
    for name, value in {**part_metrics(ctx.parts), **result.metrics}.items():
        if not METRIC_NAME.fullmatch(name):
            raise BadResult(f"Kind {kind.key!r} returned a metric with a bad name: {name!r}.")
        number = float("nan") if value is None else float(value)
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
