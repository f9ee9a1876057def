"""PCA of a training run's checkpoints on fixed random tokens, and the change points of training.

Each checkpoint of a `train_transformer` run is summarised by its next-token
log-probabilities (or only its per-token losses) on a fixed set of repeated
random tokens; PCA across checkpoints gives the training trajectory, plotted
in its first two components, as in Olsson et al. 2022 ("In-context Learning
and Induction Heads"). A phase change is a burst of movement along it: the
kind tests every stretch between checkpoints for one, against a smooth trend
and the trajectory's own noise (see `experiments.engine.analysis.trajectory`),
and reports the significant ones with their p-values.

Beside them, per checkpoint: the best induction and copying scores, and the
in-context-learning score (loss on the first half of the repeated tokens minus
loss on the second half, nats), with the stretch where that score grew most.
In a model that forms an induction circuit, the change point, the jump of the
in-context-learning score and the formation of the heads fall together.

How well it holds (the project's own checks, seeds not used to tune it): 1-layer
models, which have no phase change, gave no change point; 2-layer models that
formed the circuit gave one within 25% of the formation step (see
docs/science.md for the seeds and numbers).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from experiments.engine.analysis.heads import THRESHOLDS, head_scores
from experiments.engine.analysis.trajectory import RULE, trajectory
from experiments.engine.datasets import RepeatedRandomTokens
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.kinds._inputs import data_fits_model, repeated_tokens_for
from experiments.engine.models import ArtifactResolver, RunModelRef, load_checkpoint, read_checkpoint_config
from experiments.engine.params import KindParams
from experiments.engine.plots import trajectory as trajectory_figure
from experiments.engine.registry import KindResult
from experiments.engine.runtime import Report
from experiments.engine.training import half_losses
from experiments.engine.types import RecordId

KEY = "checkpoint_pca"
TITLE = "PCA of checkpoints and the change points of training"
DEVICE = "cpu"
SOFT_TIME_LIMIT = 3600
TIME_LIMIT = 3660
METRICS = {
    "n_checkpoints": "Checkpoints analysed.",
    "n_change_points": "Significant change points: bursts of the trajectory's speed (see the rule in the summary).",
    "change_point_step": "Checkpoint that ends the largest significant burst.",
    "change_point_speed_ratio": "How many times faster than its trend the trajectory moved in that burst.",
    "change_point_p": "Bonferroni-adjusted p-value of that burst against the trajectory's own noise.",
    "strongest_burst_ratio": "The largest burst's speed over the trend, significant or not (about 1.5 or less "
    "without a phase change).",
    "largest_icl_change_step": "Checkpoint that ends the stretch where the in-context-learning score grew most.",
    "largest_icl_change": "That growth (nats).",
    "final_icl_score": "In-context-learning score of the last checkpoint: first-half minus second-half loss (nats).",
    "induction_formation_step": "First checkpoint whose best head has induction score >= 0.4.",
    "copying_formation_step": "First checkpoint whose best head has copying score >= 0.4.",
    "pc1_explained": "Share of variance across checkpoints on the first principal component.",
    "pc2_explained": "Share of variance on the second principal component.",
}

SERIES = {
    "max_induction_score": "best induction score of any head (score)",
    "max_copying_score": "best copying score of any head (score)",
    "icl_score": "in-context-learning score: first-half minus second-half loss (nats)",
    "repeated_tokens_loss": "loss on repeated random tokens (nats)",
}


class Params(KindParams):
    run: RecordId = Field(description="A train_transformer run whose checkpoints to analyse.")
    checkpoints: list[str] | None = Field(None, max_length=200, description="Only these checkpoints (default: all).")
    data: RepeatedRandomTokens = Field(RepeatedRandomTokens(n_sequences=16, half_length=31, seed=2024))
    measure: Literal["log_probs", "losses"] = Field(
        "log_probs",
        description="What summarises a checkpoint: its full next-token log-probabilities (logits up to each "
        "position's normalising constant), or only the per-token losses.",
    )


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: the run saved the checkpoints asked for, at least 3 of them (as `analyse`
    needs), and the sequences fit their context."""
    try:
        saved = [name for _, name in runs.checkpoints(params.run)]
    except ModelNotAvailable as exc:
        return {"run": str(exc)}
    if params.checkpoints is None:
        if len(saved) < 3:
            return {"run": f"PCA of a trajectory needs at least 3 checkpoints; run {params.run} saved {len(saved)}."}
        last = saved[-1]
    else:
        wanted = set(params.checkpoints)
        unknown = sorted(wanted - set(saved))
        if unknown:
            return {
                "checkpoints": f"Run {params.run} has no checkpoints named {', '.join(unknown)}; "
                f"it has: {', '.join(saved)}."
            }
        if len(wanted) < 3:
            return {"checkpoints": f"PCA of a trajectory needs at least 3 checkpoints; {len(wanted)} are selected."}
        last = [name for name in saved if name in wanted][-1]
    return data_fits_model(params.data, RunModelRef(run=params.run, artifact=last), runs)


MAX_VECTOR_ELEMENTS = 5_000_000


def checkpoint_vectors(
    checkpoints: list[tuple[int, Path]], data: RepeatedRandomTokens, measure: str, ctx, report: Report
) -> dict:
    """Per checkpoint: its summary vector, best induction and copying scores and in-context-learning score,
    loading one checkpoint at a time."""
    vectors = []
    series: dict[str, list[float]] = {"max_induction_score": [], "max_copying_score": [], "icl_score": []}
    for i, (step, path) in enumerate(checkpoints):
        ctx.check_cancelled()
        model, config = load_checkpoint(path, device=ctx.device)
        tokens = repeated_tokens_for(model, data, ctx.device)
        size = tokens.numel() * (config.d_vocab if measure == "log_probs" else 1)
        if size > MAX_VECTOR_ELEMENTS:
            raise EngineError(
                f"{measure} of {data.n_sequences} sequences give {size:,} numbers per checkpoint (limit "
                f"{MAX_VECTOR_ELEMENTS:,}); use fewer sequences or measure='losses'."
            )
        with torch.no_grad():
            logits = model(tokens)[:, :-1].float()
            loss = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")
        # On random tokens the loss stays near log(vocab) until induction forms, so the losses alone
        # move along one line; the full distributions also show what changes before that.
        vectors.append((loss if measure == "losses" else logits.log_softmax(dim=-1)).flatten().cpu())
        scores = head_scores(model, tokens)
        first, second = half_losses(loss, data.half_length)
        values = {
            "max_induction_score": float(scores.induction.max()),
            "max_copying_score": float(scores.scores["copying"].max()),
            "icl_score": float(first - second),
        }
        for name, value in values.items():
            series[name].append(value)
            ctx.log_metric(name, value, step)
        ctx.log_metric("repeated_tokens_loss", float(loss.mean()), step)
        report((i + 1) / len(checkpoints), f"checkpoint {step} ({i + 1}/{len(checkpoints)})")
    return {"vectors": torch.stack(vectors), **series}


def _first_step(steps: list[int], values: list[float], threshold: float) -> int | None:
    return next((s for s, v in zip(steps, values, strict=True) if v >= threshold), None)


def analyse(
    checkpoints: list[tuple[int, Path]], params: Params, ctx, *, prefix: str = "", label: str = "",
    report: Report | None = None,
) -> tuple[dict, dict]:  # fmt: skip
    """Metrics and summary for checkpoints given as (step, file). `prefix` names the artifacts, `label` (a model's
    name) heads the figure's title, and `report` takes progress 0..1 (a composite kind passes the part of its
    own range it gives this)."""
    if len(checkpoints) < 3:
        raise EngineError(f"PCA of a trajectory needs at least 3 checkpoints; got {len(checkpoints)}.")
    steps = [step for step, _ in checkpoints]
    measured = checkpoint_vectors(checkpoints, params.data, params.measure, ctx, report or ctx.progress)
    warmup = read_checkpoint_config(checkpoints[-1][1])[1].get("warmup_steps", 0)  # older checkpoints: none
    result = trajectory(measured["vectors"], steps, from_step=warmup)
    change_steps = [c.step for c in result.change_points]
    ctx.save_artifact(
        f"{prefix}trajectory",
        trajectory_figure(
            result.coords[:, 0].tolist(), result.coords[:, 1].tolist(), steps, change_steps,
            title=f"{label + ': ' if label else ''}training trajectory (PCA of per-token {params.measure})",
        ),
    )  # fmt: skip
    ctx.save_artifact(f"{prefix}pca_coords", {"coords": result.coords.contiguous(), "steps": torch.tensor(steps)})
    icl = measured["icl_score"]
    growth = [b - a for a, b in itertools.pairwise(icl)]
    biggest = max(range(len(growth)), key=growth.__getitem__)
    metrics = {
        "n_checkpoints": len(steps),
        "n_change_points": len(result.change_points),
        "largest_icl_change_step": steps[biggest + 1],
        "largest_icl_change": growth[biggest],
        "final_icl_score": icl[-1],
        "pc1_explained": result.explained[0],
        "pc2_explained": result.explained[1] if len(result.explained) > 1 else 0.0,
    }
    if result.strongest is not None:
        metrics["strongest_burst_ratio"] = result.strongest.speed_ratio
    if result.change_points:
        top = result.change_points[0]
        metrics.update(change_point_step=top.step, change_point_speed_ratio=top.speed_ratio, change_point_p=top.p_value)
    for family in ("induction", "copying"):
        formed = _first_step(steps, measured[f"max_{family}_score"], THRESHOLDS[family])
        if formed is not None:
            metrics[f"{family}_formation_step"] = formed
    summary = {
        "change_points": [c.as_dict() for c in result.change_points],
        "strongest_burst": result.strongest.as_dict() if result.strongest else None,
        "change_point_rule": RULE,
        "tested_from_step": warmup,
        "steps": steps,
        "max_induction_score": [round(v, 4) for v in measured["max_induction_score"]],
        "max_copying_score": [round(v, 4) for v in measured["max_copying_score"]],
        "icl_score": [round(v, 4) for v in icl],
        "explained_variance": result.explained,
    }
    return metrics, summary


def run(params: Params, ctx) -> KindResult:
    resolver = ctx.artifact_resolver
    problems = check_references(params, resolver)  # checked when queued too; the run may have changed since
    if problems:
        raise EngineError(" ".join(problems.values()))
    available = resolver.checkpoints(params.run)
    if params.checkpoints is not None:
        available = [(step, name) for step, name in available if name in set(params.checkpoints)]
    paths = [(step, resolver.artifact_path(params.run, name)) for step, name in available]
    metrics, summary = analyse(paths, params, ctx)
    return KindResult(findings=findings(metrics, summary), metrics=metrics, headline="trajectory", summary=summary)


def _near(a: int | None, b: int | None, steps: list[int]) -> bool:
    """Whether two checkpoint steps are the same or neighbours in the series."""
    return a is not None and b is not None and abs(steps.index(a) - steps.index(b)) <= 1


def findings(metrics: dict, summary: dict) -> list[str]:
    steps = summary["steps"]
    change = metrics.get("change_point_step")
    if change is not None:
        n = metrics["n_change_points"]
        lines = [
            f"{n} change point{'s' if n > 1 else ''} in the trajectory: the strongest is the stretch ending at step "
            f"{change}, {metrics['change_point_speed_ratio']:.1f}x faster than the trend "
            f"(Bonferroni-adjusted p = {metrics['change_point_p']:.2g})."
        ]
    else:
        burst = metrics.get("strongest_burst_ratio")
        lines = [
            "No change point: no stretch of the trajectory moved significantly faster than its trend"
            + (f" (the strongest burst was {burst:.1f}x the trend)." if burst is not None else ".")
        ]
    icl_step = metrics["largest_icl_change_step"]
    lines.append(
        f"In-context learning grew most in the stretch ending at step {icl_step} "
        f"({metrics['largest_icl_change']:+.2f} nats); it ends at {metrics['final_icl_score']:.2f} nats of gain."
    )
    formed = [(f, metrics.get(f"{f}_formation_step")) for f in ("induction", "copying")]
    formed_text = [f"{family} heads at step {step}" for family, step in formed if step is not None]
    if formed_text:
        lines.append(f"First checkpoint with {' and '.join(formed_text)} (score >= 0.4).")
    else:
        lines.append("No induction or copying head formed by the last checkpoint.")
    if change is not None:
        agrees = _near(change, icl_step, steps)
        lines.append(
            f"The change point {'coincides with' if agrees else 'does not coincide with'} the jump in in-context "
            "learning (same or neighbouring checkpoint)."
        )
    return lines
