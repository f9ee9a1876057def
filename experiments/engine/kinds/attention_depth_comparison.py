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
from experiments.engine.training import SERIES as TRAINING_SERIES
from experiments.engine.training import TrainingParams, copied_segment_eval, repeated_token_losses, train
from experiments.engine.types import RecordId
from experiments.engine.wording import count, head_cost_text, head_name, heads_text, layers_label

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
PART_METRICS = {name: f"{meaning[0].upper()}{meaning[1:]}." for name, meaning in _PER_DEPTH.items()}
METRICS = {f"L{d}_{name}": f"{d}-layer model: {meaning}." for d in DEPTHS for name, meaning in _PER_DEPTH.items()}
SERIES = {**TRAINING_SERIES, **checkpoint_pca.SERIES}


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


def _load_run(run_id: int, ctx, seen: set[int]):
    """(depth, bridge, native config, [(step, checkpoint path)]) of a train_transformer run to compare."""
    checkpoints = [
        (s, ctx.artifact_resolver.artifact_path(run_id, n)) for s, n in ctx.artifact_resolver.checkpoints(run_id)
    ]
    bridge, config = load_checkpoint(checkpoints[-1][1], device=ctx.device)
    if not config.attn_only:
        raise EngineError(f"Run {run_id} trained a model with MLPs; the comparison is of attention-only models.")
    if config.n_layers in seen:
        raise EngineError(f"Two of the runs trained {config.n_layers}-layer models; compare one run per depth.")
    seen.add(config.n_layers)
    return config.n_layers, bridge, config, checkpoints


def _train(depth: int, params: Params, ctx, report):
    """Train the `depth`-layer model here: (depth, bridge, native config, [(step, checkpoint path)])."""
    config = params.training.model.model_copy(update={"n_layers": depth})
    training = params.training.model_copy(update={"model": config})
    outcome = train(training, ctx, name_prefix=f"L{depth}-", on_progress=report)
    checkpoints = [(c["step"], ctx.artifact_dir / ctx.artifacts[c["artifact"]].path) for c in outcome.checkpoints]
    return depth, to_bridge(outcome.model, device=ctx.device), config, checkpoints


def run(params: Params, ctx) -> KindResult:
    """Each depth is a part of the run (`ctx.part`): stored as soon as it is analysed, so a run cancelled or
    failed at a later depth keeps the earlier ones."""
    rows = []
    items = params.runs or sorted(params.depths)
    share, seen = 1 / len(items), set()
    for i, item in enumerate(items):
        ctx.check_cancelled()
        loaded = _load_run(item, ctx, seen) if params.runs else None
        depth = loaded[0] if loaded else item
        label = layers_label(depth)
        with ctx.part(f"L{depth}", label) as part:
            analysis_start = share * (i + (0 if loaded else TRAINING_SHARE))
            if loaded is None:
                loaded = _train(depth, params, ctx, within(ctx.progress, share * i, analysis_start, f"{label}: "))
            _, model, config, checkpoints = loaded
            report = within(ctx.progress, analysis_start, share * (i + 1), f"{label}: ")
            report(0.0, "scoring heads and compositions")
            row = _analyse(depth, model, config, checkpoints, params, ctx, report)
            rows.append(row)
            part.metrics = _depth_metrics(row)
            part.findings = depth_findings(row)
            report(1.0, "analysed")
    ctx.save_artifact("comparison", {"rows": rows})
    ctx.save_artifact("comparison_chart", _chart(rows))
    return KindResult(
        findings=findings(rows),
        headline="comparison_chart",
        summary={"rows": rows, "composition_rule": COMPOSITION_RULE},
    )


def _analyse(depth: int, model, config, checkpoints, params: Params, ctx, report) -> dict:
    prefix = f"L{depth}-"
    tokens = repeated_tokens_for(model, params.eval_data, ctx.device)
    scores = head_scores(model, tokens)
    ctx.save_artifact(
        f"{prefix}head_scores", head_heatmaps(scores.by_type(), title=f"{layers_label(depth)}: head scores")
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
        checkpoint_pca.analyse(
            checkpoints, pca_params, ctx, prefix=prefix, label=layers_label(depth), report=within(report, 0.2, 0.95)
        )
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
        "trajectory_findings": checkpoint_pca.findings(pca_metrics, pca_summary) if pca_metrics else [],
    }


def _depth_metrics(row: dict) -> dict:
    """One depth's metrics (`PART_METRICS`); the run's metrics name them `L<depth>_<name>`."""
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
    return {name: value for name, value in values.items() if value is not None}


def depth_findings(row: dict) -> list[str]:
    """What one depth's analysis found: its heads, copying, compositions, most important head and trajectory."""
    induction = row["induction_heads"]
    lines = [
        f"Induction heads: {heads_text(induction)} (best score {row['max_induction_score']:.2f})."
        if induction
        else f"No induction head (best score {row['max_induction_score']:.2f})."
    ]
    if row["copying_heads"] and not induction:
        top = row["copying_heads"][0]
        lines.append(
            f"A shifted copying circuit: {head_name(top['layer'], top['head'])} copies at offset {top['offset']} "
            f"(score {top['score']:.2f})."
        )
    lines.append(
        f"Copied tokens: {row['copied_segment_accuracy']:.0%} top-1 accuracy, {row['copied_segment_loss']:.2f} nats; "
        f"second half of repeated tokens {row['repeated_second_half_loss']:.2f} nats."
    )
    if row["depth"] > 1:
        chance, lenient = row["compositions_above_chance"], row["compositions_above_random_model"]
        lines.append(
            "Compositions above chance: "
            + ", ".join(f"{m} {chance[m]}" for m in chance)
            + " (against a random model alone: "
            + ", ".join(f"{m} {lenient[m]}" for m in lenient)
            + ")."
        )
    if row["most_important_heads"]:
        lines.append(f"Most important head: {head_cost_text(row['most_important_heads'][0], digits=2)}.")
    if row["important_non_induction_heads"]:
        others = row["important_non_induction_heads"]
        lines.append(
            "Important heads that are neither induction nor copying heads: "
            + "; ".join(head_cost_text(r, digits=2) for r in others[:4])
            + (f" and {len(others) - 4} more." if len(others) > 4 else ".")
        )
    return lines + row["trajectory_findings"]


def findings(rows: list[dict]) -> list[str]:
    """The comparison across depths, one sentence per question the catalogue's idea asks."""
    forming = [r for r in rows if r["induction_heads"]]
    without = [r for r in rows if not r["induction_heads"]]
    text = f"{len(forming)} of {len(rows)} depths form induction heads"
    if forming:
        text += ": " + ", ".join(
            f"{layers_label(r['depth'])} ({count(len(r['induction_heads']), 'head')}, "
            f"best {r['max_induction_score']:.2f})"
            for r in forming
        )
    if without:
        text += "; " + ", ".join(f"{layers_label(r['depth'])} (best {r['max_induction_score']:.2f})" for r in without)
        text += " form none" if len(without) > 1 else " forms none"
    lines = [text + "."]
    shifted = [r for r in without if r["copying_heads"]]
    if shifted:
        lines.append(
            "Without an induction head, "
            + ", ".join(layers_label(r["depth"]) for r in shifted)
            + " still copy in context with a shifted circuit (a copying head at another offset)."
        )
    lines.append(
        "Top-1 accuracy on copied tokens: "
        + ", ".join(f"{layers_label(r['depth'])} {r['copied_segment_accuracy']:.0%}" for r in rows)
        + "."
    )
    deep = [r for r in rows if r["depth"] > 1]
    if deep:
        lines.append(
            "K-compositions above chance: "
            + ", ".join(f"{layers_label(r['depth'])} {r['compositions_above_chance']['K']}" for r in deep)
            + "."
        )
    changes = [
        f"{layers_label(r['depth'])} at step {r['change_points'][0]['step']}"
        + (f" (in-context learning jumped at {r['largest_icl_change_step']})" if r["largest_icl_change_step"] else "")
        for r in rows
        if r["change_points"]
    ]
    flat = [layers_label(r["depth"]) for r in rows if not r["change_points"]]
    if changes or flat:
        lines.append(
            "Change points in training: "
            + ("; ".join(changes) if changes else "none")
            + (f"; none in {', '.join(flat)}" if flat and changes else "")
            + "."
        )
    odd = [r for r in rows if r["important_non_induction_heads"]]
    lines.append(
        "Important heads that are not induction or copying heads: "
        + ", ".join(f"{layers_label(r['depth'])} {len(r['important_non_induction_heads'])}" for r in odd)
        + " (see each depth's details)."
        if odd
        else "Every important head at every depth is an induction or copying head."
    )
    return lines


def _chart(rows: list[dict]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    depths = [layers_label(r["depth"]) for r in rows]
    panels = [
        ("Accuracy on copied tokens", "top-1 accuracy", [r["copied_segment_accuracy"] for r in rows]),
        ("Induction heads", "heads with score >= 0.4", [len(r["induction_heads"]) for r in rows]),
        ("K-compositions", "head pairs above chance", [r["compositions_above_chance"]["K"] for r in rows]),
    ]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[title for title, _, _ in panels])
    for col, (title, axis, values) in enumerate(panels, start=1):
        fig.add_trace(go.Bar(x=depths, y=values, name=title), row=1, col=col)
        fig.update_yaxes(title_text=axis, row=1, col=col)
        fig.update_xaxes(title_text="model depth", row=1, col=col)
    fig.update_yaxes(range=[0, 1], row=1, col=1)
    for col, (_, _, values) in enumerate(panels[1:], start=2):  # counts: from 0, at least up to 1
        fig.update_yaxes(range=[0, max(1, *values) * 1.1], row=1, col=col)
    fig.update_layout(
        title="Attention-only models by depth", showlegend=False, height=400, margin={"t": 100, "l": 60, "r": 20}
    )
    return fig
