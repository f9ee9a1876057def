"""How do 1-, 2-, 3- and 4-layer attention-only transformers differ? (the catalogue's first idea)

Trains attention-only models of each depth with the same data, width and
budget (or takes existing `train_transformer` runs), then runs the toolkit on
each: induction, previous-token, copying and look-back head scores on repeated
random tokens (copying and look-back see circuits with shifted offsets too),
Q/K/V composition against a random model, the model's own other pairs and a
permutation test (Elhage et al. 2021), zero-ablation of every head with the
heads ranked and typed, and the change points of its checkpoint trajectory
with the step where in-context learning jumped (Olsson et al. 2022). It writes
one comparison: loss on the copied segment, the copying circuit per model,
the compositions above chance, the most important heads and their types
(important heads that are not induction or copying heads are listed), and the
change points.

With the defaults (3000 steps per depth; about 4 minutes on two cores),
in the project's checks on seeds not used for tuning the 1-layer model formed
no induction head and no change point, and 2-layer models formed an induction
head in most seeds (docs/science.md has the seeds and numbers).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from experiments.engine.analysis.ablation import head_ablation
from experiments.engine.analysis.composition import MODES, composition
from experiments.engine.analysis.composition import RULE as COMPOSITION_RULE
from experiments.engine.analysis.heads import copies_in_context, head_scores
from experiments.engine.datasets import InductionTraining, RepeatedRandomTokens
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.kinds import checkpoint_pca
from experiments.engine.kinds._inputs import context_problem, data_fits_model, repeated_tokens_for
from experiments.engine.lean import to_bridge
from experiments.engine.models import ArtifactResolver, RunModelRef, load_checkpoint
from experiments.engine.params import KindParams
from experiments.engine.plots import head_heatmaps
from experiments.engine.registry import KindResult
from experiments.engine.runtime import within
from experiments.engine.training import TrainingParams, copied_segment_eval, repeated_token_losses, train
from experiments.engine.types import RecordId

KEY = "attention_depth_comparison"
TITLE = "Compare 1- to 4-layer attention-only models"
DEVICE = "gpu"
SOFT_TIME_LIMIT = 6 * 3600 - 120
TIME_LIMIT = 6 * 3600
DEPTHS = (1, 2, 3, 4)
IMPORTANT_MIN_NATS = 0.05
TRAINING_SHARE = 0.8  # of each depth's part of the progress bar, when the comparison trains its models
_PER_DEPTH = {
    "copied_segment_loss": "loss on copied tokens only induction can predict",
    "copied_segment_accuracy": "top-1 accuracy on those copied tokens",
    "repeated_second_half_loss": "loss on the second half of repeated random tokens",
    "n_induction_heads": "heads with induction score >= 0.4",
    "max_induction_score": "best induction score",
    "n_k_above_chance": "K-compositions above chance (random model and the model's own layers)",
    "n_important_heads": "heads whose zero-ablation costs >= 0.05 nats",
    "n_important_non_induction_heads": "important heads that are neither induction nor copying heads",
    "n_copying_heads": "heads with copying score >= 0.4 (in-context copying at any offset)",
    "max_copying_score": "best copying score",
    "n_change_points": "significant change points of the checkpoint trajectory",
    "change_point_step": "checkpoint ending the largest change point",
    "largest_icl_change_step": "checkpoint ending the stretch where in-context learning grew most",
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
        if self.runs is None and (problem := context_problem(self.eval_data, self.training.model.n_ctx)):
            raise ValueError(f"eval_data: {problem}")
        return self


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: every run to compare succeeded and saved checkpoints, and the evaluation
    sequences fit each model's context."""
    problems = {}
    for i, run_id in enumerate(params.runs or ()):
        try:
            saved = runs.checkpoints(run_id)
        except ModelNotAvailable as exc:
            problems[f"runs.{i}"] = str(exc)
            continue
        last = RunModelRef(run=run_id, artifact=saved[-1][1]) if saved else None
        if last and (too_long := data_fits_model(params.eval_data, last, runs)):
            problems["eval_data.half_length"] = f"Run {run_id}: {too_long['data.half_length']}"
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
        start = share * i
        report = within(ctx.progress, start, start + TRAINING_SHARE * share, f"{depth}-layer model: ")
        outcome = train(training, ctx, name_prefix=f"L{depth}-", on_progress=report)
        checkpoints = [(c["step"], ctx.artifact_dir / ctx.artifacts[c["artifact"]].path) for c in outcome.checkpoints]
        yield depth, to_bridge(outcome.model, device=ctx.device), config, checkpoints


def _part(params: Params, i: int, n: int) -> tuple[float, float]:
    """The range of the progress bar that analysing the i-th of n models takes."""
    share = 1 / n
    return (share * (i + TRAINING_SHARE), share * (i + 1)) if not params.runs else (share * i, share * (i + 1))


def run(params: Params, ctx) -> KindResult:
    rows, metrics = [], {}
    n_models = len(params.runs or params.depths)
    for i, (depth, model, config, checkpoints) in enumerate(_models(params, ctx)):
        ctx.check_cancelled()
        start, end = _part(params, i, n_models)
        report = within(ctx.progress, start, end, f"{depth}-layer model: ")
        report(0.0, "scoring heads and compositions")
        row = _analyse(depth, model, config, checkpoints, params, ctx, report)
        rows.append(row)
        metrics.update(_depth_metrics(row))
        report(1.0, "done")
    ctx.save_artifact("comparison", {"rows": rows})
    ctx.save_artifact("comparison_chart", _chart(rows))
    return KindResult(metrics=metrics, summary={"rows": rows, "composition_rule": COMPOSITION_RULE})


def _analyse(depth: int, model, config, checkpoints, params: Params, ctx, report) -> dict:
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
        ({**scores.head_row(lay, h), "loss_increase": round(float(increase[lay, h]), 4)}
         for lay in range(depth) for h in range(config.n_heads)),
        key=lambda r: r["loss_increase"], reverse=True,
    )  # fmt: skip
    important = [r for r in ranked if r["loss_increase"] >= IMPORTANT_MIN_NATS]
    report(0.2, "the checkpoint trajectory")
    pca_params = checkpoint_pca.Params(run=1, data=params.eval_data.model_copy(update={"n_sequences": 16}))
    pca_metrics, pca_summary = (
        checkpoint_pca.analyse(checkpoints, pca_params, ctx, prefix=prefix, report=within(report, 0.2, 0.95))
        if len(checkpoints) >= 3
        else ({}, {})
    )
    _, second_half = repeated_token_losses(model, tokens)
    copied, accuracy = copied_segment_eval(
        model, params.training.data, n_sequences=params.n_eval_sequences, length=config.n_ctx,
        d_vocab=config.d_vocab, seed=ctx.seed, device=ctx.device,
    )  # fmt: skip
    circuit = scores.circuit()
    return {
        "depth": depth,
        "copied_segment_loss": copied,
        "copied_segment_accuracy": accuracy,
        "repeated_second_half_loss": second_half,
        "induction_heads": scores.heads_of_type("induction"),
        "previous_token_heads": scores.heads_of_type("previous_token"),
        "copying_heads": circuit["copying"],
        "look_back_heads": circuit["look_back"],
        "max_induction_score": float(scores.induction.max()),
        "max_copying_score": float(scores.scores["copying"].max()),
        "compositions_above_chance": {m: int(comp.above_chance(m).sum()) for m in MODES},
        "compositions_above_random_model": {m: comp.n_above_random(m) for m in MODES},
        "strongest_compositions": comp.strongest(5, seed=ctx.seed),
        "most_important_heads": ranked[:5],
        "important_non_induction_heads": [r for r in important if not copies_in_context(r["types"])],
        "change_points": pca_summary.get("change_points", []),
        "strongest_burst": pca_summary.get("strongest_burst"),
        "largest_icl_change_step": pca_metrics.get("largest_icl_change_step"),
        "induction_formation_step": pca_metrics.get("induction_formation_step"),
        "copying_formation_step": pca_metrics.get("copying_formation_step"),
        "n_important_heads": len(important),
    }


def _depth_metrics(row: dict) -> dict:
    prefix = f"L{row['depth']}_"  # metric names: letters, digits, underscores
    values = {
        "copied_segment_loss": row["copied_segment_loss"],
        "copied_segment_accuracy": row["copied_segment_accuracy"],
        "repeated_second_half_loss": row["repeated_second_half_loss"],
        "n_induction_heads": len(row["induction_heads"]),
        "max_induction_score": row["max_induction_score"],
        "n_copying_heads": len(row["copying_heads"]),
        "max_copying_score": row["max_copying_score"],
        "n_k_above_chance": row["compositions_above_chance"]["K"],
        "n_important_heads": row["n_important_heads"],
        "n_important_non_induction_heads": len(row["important_non_induction_heads"]),
        "n_change_points": len(row["change_points"]),
        "change_point_step": row["change_points"][0]["step"] if row["change_points"] else None,
        "largest_icl_change_step": row["largest_icl_change_step"],
    }
    return {f"{prefix}{name}": value for name, value in values.items() if value is not None}


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
