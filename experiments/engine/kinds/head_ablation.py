"""Ablate every attention head in turn and rank the heads by the loss increase.

Zero- or mean-ablates each head (mean: its output at each position replaced
by the batch mean there) on a dataset, measures the increase of the mean
next-token loss, ranks the heads, and joins each with its type from
`head_detection` (induction, previous-token, duplicate-token, and the
generalised copying and look-back families), so that important heads that
are *not* induction heads stand out, as the catalogue's
first idea asks. All heads are ablated in a few batched passes that start from
the cached residual stream (see `experiments.engine.analysis.ablation`); the
result equals a one-head-at-a-time loop with TransformerLens hooks.

A head counts as important when its ablation costs at least 0.05 nats and at
least 10% of the most important head's cost. In the project's checks
(docs/science.md), in every default 2-layer model that formed an induction
circuit the most costly head was part of it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from safetensors.torch import load_file

from experiments.engine.analysis.ablation import head_ablation
from experiments.engine.analysis.heads import HeadScores, copies_in_context, head_scores
from experiments.engine.datasets import EvalData, RepeatedRandomTokens
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.kinds._inputs import data_fits_model, eval_tokens, repeated_tokens_for
from experiments.engine.models import ArtifactResolver, ModelRef, load_model_and_config
from experiments.engine.params import KindParams
from experiments.engine.plots import ranked_bars
from experiments.engine.registry import KindResult
from experiments.engine.types import RecordId
from experiments.engine.wording import count, head_cost_text, head_name, head_types_text

KEY = "head_ablation"
TITLE = "Ablate each head and rank by loss increase"
DEVICE = "gpu"
SOFT_TIME_LIMIT = 3600
TIME_LIMIT = 3660
IMPORTANT_MIN_NATS = 0.05
IMPORTANT_FRACTION = 0.10
TYPE_COLORS = {
    "induction": "#4338ca",
    "previous_token": "#0f766e",
    "duplicate_token": "#b45309",
    "copying": "#7c3aed",
    "look_back": "#0d9488",
    "": "#9ca3af",
}
METRICS = {
    "clean_loss": "Mean next-token loss without ablation.",
    "max_loss_increase": "Loss increase of the most important head (nats).",
    "most_important_layer": "Layer of the most important head.",
    "most_important_head": "Index (within its layer) of the most important head.",
    "n_important_heads": "Heads whose ablation costs >= 0.05 nats and >= 10% of the top head's cost.",
    "n_important_non_induction_heads": "Important heads that are neither induction nor copying heads.",
}


class Params(KindParams):
    model: ModelRef = Field(description="The model to ablate.")
    data: EvalData = Field(RepeatedRandomTokens(n_sequences=64, half_length=31), description="Text to measure on.")
    n_sequences: int = Field(
        64,
        ge=1,
        le=2048,
        description="Sequences drawn from induction_training or text_corpus data (repeated "
        "random tokens set their own n_sequences).",
    )
    mode: Literal["zero", "mean"] = "zero"
    head_types_from_run: RecordId | None = Field(
        None, description="A head_detection run of the same model whose head types to use (else scored here)."
    )


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: the sequences fit the model's context, and head types come from a run that saved
    them."""
    problems = data_fits_model(params.data, params.model, runs)
    if params.head_types_from_run is not None:
        try:
            runs.artifact_path(params.head_types_from_run, "head_scores")
        except ModelNotAvailable as exc:
            problems["head_types_from_run"] = f"{exc} A head_detection run saves them."
    return problems


def _head_types(params: Params, model, ctx) -> HeadScores:
    if params.head_types_from_run is not None:
        path = ctx.artifact_resolver.artifact_path(params.head_types_from_run, "head_scores")
        saved = load_file(str(path))
        shape = (model.cfg.n_layers, model.cfg.n_heads)
        if tuple(saved["induction"].shape) != shape:
            raise EngineError(
                f"Run {params.head_types_from_run} scored a model of {tuple(saved['induction'].shape)} layers x heads; "
                f"this one has {shape}. Use a head_detection run of the same model."
            )
        return HeadScores.from_tensors(saved)
    half = min(31, (model.cfg.n_ctx - 1) // 2)
    return head_scores(
        model, repeated_tokens_for(model, RepeatedRandomTokens(n_sequences=32, half_length=half), ctx.device)
    )


def run(params: Params, ctx) -> KindResult:
    ctx.progress(0.05, "loading the model")
    model, config = load_model_and_config(params.model, ctx)
    tokens = eval_tokens(model, params.data, ctx, n_sequences=params.n_sequences)
    ctx.progress(0.2, "classifying heads")
    types = _head_types(params, model, ctx)
    ctx.check_cancelled()
    ctx.progress(0.4, f"{params.mode}-ablating {model.cfg.n_layers * model.cfg.n_heads} heads")
    clean, ablated = head_ablation(model, tokens, mode=params.mode, config=config)
    increase = ablated - clean
    ctx.save_artifact("loss_increase", {"loss_increase": increase.contiguous(), "ablated_loss": ablated.contiguous()})

    ranked = sorted(
        (
            {
                "layer": layer,
                "head": head,
                "loss_increase": round(float(increase[layer, head]), 5),
                "types": types.types_of(layer, head),
            }
            for layer in range(increase.shape[0])
            for head in range(increase.shape[1])
        ),
        key=lambda row: row["loss_increase"],
        reverse=True,
    )
    top = ranked[0]["loss_increase"]
    for row in ranked:
        row["important"] = row["loss_increase"] >= max(IMPORTANT_MIN_NATS, IMPORTANT_FRACTION * top)
    important = [row for row in ranked if row["important"]]
    shown = ranked[:40]
    ctx.save_artifact(
        "ranking_chart",
        ranked_bars(
            [f"L{r['layer']}H{r['head']} {'/'.join(r['types']) or 'untyped'}" for r in shown],
            [r["loss_increase"] for r in shown],
            [TYPE_COLORS[r["types"][0] if r["types"] else ""] for r in shown],
            title=f"Loss increase when {params.mode}-ablating each head",
            x="loss increase (nats)",
        ),
    )
    metrics = {
        "clean_loss": clean,
        "max_loss_increase": top,
        "most_important_layer": ranked[0]["layer"],
        "most_important_head": ranked[0]["head"],
        "n_important_heads": len(important),
        "n_important_non_induction_heads": sum(not copies_in_context(r["types"]) for r in important),
    }
    return KindResult(
        findings=findings(ranked, important, metrics, params.mode),
        metrics=metrics,
        headline="ranking_chart",
        summary={"ranking": ranked, "mode": params.mode, "clean_loss": clean},
    )


def findings(ranked: list[dict], important: list[dict], metrics: dict, mode: str) -> list[str]:
    top = ranked[0]
    lines = [
        f"{mode.capitalize()}-ablating the most important head, {head_name(top['layer'], top['head'])} "
        f"({head_types_text(top['types'])}), "
        f"raises the loss by {top['loss_increase']:.3f} nats, from {metrics['clean_loss']:.3f}."
    ]
    if len(important) > 1:
        lines.append(
            f"{count(len(important), 'head')} matter (each costs at least {IMPORTANT_MIN_NATS} nats and "
            f"{IMPORTANT_FRACTION:.0%} of the top head): "
            + "; ".join(head_cost_text(r) for r in important[:5])
            + (f"; and {len(important) - 5} more." if len(important) > 5 else ".")
        )
    others = [r for r in important if not copies_in_context(r["types"])]
    if others:
        lines.append(
            "Important heads that are neither induction nor copying heads: "
            + "; ".join(head_cost_text(r) for r in others[:5])
            + "."
        )
    elif important:
        lines.append("Every important head is an induction or copying head.")
    return lines
