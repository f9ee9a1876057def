"""Indirect object identification: which heads do it, and how (catalogue idea #8; Wang et al. 2022).

On IOI prompts ("When Mary and John went to the store, John gave a drink to" -> " Mary"; the dataset
`ioi_prompts`, held-out names by default) the kind measures the model's logit difference IO − S at END and its
accuracy, on the clean prompts and on their "ABC" corruption (S2 replaced by a third name), and then, head by
head (`experiments.engine.analysis.ioi`):

- direct logit attribution (DLA): what each head writes at END towards W_U[IO] − W_U[S], through the final
  LayerNorm's scale cached on the clean run;
- activation patching from ABC: the head's output from the ABC prompts patched into the clean run, one head at
  a time, patched − clean logit difference (negative = the head carries the IOI signal);
- attention from END to IO and to S1 + S2, and the attention each role rule reads;
- role candidates by the documented rules of the analysis module (name mover, negative name mover,
  S-inhibition, induction, duplicate-token, previous-token), and the cost of mean-ablating the top-k heads by
  patching effect together (their outputs replaced by their means over the ABC prompts of each template).

Figures: the circuit diagram of the top heads (headline; heads placed by layer, coloured by role, sized by
patching effect), DLA and patching heatmaps, END attention of the candidate heads.

The model: a checkpoint of a `train_transformer` run on `ioi_prompts`, a pretrained Hugging Face model from a
local folder (its own tokenizer; only names it writes as one token are used), or, with no model given, the
project's IOI model trained inside the run first (`training`, about two minutes on one core).

GPT-2 small on a GPU worker (the weights copied to a folder under PRETRAINED_MODEL_DIRS, e.g. /models/gpt2):

    {"model": {"source": "pretrained", "name": "/models/gpt2"},
     "data": {"source": "ioi_prompts", "names": "all", "n_prompts": 256}, "top_k": 10}

Patching runs 12 × 256 prompts per layer (12 passes, a few seconds on a GPU). The paper's figures to compare:
a logit difference of about 3.55 on its prompts, and the name movers 9.9, 9.6 and 10.0 among the heads with
the largest effects (negative name movers 10.7 and 11.10; S-inhibition 7.3, 7.9, 8.6, 8.10). Our templates and
names differ from the paper's, so expect a logit difference of the same order, not the same number. Not run
here (no GPT-2 weights on these machines): only a tiny random GPT-2 is tested.

How robust (docs/science.md, "IOI"): the default model trained here (3 layers x 4 heads, d_model 64, 3000
steps of batch 64 on the names of `ioi_prompts` with roll calls that repeat a list of names; about two minutes
on one core) reached a held-out logit difference of 11-14 on all three untuned test seeds and on tuning seeds 3
and 4; counting every seed run with it, 6 of 8 left the loss plateau (seeds 1 and 721060381 stayed on it, logit
difference ~0: the findings then say the model hardly does the task). Its circuit is not the paper's:
the head with the largest patching effect attends from END to the repeated name S2 (0.86-0.97) and writes
against S directly (positive DLA on IO − S): it suppresses S, in layer 1 or the last layer, and no head met the
name-mover rule. Models trained with roll calls of random names learned the paper's picture on the training names
(layer-0 heads reading S2, name movers in layers 1-2) but reached only ~1.2 on held-out names.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from pydantic import Field

from experiments.engine.analysis.ioi import (
    RULES,
    IOIAnalysis,
    analyse_ioi,
    mean_ablated_logit_diffs,
)
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.ioi import MAX_PROMPT_WORDS, VOCABULARY, IOIPrompts, ioi_batch, names_for, one_token_names
from experiments.engine.kinds._inputs import model_shape
from experiments.engine.lean import to_bridge
from experiments.engine.models import ArtifactResolver, ModelRef, PretrainedModelRef, load_model, resolve_pretrained_dir
from experiments.engine.params import KindParams
from experiments.engine.registry import KindResult
from experiments.engine.runtime import within
from experiments.engine.training import SERIES as TRAINING_SERIES
from experiments.engine.training import TrainingParams, train
from experiments.engine.wording import count, head_name, heads_text

KEY = "ioi"
TITLE = "Indirect object identification: logit difference, head attribution, patching and roles"
DEVICE = "gpu"
SOFT_TIME_LIMIT = 3600
TIME_LIMIT = 3660
MIN_NAMES = 3
# The model trained here when a spec names none (docs/science.md, "IOI"): the IOI model at d_model 64, trained on
# the names only (answers and roll calls), with roll calls that repeat a list of names in order.
IOI_TRAINING = TrainingParams.model_validate({
    "model": {"d_model": 64, "d_head": 16},
    "data": {"source": "ioi_prompts", "train_on": "names", "roll_call_fraction": 0.25, "roll_call_order": "repeated"},
    "steps": 3000, "batch_size": 64, "n_checkpoints": 1, "eval_every": 500,
})  # fmt: skip

ROLE_COLORS = {
    "name_mover": "#dc2626",
    "negative_name_mover": "#2563eb",
    "s_inhibition": "#7c3aed",
    "induction": "#4338ca",
    "duplicate_token": "#b45309",
    "previous_token": "#0f766e",
    "": "#9ca3af",
}
ROLE_LABELS = {
    "name_mover": "name movers",
    "negative_name_mover": "negative name movers",
    "s_inhibition": "S-inhibition heads",
    "induction": "induction heads",
    "duplicate_token": "duplicate-token heads",
    "previous_token": "previous-token heads",
}
ROLE_NAMES = {  # one head's role, for legends and tables
    "name_mover": "name mover",
    "negative_name_mover": "negative name mover",
    "s_inhibition": "S-inhibition",
    "induction": "induction",
    "duplicate_token": "duplicate-token",
    "previous_token": "previous-token",
}
METRICS = {
    "logit_diff": "Mean logit difference IO − S at END on the clean prompts.",
    "accuracy": "Share of clean prompts where IO's logit is above S's.",
    "corrupt_logit_diff": "The same on the ABC prompts (S2 replaced by a third name).",
    "corrupt_accuracy": "Share of ABC prompts where IO's logit is above S's.",
    "top_head_layer": "Layer of the head with the largest |patching effect|.",
    "top_head_head": "Index (within its layer) of that head.",
    "top_head_patching": "Its patching effect (patched − clean logit difference).",
    "top_head_dla": "Its direct logit attribution at END.",
    "top_head_attn_io": "Its mean attention from END to IO.",
    "top_head_attn_s": "Its mean attention from END to S1 and S2.",
    "top_k_last_layer_fraction": "Share of the top-k heads (by |patching effect|) in the last layer.",
    "top_k_ablation_cost": "Clean logit difference minus the one with the top-k heads mean-ablated together.",
    "n_name_movers": "Heads meeting the name-mover rule.",
    "n_negative_name_movers": "Heads meeting the negative-name-mover rule.",
    "n_s_inhibition": "Heads meeting the S-inhibition rule.",
    "n_induction": "Heads meeting the induction rule (S2+1 -> S1+1).",
    "n_duplicate_token": "Heads meeting the duplicate-token rule (S2 -> S1).",
    "n_previous_token": "Heads meeting the previous-token rule.",
}
PART_METRICS = {
    "final_loss": "Mean training loss over the last 50 steps (nats per token).",
    "ioi_logit_difference": "Logit difference on the training loop's own held-out-name prompts.",
}
SERIES = TRAINING_SERIES


class Params(KindParams):
    model: ModelRef | None = Field(
        None,
        description="The model: a checkpoint of a train_transformer run on ioi_prompts, or a pretrained Hugging Face "
        "model from a local folder (names it writes as one token only). None trains `training` here first.",
    )
    training: TrainingParams = Field(
        IOI_TRAINING, description="How to train the model when `model` is None (default: the project's IOI recipe)."
    )
    data: IOIPrompts = Field(IOIPrompts(), description="The prompts (default: 256 with held-out names, both orders).")
    top_k: int = Field(5, ge=1, le=50, description="How many heads (by |patching effect|) the circuit shows.")


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: a trained model's vocabulary and context hold the IOI prompts; a pretrained
    model's tokenizer writes at least 3 of the chosen names as one token."""
    if params.model is None:
        if not isinstance(params.training.data, IOIPrompts):
            return {"training.data": "The model trained here must be trained on ioi_prompts."}
        return {}
    problem = ioi_model_problem(params.model, params.data, runs)
    return {"model": problem} if problem else {}


def ioi_model_problem(model: ModelRef, data: IOIPrompts, runs: ArtifactResolver) -> str | None:
    """Why IOI prompts `data` cannot be put to `model` (any kind that analyses IOI checks this), or None."""
    if isinstance(model, PretrainedModelRef):
        return _tokenizer_problem(model, data)
    try:
        shape = model_shape(model, runs)
    except ModelNotAvailable:
        return None  # the platform's own check names a missing checkpoint
    if shape.d_vocab < len(VOCABULARY) or shape.n_ctx < MAX_PROMPT_WORDS + 1:
        return (
            f"The model has a vocabulary of {shape.d_vocab} and a context of {shape.n_ctx}; IOI prompts in the word "
            f"vocabulary need at least {len(VOCABULARY)} and {MAX_PROMPT_WORDS + 1} (train it on ioi_prompts)."
        )
    return None


def _tokenizer_problem(model: PretrainedModelRef, data: IOIPrompts) -> str | None:
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(resolve_pretrained_dir(model.name)), local_files_only=True)
    except (ModelNotAvailable, OSError, ValueError):
        return None  # the model's folder is checked elsewhere; the worker reports a tokenizer it cannot read
    names = names_for(data)
    usable = one_token_names(tokenizer, names)
    if len(usable) >= MIN_NAMES:
        return None
    return (
        f"This model's tokenizer writes only {len(usable)} of the {len(names)} names data.names selects "
        f"('{data.names}') as one token; IOI needs at least {MIN_NAMES} one-token names"
        + ("." if data.names == "all" else " (try data.names 'all').")
    )


def run(params: Params, ctx) -> KindResult:
    metrics: dict[str, float] = {}
    if params.model is None:
        if not isinstance(params.training.data, IOIPrompts):
            raise EngineError("The model trained here must be trained on ioi_prompts.")
        with ctx.part("training", "IOI model") as part:
            outcome = train(params.training, ctx, on_progress=within(ctx.progress, 0, 0.7, "training the IOI model: "))
            part.metrics = {"final_loss": outcome.final_loss, "ioi_logit_difference": outcome.ioi_logit_difference}
            part.findings = [
                f"Trained the IOI model for {params.training.steps} steps (final loss {outcome.final_loss:.3f} nats, "
                f"logit difference {outcome.ioi_logit_difference:.2f} on its own held-out-name prompts)."
            ]
        model, start = to_bridge(outcome.model, device=ctx.device), 0.7
    else:
        ctx.progress(0.02, "loading the model")
        model, start = load_model(params.model, ctx), 0.05
    model.eval()
    batch = ioi_batch(params.data, model, device=ctx.device)
    ctx.check_cancelled()
    ctx.progress(start + 0.05, f"patching {model.cfg.n_layers * model.cfg.n_heads} heads from ABC prompts")
    analysis = analyse_ioi(model, batch)
    ctx.check_cancelled()
    top = analysis.top_heads(min(params.top_k, analysis.n_layers * analysis.n_heads))
    ctx.progress(start + 0.8 * (1 - start), "mean-ablating the top heads")
    ablated = float(mean_ablated_logit_diffs(model, batch, [top])[0])

    rows = head_rows(analysis)
    metrics.update(_metrics(analysis, top, ablated))
    ctx.save_artifact(
        "ioi_heads",
        {"dla": analysis.dla.contiguous(), "patching": analysis.patching.contiguous(),
         "attn_io": analysis.attn_io.contiguous(), "attn_s": analysis.attn_s.contiguous()},
    )  # fmt: skip
    ctx.save_artifact("circuit", circuit_figure(analysis, top))
    ctx.save_artifact("attribution", attribution_figure(analysis))
    ctx.save_artifact("end_attention", attention_figure(analysis, candidates(analysis, top)))
    ctx.save_artifact("roles", {"heads": rows, "rules": RULES})
    ctx.save_artifact("role_table", role_table(rows))
    ctx.progress(1.0, "done")
    summary = {
        **analysis.summary(),
        "heads": rows,
        "top_heads": [list(h) for h in top],
        "top_k_ablated_logit_diff": ablated,
        "n_prompts": len(batch),
        "examples": list(batch.texts[:3]),
    }
    return KindResult(findings=findings(analysis, top, metrics), metrics=metrics, headline="circuit", summary=summary)


def _metrics(analysis: IOIAnalysis, top: list[tuple[int, int]], ablated: float) -> dict[str, float]:
    layer, head = top[0]
    return {
        "logit_diff": analysis.logit_diff,
        "accuracy": analysis.accuracy,
        "corrupt_logit_diff": analysis.corrupt_logit_diff,
        "corrupt_accuracy": analysis.corrupt_accuracy,
        "top_head_layer": layer,
        "top_head_head": head,
        "top_head_patching": float(analysis.patching[layer, head]),
        "top_head_dla": float(analysis.dla[layer, head]),
        "top_head_attn_io": float(analysis.attn_io[layer, head]),
        "top_head_attn_s": float(analysis.attn_s[layer, head]),
        "top_k_last_layer_fraction": sum(lay == analysis.n_layers - 1 for lay, _ in top) / len(top),
        "top_k_ablation_cost": analysis.logit_diff - ablated,
        **{f"n_{role}{'s' if role.endswith('mover') else ''}": len(heads) for role, heads in analysis.roles.items()},
    }


def head_rows(analysis: IOIAnalysis) -> list[dict]:
    """One row per head: its numbers and roles, by |patching effect| (the role candidates table)."""
    rank = {h: i for i, h in enumerate(analysis.top_heads(analysis.n_layers * analysis.n_heads))}
    rows = []
    for (layer, head), i in sorted(rank.items(), key=lambda item: item[1]):
        at = (layer, head)
        rows.append({
            "layer": layer, "head": head, "rank": i + 1, "roles": analysis.roles_of(layer, head),
            "patching": round(float(analysis.patching[at]), 5), "dla": round(float(analysis.dla[at]), 5),
            "attn_io": round(float(analysis.attn_io[at]), 4), "attn_s": round(float(analysis.attn_s[at]), 4),
            **{name: round(float(scores[at]), 4) for name, scores in analysis.role_scores.items()},
        })  # fmt: skip
    return rows


def candidates(analysis: IOIAnalysis, top: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The top heads, then the name movers, negative name movers and S-inhibition heads not among them."""
    heads = list(top)
    for role in ("name_mover", "negative_name_mover", "s_inhibition"):
        heads += [h for h in analysis.roles[role] if h not in heads]
    return heads


def _role(analysis: IOIAnalysis, layer: int, head: int) -> str:
    roles = analysis.roles_of(layer, head)
    return roles[0] if roles else ""


# -- figures --------------------------------------------------------------------------------------------------------


def circuit_figure(analysis: IOIAnalysis, top: list[tuple[int, int]]) -> go.Figure:
    """The candidate heads as nodes (x: layer, y: head), coloured by role, sized by |patching effect|, with edges
    from each to the candidates of later layers, and to the logits from those that write to them directly."""
    heads = candidates(analysis, top)
    largest = max(float(analysis.patching.abs().max()), 1e-9)
    fig = go.Figure()
    for la, ha in heads:
        for lb, hb in heads:
            if la < lb:
                fig.add_trace(go.Scatter(x=[la, lb], y=[ha, hb], mode="lines", hoverinfo="skip", showlegend=False,
                                         line={"color": "#d1d5db", "width": 1}))  # fmt: skip
    logits_at = analysis.n_layers
    for layer, head in heads:
        dla = float(analysis.dla[layer, head])
        if abs(dla) >= 0.1 * max(float(analysis.dla.abs().max()), 1e-9):
            fig.add_trace(go.Scatter(
                x=[layer, logits_at], y=[head, (analysis.n_heads - 1) / 2], mode="lines", hoverinfo="skip",
                showlegend=False, line={"color": "#fca5a5" if dla > 0 else "#93c5fd", "width": 2},
            ))  # fmt: skip
    for role in (*RULES, ""):
        members = [h for h in heads if _role(analysis, *h) == role]
        if not members:
            continue
        fig.add_trace(go.Scatter(
            x=[lay for lay, _ in members], y=[h for _, h in members], mode="markers+text",
            name=ROLE_NAMES.get(role, "no role"),
            text=[head_name(*h) for h in members], textposition="top center",
            marker={"color": ROLE_COLORS[role], "line": {"color": "#111827", "width": 1},
                    "size": [12 + 38 * abs(float(analysis.patching[h])) / largest for h in members]},
            customdata=[[float(analysis.patching[h]), float(analysis.dla[h]), float(analysis.attn_io[h]),
                         float(analysis.attn_s[h])] for h in members],
            hovertemplate="%{text}<br>patching %{customdata[0]:.3f}<br>DLA %{customdata[1]:.3f}"
            "<br>END→IO %{customdata[2]:.2f}, END→S %{customdata[3]:.2f}<extra></extra>",
        ))  # fmt: skip
    fig.add_trace(go.Scatter(
        x=[logits_at], y=[(analysis.n_heads - 1) / 2], mode="markers+text", text=["logits (IO − S)"],
        textposition="bottom center", marker={"symbol": "square", "size": 18, "color": "#111827"}, showlegend=False,
        hoverinfo="skip",
    ))  # fmt: skip
    fig.update_layout(
        title=f"IOI circuit: the top {len(top)} heads by patching and the role heads<br>"
        f"<sup>logit difference {analysis.logit_diff:.2f}; size = patching effect</sup>",
        xaxis={"title": "layer", "tickvals": list(range(analysis.n_layers + 1)), "range": [-0.5, logits_at + 0.5],
               "ticktext": [f"L{i}" for i in range(analysis.n_layers)] + ["out"]},
        yaxis={"title": "head", "autorange": "reversed", "tickvals": list(range(analysis.n_heads)),
               "ticktext": [f"H{h}" for h in range(analysis.n_heads)]},
        height=360 + 14 * analysis.n_heads,
    )  # fmt: skip
    return fig


def attribution_figure(analysis: IOIAnalysis) -> go.Figure:
    """Per-head DLA and patching effect, side by side, on a diverging scale each."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "direct logit attribution (IO − S)", "patching from ABC (patched − clean)"))  # fmt: skip
    for col, (name, table) in enumerate((("DLA", analysis.dla), ("patching", analysis.patching)), start=1):
        bound = max(float(table.abs().max()), 1e-9)
        fig.add_trace(go.Heatmap(
            z=table.tolist(), x=[f"H{h}" for h in range(analysis.n_heads)],
            y=[f"L{layer}" for layer in range(analysis.n_layers)], zmin=-bound, zmax=bound, colorscale="RdBu",
            colorbar={"x": 0.44 if col == 1 else 1.0, "len": 0.9},
            hovertemplate=f"{name}<br>%{{y}}%{{x}}: %{{z:.3f}}<extra></extra>",
        ), row=1, col=col)  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title="Each head's direct effect on the logit difference and its patching effect",
                      height=320 + 20 * analysis.n_layers)  # fmt: skip
    return fig


def attention_figure(analysis: IOIAnalysis, heads: list[tuple[int, int]]) -> go.Figure:
    labels = [f"{head_name(*h)} {ROLE_NAMES.get(_role(analysis, *h), '')}".strip() for h in heads]
    fig = go.Figure([
        go.Bar(name="END → IO", x=labels, y=[float(analysis.attn_io[h]) for h in heads], marker_color="#dc2626"),
        go.Bar(name="END → S1 + S2", x=labels, y=[float(analysis.attn_s[h]) for h in heads], marker_color="#6b7280"),
    ])  # fmt: skip
    fig.update_layout(barmode="group", title="Where the candidate heads look from END", yaxis_title="mean attention",
                      yaxis_range=[0, 1])  # fmt: skip
    return fig


def role_table(rows: list[dict], limit: int = 24) -> go.Figure:
    """The role candidates table: the heads by |patching effect|, their numbers and roles."""
    shown = rows[:limit]
    columns = {
        "head": [head_name(r["layer"], r["head"]) for r in shown],
        "roles": [", ".join(ROLE_NAMES[role] for role in r["roles"]) or "—" for r in shown],
        "patching": [f"{r['patching']:+.3f}" for r in shown],
        "DLA": [f"{r['dla']:+.3f}" for r in shown],
        "END→IO": [f"{r['attn_io']:.2f}" for r in shown],
        "END→S": [f"{r['attn_s']:.2f}" for r in shown],
        "S2+1→S1+1": [f"{r['induction']:.2f}" for r in shown],
        "S2→S1": [f"{r['duplicate_token']:.2f}" for r in shown],
        "p→p−1": [f"{r['previous_token']:.2f}" for r in shown],
    }
    widths = [1, 3.2, 1, 1, 1, 1, 1.2, 1, 1.1]  # the roles column holds up to a few names
    fig = go.Figure(
        go.Table(columnwidth=widths, header={"values": list(columns)}, cells={"values": list(columns.values())})
    )
    fig.update_layout(title=f"Role candidates: the {len(shown)} heads with the largest patching effects",
                      height=160 + 30 * len(shown))  # fmt: skip
    return fig


# -- findings ---------------------------------------------------------------------------------------------------


def findings(analysis: IOIAnalysis, top: list[tuple[int, int]], metrics: dict) -> list[str]:
    lines = [
        f"The model's mean logit difference IO − S is {analysis.logit_diff:.2f} on the clean prompts "
        f"(IO above S on {analysis.accuracy:.0%}) and {analysis.corrupt_logit_diff:.2f} on the ABC prompts."
    ]
    layer, head = top[0]
    looks = "IO" if analysis.attn_io[layer, head] > analysis.attn_s[layer, head] else "S1 and S2"
    lines.append(
        f"Patching from ABC, the most important head is {head_name(layer, head)} (layer {layer} of "
        f"{analysis.n_layers}): it moves the logit difference by {metrics['top_head_patching']:+.2f}, writes "
        f"{metrics['top_head_dla']:+.2f} directly (DLA) and looks from END mostly at {looks} "
        f"({metrics['top_head_attn_io']:.2f} to IO, {metrics['top_head_attn_s']:.2f} to S)."
    )
    if looks != "IO" and metrics["top_head_dla"] > 0:
        lines[-1] += " It reads the repeated name and pushes it down: it suppresses S rather than moving IO."
    lines.append(
        f"Mean-ablating the top {count(len(top), 'head')} ({heads_text(top)}) together costs "
        f"{metrics['top_k_ablation_cost']:.2f} of the logit difference."
    )
    roles = analysis.roles
    found = [f"{ROLE_LABELS[role]}: {heads_text(roles[role])}" for role in ROLE_LABELS if roles.get(role)]
    lines.append("Role candidates: " + "; ".join(found) + "." if found else "No head meets any role rule.")
    if analysis.logit_diff < 1:
        lines.append("The model hardly does the task (logit difference below 1): read the roles with care.")
    return lines
