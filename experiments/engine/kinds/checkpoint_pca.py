"""PCA of a training run's checkpoints on fixed random tokens, and the kinks of the trajectory.

Each checkpoint of a `train_transformer` run is summarised by its next-token
log-probabilities (or only its per-token losses) on a fixed set of repeated
random tokens; PCA across checkpoints gives the training trajectory,
plotted in its first two components. Sharp turns in it are reported as the
steps where a phase change happened, as in Olsson et al. 2022 ("In-context
Learning and Induction Heads", the "PCA of per-token losses" analysis): in a
model that forms induction heads, the trajectory turns when they form. The
induction score of every checkpoint is tracked alongside, so the two can be
compared directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from experiments.engine.analysis.heads import THRESHOLDS, head_scores
from experiments.engine.analysis.trajectory import MIN_ANGLE_DEGREES, trajectory
from experiments.engine.datasets import RepeatedRandomTokens
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.kinds._inputs import data_fits_model, repeated_tokens_for
from experiments.engine.models import ArtifactResolver, RunModelRef, load_checkpoint
from experiments.engine.params import KindParams
from experiments.engine.plots import trajectory as trajectory_figure
from experiments.engine.registry import KindResult
from experiments.engine.types import RecordId

KEY = "checkpoint_pca"
TITLE = "PCA of checkpoints and the kinks of training"
DEVICE = "cpu"
SOFT_TIME_LIMIT = 3600
TIME_LIMIT = 3660
METRICS = {
    "n_checkpoints": "Checkpoints analysed.",
    "n_kinks": "Sharp turns of the trajectory (phase changes).",
    "sharpest_kink_step": "Training step of the sharpest turn.",
    "first_kink_step": "Training step of the earliest turn.",
    "induction_formation_step": "First checkpoint whose best head has induction score >= 0.4.",
    "pc1_explained": "Share of variance across checkpoints on the first principal component.",
    "pc2_explained": "Share of variance on the second principal component.",
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
    min_angle: float = Field(MIN_ANGLE_DEGREES, ge=10, le=170, description="Smallest turn (degrees) called a kink.")


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
    checkpoints: list[tuple[int, Path]], data: RepeatedRandomTokens, measure: str, ctx, *, prefix: str = ""
) -> dict:
    """Per-checkpoint summary vectors and best induction scores, loading one checkpoint at a time."""
    vectors, induction = [], []
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
        best = float(head_scores(model, tokens).induction.max())
        induction.append(best)
        ctx.log_metric(f"{prefix}max_induction_score", best, step)
        ctx.log_metric(f"{prefix}repeated_tokens_loss", float(loss.mean()), step)
        ctx.progress(0.05 + 0.85 * (i + 1) / len(checkpoints), f"checkpoint {step} ({i + 1}/{len(checkpoints)})")
    return {"vectors": torch.stack(vectors), "induction": induction}


def analyse(checkpoints: list[tuple[int, Path]], params: Params, ctx, *, prefix: str = "") -> tuple[dict, dict]:
    """Metrics and summary for checkpoints given as (step, file); `prefix` names the figure for comparisons."""
    if len(checkpoints) < 3:
        raise EngineError(f"PCA of a trajectory needs at least 3 checkpoints; got {len(checkpoints)}.")
    steps = [step for step, _ in checkpoints]
    measured = checkpoint_vectors(checkpoints, params.data, params.measure, ctx, prefix=prefix)
    result = trajectory(measured["vectors"], steps, min_angle=params.min_angle)
    kink_steps = [k["step"] for k in result.kinks]
    formation = next(
        (s for s, v in zip(steps, measured["induction"], strict=True) if v >= THRESHOLDS["induction"]), None
    )
    ctx.save_artifact(
        f"{prefix}trajectory",
        trajectory_figure(
            result.coords[:, 0].tolist(), result.coords[:, 1].tolist(), steps, kink_steps,
            title=f"{prefix}training trajectory (PCA of per-token {params.measure})",
        ),
    )  # fmt: skip
    ctx.save_artifact(f"{prefix}pca_coords", {"coords": result.coords.contiguous(), "steps": torch.tensor(steps)})
    metrics = {
        "n_checkpoints": len(steps),
        "n_kinks": len(result.kinks),
        "pc1_explained": result.explained[0],
        "pc2_explained": result.explained[1] if len(result.explained) > 1 else 0.0,
    }
    if result.kinks:
        metrics["sharpest_kink_step"] = result.kinks[0]["step"]
        metrics["first_kink_step"] = min(kink_steps)
    if formation is not None:
        metrics["induction_formation_step"] = formation
    summary = {
        "kinks": result.kinks,
        "steps": steps,
        "max_induction_score": [round(v, 4) for v in measured["induction"]],
        "explained_variance": result.explained,
    }
    return metrics, summary


def run(params: Params, ctx) -> KindResult:
    resolver = ctx.artifact_resolver
    available = resolver.checkpoints(params.run)
    if params.checkpoints is not None:
        wanted = set(params.checkpoints)
        missing = wanted - {name for _, name in available}
        if missing:
            raise EngineError(f"Run {params.run} has no checkpoints named {', '.join(sorted(missing))}.")
        available = [(step, name) for step, name in available if name in wanted]
    paths = [(step, resolver.artifact_path(params.run, name)) for step, name in available]
    metrics, summary = analyse(paths, params, ctx)
    return KindResult(metrics=metrics, summary=summary)
