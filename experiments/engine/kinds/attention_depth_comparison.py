"""How do 1-, 2-, 3- and 4-layer attention-only transformers differ? (the catalogue's first idea)

Trains attention-only models of each depth with the same data, width and
budget (or takes existing `train_transformer` runs), then runs the toolkit on
each: induction/previous-token head scores on repeated random tokens, Q/K/V
composition against a random baseline of the same shape (Elhage et al. 2021),
zero-ablation of every head with the heads ranked and typed, and the PCA of
its checkpoints with the kinks of the trajectory (Olsson et al. 2022). It
writes one comparison: loss on the copied segment, induction heads per model,
the strongest compositions above chance, the most important heads and their
types (important heads that are not induction heads are listed), and the kinks.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from experiments.engine.analysis.ablation import head_ablation
from experiments.engine.analysis.composition import MODES, composition
from experiments.engine.analysis.heads import head_scores
from experiments.engine.datasets import InductionTraining, RepeatedRandomTokens
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.kinds import checkpoint_pca
from experiments.engine.kinds._inputs import repeated_tokens_for
from experiments.engine.lean import to_bridge
from experiments.engine.models import ArtifactResolver, load_checkpoint
from experiments.engine.params import KindParams
from experiments.engine.plots import head_heatmaps
from experiments.engine.registry import KindResult
from experiments.engine.training import TrainingParams, copied_segment_eval, repeated_token_losses, train
from experiments.engine.types import RecordId

KEY = "attention_depth_comparison"
TITLE = "Compare 1- to 4-layer attention-only models"
DEVICE = "gpu"
SOFT_TIME_LIMIT = 6 * 3600 - 120
TIME_LIMIT = 6 * 3600
DEPTHS = (1, 2, 3, 4)
IMPORTANT_MIN_NATS = 0.05
_PER_DEPTH = {
    "copied_segment_loss": "loss on copied tokens only induction can predict",
    "copied_segment_accuracy": "top-1 accuracy on those copied tokens",
    "repeated_second_half_loss": "loss on the second half of repeated random tokens",
    "n_induction_heads": "heads with induction score >= 0.4",
    "max_induction_score": "best induction score",
    "n_k_above_chance": "K-compositions above the random baseline",
    "n_important_heads": "heads whose zero-ablation costs >= 0.05 nats",
    "n_important_non_induction_heads": "important heads that are not induction heads",
    "n_kinks": "kinks of the checkpoint trajectory",
    "first_kink_step": "step of the earliest kink",
}
METRICS = {f"L{d}_{name}": f"{d}-layer model: {meaning}." for d in DEPTHS for name, meaning in _PER_DEPTH.items()}


class Params(KindParams):
    depths: list[Annotated[int, Field(ge=1, le=4)]] = Field(
        [1, 2, 3, 4], min_length=1, max_length=4, description="Layer counts to compare (1-4)."
    )
    training: TrainingParams = Field(
        TrainingParams(), description="Data, width and budget shared by every depth; model.n_layers is replaced."
    )
    runs: list[RecordId] | None = Field(
        None,
        max_length=4,
        description="Existing train_transformer runs (one per depth) to compare instead of training here; "
        "`depths` and `training` are then ignored.",
    )
    eval_data: RepeatedRandomTokens = Field(RepeatedRandomTokens(n_sequences=64, half_length=31))
    n_eval_sequences: int = Field(256, ge=8, le=4096, description="Sequences for the copied-segment loss.")

    @model_validator(mode="after")
    def _valid(self) -> Params:
        if any(d not in DEPTHS for d in self.depths) or len(set(self.depths)) != len(self.depths):
            raise ValueError("depths must be distinct values among 1, 2, 3, 4")
        if not self.training.model.attn_only:
            raise ValueError("the comparison is of attention-only models: set training.model.attn_only to true")
        if not isinstance(self.training.data, InductionTraining):
            raise ValueError("the comparison trains on induction_training data")
        return self


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: every run to compare succeeded and saved checkpoints."""
    problems = {}
    for i, run_id in enumerate(params.runs or ()):
        try:
            runs.checkpoints(run_id)
        except ModelNotAvailable as exc:
            problems[f"runs.{i}"] = str(exc)
    return problems


def _models(params: Params, ctx):
    """Yield (depth, bridge, native config, [(step, checkpoint path)]) for each model to compare."""
    if params.runs:
        seen: set[int] = set()
        for run_id in params.runs:
            checkpoints = [
                (s, ctx.artifact_resolver.artifact_path(run_id, n))
                for s, n in ctx.artifact_resolver.checkpoints(run_id)
            ]
            bridge, config = load_checkpoint(checkpoints[-1][1], device=ctx.device)
            if not config.attn_only:
                raise EngineError(
                    f"Run {run_id} trained a model with MLPs; the comparison is of attention-only models."
                )
            if config.n_layers in seen:
                raise EngineError(f"Two of the runs trained {config.n_layers}-layer models; compare one run per depth.")
            seen.add(config.n_layers)
            yield config.n_layers, bridge, config, checkpoints
        return
    share = 1 / len(params.depths)
    for i, depth in enumerate(sorted(params.depths)):
        config = params.training.model.model_copy(update={"n_layers": depth})
        training = params.training.model_copy(update={"model": config})

        def report(fraction: float, message: str, i: int = i, depth: int = depth) -> None:
            ctx.progress(share * (i + 0.8 * fraction), f"{depth}-layer model: {message}")

        outcome = train(training, ctx, name_prefix=f"L{depth}-", on_progress=report)
        checkpoints = [(c["step"], ctx.artifact_dir / ctx.artifacts[c["artifact"]].path) for c in outcome.checkpoints]
        yield depth, to_bridge(outcome.model, device=ctx.device), config, checkpoints


def run(params: Params, ctx) -> KindResult:
    rows, metrics = [], {}
    for depth, model, config, checkpoints in _models(params, ctx):
        ctx.check_cancelled()
        prefix = f"L{depth}-"
        tokens = repeated_tokens_for(model, params.eval_data, ctx.device)
        scores = head_scores(model, tokens)
        ctx.save_artifact(
            f"{prefix}head_scores", head_heatmaps(scores.by_type(), title=f"{depth}-layer model: head scores")
        )
        comp = composition(model, baseline_seed=ctx.seed + 1000)
        clean, ablated = head_ablation(model, tokens, mode="zero", config=config)
        increase = ablated - clean
        ranked = sorted(
            ({"layer": lay, "head": h, "loss_increase": round(float(increase[lay, h]), 4),
              "types": scores.types_of(lay, h)} for lay in range(depth) for h in range(config.n_heads)),
            key=lambda r: r["loss_increase"], reverse=True,
        )  # fmt: skip
        important = [r for r in ranked if r["loss_increase"] >= IMPORTANT_MIN_NATS]
        pca_params = checkpoint_pca.Params(run=1, data=params.eval_data.model_copy(update={"n_sequences": 16}))
        pca_metrics, pca_summary = (
            checkpoint_pca.analyse(checkpoints, pca_params, ctx, prefix=prefix) if len(checkpoints) >= 3 else ({}, {})
        )
        _, second_half = repeated_token_losses(model, tokens)
        copied, accuracy = copied_segment_eval(
            model, params.training.data, n_sequences=params.n_eval_sequences, length=config.n_ctx,
            d_vocab=config.d_vocab, seed=ctx.seed, device=ctx.device,
        )  # fmt: skip
        row = {
            "depth": depth,
            "copied_segment_loss": copied,
            "copied_segment_accuracy": accuracy,
            "repeated_second_half_loss": second_half,
            "induction_heads": scores.heads_of_type("induction"),
            "previous_token_heads": scores.heads_of_type("previous_token"),
            "max_induction_score": float(scores.induction.max()),
            "compositions_above_chance": {m: int((comp.scores[m] > comp.threshold(m)).sum()) for m in MODES},
            "strongest_compositions": [c for c in comp.strongest(5) if c["above_chance"]],
            "most_important_heads": ranked[:5],
            "important_non_induction_heads": [r for r in important if "induction" not in r["types"]],
            "kinks": pca_summary.get("kinks", []),
            "induction_formation_step": pca_metrics.get("induction_formation_step"),
        }  # fmt: skip
        rows.append(row)
        prefix = f"L{depth}_"  # metric names: letters, digits, underscores
        metrics.update({
            f"{prefix}copied_segment_loss": copied,
            f"{prefix}copied_segment_accuracy": accuracy,
            f"{prefix}repeated_second_half_loss": second_half,
            f"{prefix}n_induction_heads": len(row["induction_heads"]),
            f"{prefix}max_induction_score": row["max_induction_score"],
            f"{prefix}n_k_above_chance": row["compositions_above_chance"]["K"],
            f"{prefix}n_important_heads": len(important),
            f"{prefix}n_important_non_induction_heads": len(row["important_non_induction_heads"]),
            f"{prefix}n_kinks": len(row["kinks"]),
        })  # fmt: skip
        if row["kinks"]:
            metrics[f"{prefix}first_kink_step"] = min(k["step"] for k in row["kinks"])
    ctx.save_artifact("comparison", {"rows": rows})
    ctx.save_artifact("comparison_chart", _chart(rows))
    return KindResult(metrics=metrics, summary={"rows": rows})


def _chart(rows: list[dict]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    depths = [f"{r['depth']} layer{'s' if r['depth'] > 1 else ''}" for r in rows]
    fig = make_subplots(
        rows=1, cols=3, subplot_titles=["Loss on copied tokens", "Induction heads", "K-compositions above chance"]
    )
    fig.add_trace(go.Bar(x=depths, y=[r["copied_segment_loss"] for r in rows], name="copied-token loss"), row=1, col=1)
    fig.add_trace(go.Bar(x=depths, y=[len(r["induction_heads"]) for r in rows], name="induction heads"), row=1, col=2)
    fig.add_trace(
        go.Bar(x=depths, y=[r["compositions_above_chance"]["K"] for r in rows], name="K-compositions"), row=1, col=3
    )
    fig.update_layout(title="Attention-only models by depth", showlegend=False, height=380)
    return fig
