"""Attribution patching: every head's (and MLP neuron's) patching effect from one backward pass, checked
against exact activation patching (catalogue idea #3, "Automate ways to find specific circuits").

Activation patching finds the components a behaviour flows through by swapping one component's activation
from a corrupted prompt into the clean one and measuring a metric: one forward pass per component. Attribution
patching (Nanda 2023; Syed, Rager and Conmy 2023) estimates all of those effects at once from the metric's
gradient at the clean run: (a_corrupt − a_clean) · ∂metric/∂a, summed over positions (and d_head), for each
head's output (`blocks.{l}.attn.hook_z`) and, with `nodes: ["heads", "neurons"]`, each MLP neuron
(`blocks.{l}.mlp.hook_post`). Two forward passes and one backward pass, whatever the number of components
(`experiments.engine.analysis.attribution`).

Beside it the kind runs exact activation patching of the same heads (and neurons) when the model is small
enough (`exact`: "auto" runs it when components × prompts ≤ 65,536 patched prompts per family; "always" up to
4,194,304; "never" skips it), and reports the Spearman rank correlation of the estimates with the exact effects,
the overlap of their top heads, and the top components by estimated effect as the candidate circuit.

Data: `ioi_prompts` (clean vs the ABC corruption; metric: the logit difference IO − S at END, Wang et al. 2022)
or `prompt_pairs` (a researcher's own clean/corrupted pairs with an answer and a wrong answer; metric: their
logit difference at the last token). Models: a checkpoint of a `train_transformer` run on `ioi_prompts`, a
native model (its word vocabulary must hold the IOI words), a pretrained Hugging Face model from a local folder
(its tokenizer; one-token names only), or none: then the run first trains the project's IOI model
(`training`, the recipe of docs/science.md) and analyses it: about seven minutes of one CPU core.

How robust (docs/science.md, "Attribution patching"): on the IOI model trained here with held-out names (the
default), Spearman over its 12 heads was 0.93 on the tuning seed and 0.85 and 0.77 on two seeds drawn after the
defaults were fixed, 4 of the top 5 heads shared, 6-7x faster than exact patching. The misses were layer-0 heads
(the S-inhibition-like head that reads S2 from END), always underestimated, once by 2.3x; on training names,
where the model is sure (logit difference 8.6), that head's exact effect (-5.7) was estimated at -0.4 and the
correlation fell to 0.45: attention saturation (Kramar et al. 2024). Read the estimate's top nodes as candidates
for exact patching, which this kind runs beside them whenever it can.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Literal

import plotly.graph_objects as go
from pydantic import Field, model_validator
from torch import Tensor

from experiments.engine.analysis.attribution import Attribution, attribution_patching, has_neurons
from experiments.engine.analysis.patching import head_patching, neuron_patching
from experiments.engine.analysis.ranks import spearman
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.ioi import (
    NAMES,
    VOCABULARY,
    IOIPrompts,
    TokenizerEncoder,
    WordEncoder,
    encoder_for,
    prompts_for,
)
from experiments.engine.lean import to_bridge
from experiments.engine.models import (
    ArtifactResolver,
    ModelRef,
    NativeConfig,
    NativeModelRef,
    PretrainedModelRef,
    load_model_and_config,
    read_checkpoint_config,
    resolve_pretrained_dir,
)
from experiments.engine.params import KindParams
from experiments.engine.plots import signed_head_heatmaps
from experiments.engine.prompt_pairs import (
    ContrastBatch,
    PairProblems,
    PromptPairs,
    contrast_from_ioi,
    encode_pairs,
)
from experiments.engine.registry import KindResult
from experiments.engine.runtime import within
from experiments.engine.training import IOI_MODEL, TrainingParams, train
from experiments.engine.wording import count, head_name

KEY = "attribution_patching"
TITLE = "Attribution patching: every head's patching effect from one backward pass"
DEVICE = "gpu"
SOFT_TIME_LIMIT = 3600
TIME_LIMIT = 3660
VERSION = "1"

# Exact patching costs one patched copy of every prompt per component: components x prompts "patched prompts".
# "auto" runs it up to EXACT_AUTO_LIMIT (12 heads x 256 prompts are 3,072; GPT-2 small's 144 heads x 256 are 36,864).
EXACT_AUTO_LIMIT = 65_536
EXACT_MAX = 4_194_304  # "always" runs it up to here
MIN_HEADS_FOR_RANKS = 4  # a rank correlation over fewer heads says nothing
ROWS_PER_PASS = 1024  # prompts (patched copies included) per forward pass of exact patching
ATTRIBUTION_ROWS = 256  # prompts per attribution pass (the estimates of several passes are averaged)

# The model trained here when a spec names none: the lead's IOI recipe (docs/science.md): names-only loss, a tenth
# of the rows roll calls, batch 128; the answer loss drops in a phase change near step 800.
# The first IOI recipe (random roll calls, batch 128): it learns IOI on the training names on every seed tried, and
# its science test was measured with it. The ioi kind's IOI_TRAINING (repeated roll calls) generalises to held-out
# names but stayed on the loss plateau for one of this test's seeds (721060381).
DEFAULT_TRAINING = TrainingParams(
    model=IOI_MODEL,
    data=IOIPrompts(train_on="names", roll_call_fraction=0.1),
    steps=3000,
    batch_size=128,
    n_checkpoints=1,
)

METRICS = {
    "clean_logit_difference": "Mean logit difference (answer − wrong answer; IO − S for IOI) at END on the clean "
    "prompts.",
    "corrupt_logit_difference": "The same on the corrupted prompts (ABC for IOI).",
    "head_spearman": "Spearman rank correlation over heads between attribution estimates and exact patching "
    "effects (when exact patching ran).",
    "head_top_k_overlap": "Share of the top_k heads by |exact effect| that are also among the top_k by |estimate|.",
    "head_mean_abs_error": "Mean |estimate − exact effect| over heads, as a share of |clean − corrupt|.",
    "neuron_spearman": "Spearman rank correlation over MLP neurons, estimate vs exact (neurons asked for and exact "
    "patching ran).",
    "top_head_effect": "Estimated effect of the head with the largest |estimate|, as a share of clean − corrupt "
    "(−1: patching it alone would remove the whole difference).",
    "top_head_layer": "Layer of that head.",
    "top_head_head": "Its index within the layer.",
    "speedup": "Wall time of exact patching / wall time of attribution patching, heads (and neurons) alike.",
}
PART_METRICS = {"final_loss": "Mean training loss over the last 50 steps (nats per token)."}


def _default_data() -> IOIPrompts:
    return IOIPrompts(n_prompts=256, names="held_out")


Data = Annotated[IOIPrompts | PromptPairs, Field(discriminator="source")]


class Params(KindParams):
    model: ModelRef | None = Field(
        None,
        description="The model to analyse: a checkpoint of a train_transformer run on ioi_prompts, a native model, "
        "or a pretrained Hugging Face model from a local folder. None trains `training` here first.",
    )
    training: TrainingParams = Field(
        DEFAULT_TRAINING, description="How to train the IOI model when `model` is None (the project's IOI recipe)."
    )
    data: Data = Field(
        default_factory=_default_data,
        description="The clean/corrupted prompts: ioi_prompts (clean vs ABC) or your own prompt_pairs.",
    )
    nodes: list[Literal["heads", "neurons"]] = Field(
        ["heads"], min_length=1, max_length=2, description='["heads"], or ["heads", "neurons"] to add every MLP neuron.'
    )
    exact: Literal["auto", "always", "never"] = Field(
        "auto",
        description=f"Exact activation patching beside the estimates: auto runs it when components x prompts <= "
        f"{EXACT_AUTO_LIMIT:,} (per family: heads, neurons), always up to {EXACT_MAX:,}, never skips it.",
    )
    top_k: int = Field(5, ge=1, le=50, description="How many top heads (and neurons) make the candidate circuit.")

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        if self.nodes not in (["heads"], ["heads", "neurons"]):
            raise ValueError('nodes must be ["heads"] or ["heads", "neurons"]')
        if self.model is None:
            if not isinstance(self.training.data, IOIPrompts):
                raise ValueError("training: the model trained here learns IOI prompts (data source ioi_prompts)")
            if self.training.model.attn_only and "neurons" in self.nodes:
                raise ValueError("nodes: the model trained here is attention-only; it has no MLP neurons")
        return self


# -- checks before a run is queued --------------------------------------------------------------------------------


def _shape(ref, runs) -> tuple[NativeConfig | None, dict | None]:
    """A native config (native or checkpoint) or a pretrained folder's config.json; (None, None) when unreadable."""
    if ref is None:
        return None, None
    if isinstance(ref, NativeModelRef):
        return ref.config, None
    if isinstance(ref, PretrainedModelRef):
        try:
            return None, json.loads((resolve_pretrained_dir(ref.name) / "config.json").read_text(encoding="utf-8"))
        except (ModelNotAvailable, OSError, ValueError):
            return None, None
    try:
        return read_checkpoint_config(runs.artifact_path(ref.run, ref.artifact))[0], None
    except ModelNotAvailable:
        return None, None  # the platform's own check names a missing checkpoint


def _pick(config: dict, *keys: str) -> int | None:
    return next((config[k] for k in keys if isinstance(config.get(k), int)), None)


def _sizes(params: Params, runs) -> dict | None:
    """n_layers, n_heads, d_mlp (0 without MLPs) and n_ctx of the model, or None when they cannot be read here."""
    if params.model is None:
        config = params.training.model
    else:
        config, hf = _shape(params.model, runs)
        if config is None:
            if hf is None:
                return None
            sizes = {
                "n_layers": _pick(hf, "n_layer", "num_hidden_layers", "n_layers"),
                "n_heads": _pick(hf, "n_head", "num_attention_heads", "n_heads"),
                "d_mlp": _pick(hf, "n_inner", "intermediate_size", "ffn_dim", "d_mlp"),
                "n_ctx": _pick(hf, "n_positions", "max_position_embeddings", "n_ctx"),
            }
            if sizes["d_mlp"] is None and (d_model := _pick(hf, "n_embd", "hidden_size", "d_model")):
                sizes["d_mlp"] = 4 * d_model  # GPT-2 leaves n_inner null for 4 x n_embd
            return sizes if None not in sizes.values() else None
    d_mlp = 0 if config.attn_only else config.d_mlp or 4 * config.d_model
    return {"n_layers": config.n_layers, "n_heads": config.n_heads, "d_mlp": d_mlp, "n_ctx": config.n_ctx,
            "d_vocab": config.d_vocab}  # fmt: skip


def _pretrained_tokenizer(ref: PretrainedModelRef):
    """The tokenizer in a pretrained model's folder, or None when it cannot be read here (the worker reports it)."""
    try:
        folder = resolve_pretrained_dir(ref.name)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception:  # any failure to read it here is the worker's to report
        return None


def _n_prompts(data) -> int:
    return data.n_prompts if isinstance(data, IOIPrompts) else len(data.pairs)


def exact_families(params: Params, n_layers: int, n_heads: int, d_mlp: int, n_prompts: int) -> dict[str, int]:
    """{family: patched prompts} of the node families exact patching covers under `params.exact`."""
    if params.exact == "never":
        return {}
    limit = EXACT_AUTO_LIMIT if params.exact == "auto" else EXACT_MAX
    cost = {"heads": n_layers * n_heads * n_prompts, "neurons": n_layers * d_mlp * n_prompts}
    return {family: cost[family] for family in params.nodes if cost[family] <= limit}


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: the model has MLP neurons when they are asked for and enough heads for a rank
    correlation; "always" stays within the exact budget; the prompts fit its vocabulary and context (IOI names one
    token for a pretrained tokenizer; each prompt pair's clean and corrupted prompts as long as each other)."""
    problems: dict[str, str] = {}
    sizes = _sizes(params, runs)
    n_prompts = _n_prompts(params.data)
    if sizes is not None:
        if "neurons" in params.nodes and not sizes["d_mlp"]:
            problems["nodes"] = 'This model is attention-only: it has no MLP neurons. Use nodes ["heads"].'
        heads = sizes["n_layers"] * sizes["n_heads"]
        if params.exact != "never" and heads < MIN_HEADS_FOR_RANKS:
            problems["model"] = (
                f"This model has {count(heads, 'head')}; ranking estimates against exact patching needs at least "
                f'{MIN_HEADS_FOR_RANKS}. Use exact "never" for the estimates alone.'
            )
        if params.exact == "always":
            for family, n in {"heads": heads, "neurons": sizes["n_layers"] * sizes["d_mlp"]}.items():
                if family in params.nodes and n * n_prompts > EXACT_MAX:
                    problems["exact"] = (
                        f"Exact patching of {n:,} {family} on {n_prompts} prompts patches {n * n_prompts:,} prompts; "
                        f'the limit is {EXACT_MAX:,}. Use fewer prompts or exact "auto".'
                    )
    problems.update(_data_problems(params, runs, sizes))
    return problems


def _encoder_here(params: Params, sizes: dict | None) -> WordEncoder | TokenizerEncoder | None:
    """How the model will read the prompts, when that is knowable before the run; None otherwise."""
    if isinstance(params.model, PretrainedModelRef):
        tokenizer = _pretrained_tokenizer(params.model)
        return TokenizerEncoder(tokenizer) if tokenizer is not None else None
    if sizes is None or sizes["d_vocab"] < len(VOCABULARY):
        return None
    return WordEncoder(sizes["d_vocab"])


def _data_problems(params: Params, runs, sizes: dict | None) -> dict[str, str]:
    if sizes is not None and "d_vocab" in sizes and sizes["d_vocab"] < len(VOCABULARY):
        return {
            "model": f"The model's vocabulary has {sizes['d_vocab']} ids; the IOI word vocabulary needs "
            f"{len(VOCABULARY)} (train a model on ioi_prompts, or give a pretrained model with its tokenizer)."
        }
    encoder = _encoder_here(params, sizes)
    if encoder is None:
        return {}
    n_ctx = sizes["n_ctx"] if sizes else 1_000_000
    try:
        if isinstance(params.data, PromptPairs):
            encode_pairs(params.data, encoder, n_ctx=n_ctx)
        else:
            prompts_for(params.data, encoder, n_ctx=n_ctx)
    except PairProblems as exc:
        return {f"data.{field}": why for field, why in exc.problems.items()}
    except EngineError as exc:
        # Too few one-token names: the spec can fix that by asking for all names only if they would do.
        field = "data.names" if len(encoder.usable_names(NAMES)) >= 3 else "model"
        return {field: str(exc)}
    return {}


# -- running ------------------------------------------------------------------------------------------------------


def contrast_for(params: Params, model, device) -> ContrastBatch:
    encoder = encoder_for(model)
    if isinstance(params.data, PromptPairs):
        return encode_pairs(params.data, encoder, n_ctx=model.cfg.n_ctx).to(device)
    return contrast_from_ioi(prompts_for(params.data, encoder, n_ctx=model.cfg.n_ctx)).to(device)


def _load(params: Params, ctx) -> tuple[object, dict]:
    metrics = {}
    if params.model is None:
        with ctx.part("training", "training the IOI model") as part:
            outcome = train(
                params.training, ctx, name_prefix="ioi-", on_progress=within(ctx.progress, 0, 0.7, "training: ")
            )
            part.metrics = {"final_loss": outcome.final_loss}
            part.findings = [
                f"Trained the IOI model for {params.training.steps} steps (final loss {outcome.final_loss:.3f} nats; "
                f"held-out logit difference {outcome.ioi_logit_difference:.2f}, accuracy {outcome.ioi_accuracy:.0%})."
            ]
        return to_bridge(outcome.model, device=ctx.device).eval(), metrics
    ctx.progress(0.05, "loading the model")
    model, _ = load_model_and_config(params.model, ctx)
    return model.eval(), metrics


def _chunked(batch: ContrastBatch, rows: int, measure: Callable[[ContrastBatch], tuple]) -> list[tuple[int, tuple]]:
    return [(min(rows, len(batch) - s), measure(batch.rows(s, s + rows))) for s in range(0, len(batch), rows)]


def _mean(parts: list[tuple[int, object]], pick: Callable[[object], object]):
    total = sum(n for n, _ in parts)
    return sum(pick(result) * (n / total) for n, result in parts)


def run(params: Params, ctx) -> KindResult:
    model, metrics = _load(params, ctx)
    start = 0.7 if params.model is None else 0.1
    if "neurons" in params.nodes and not has_neurons(model):
        raise EngineError('This model is attention-only: it has no MLP neurons. Use nodes ["heads"].')
    batch = contrast_for(params, model, ctx.device)
    cfg = model.cfg
    neurons = "neurons" in params.nodes
    families = exact_families(params, cfg.n_layers, cfg.n_heads, cfg.d_mlp if neurons else 0, len(batch))
    if params.exact == "always" and set(families) != set(params.nodes):
        raise EngineError(f"Exact patching of these nodes on {len(batch)} prompts exceeds {EXACT_MAX:,} prompts.")
    if families and cfg.n_layers * cfg.n_heads < MIN_HEADS_FOR_RANKS:
        raise EngineError(f"This model has {cfg.n_layers * cfg.n_heads} heads; a rank correlation needs "
                          f"{MIN_HEADS_FOR_RANKS}. Use exact \"never\".")  # fmt: skip

    ctx.progress(start, "attribution patching (2 forward passes, 1 backward)")
    began = time.perf_counter()
    parts = _chunked(
        batch, ATTRIBUTION_ROWS,
        lambda b: attribution_patching(model, b.tokens, b.corrupt, b.logit_difference, neurons=neurons),
    )  # fmt: skip
    estimate = Attribution(
        clean=_mean(parts, lambda a: a.clean), corrupt=_mean(parts, lambda a: a.corrupt),
        heads=_mean(parts, lambda a: a.heads), neurons=_mean(parts, lambda a: a.neurons) if neurons else None,
    )  # fmt: skip
    attribution_seconds = time.perf_counter() - began
    ctx.check_cancelled()

    exact: dict[str, Tensor] = {}
    exact_seconds = 0.0
    if "heads" in families:
        ctx.progress(start + 0.1, f"exact patching of {count(cfg.n_layers * cfg.n_heads, 'head')}")
        began = time.perf_counter()
        rows = max(1, ROWS_PER_PASS // cfg.n_heads)
        parts = _chunked(batch, rows, lambda b: head_patching(model, b.tokens, b.corrupt, b.logit_difference))
        exact["heads"] = _mean(parts, lambda p: p.effects)
        exact_seconds += time.perf_counter() - began
        ctx.check_cancelled()
    if "neurons" in families:
        ctx.progress(start + 0.2, f"exact patching of {count(cfg.n_layers * cfg.d_mlp, 'neuron')}")
        began = time.perf_counter()
        parts = _chunked(
            batch, ROWS_PER_PASS,
            lambda b: (neuron_patching(model, b.tokens, b.corrupt, b.logit_difference, max_rows=ROWS_PER_PASS),),
        )  # fmt: skip
        exact["neurons"] = _mean(parts, lambda p: p[0])
        exact_seconds += time.perf_counter() - began
    ctx.progress(0.95, "comparing")

    gap = estimate.clean - estimate.corrupt
    metrics.update(_metrics(estimate, exact, gap, params.top_k))
    if "heads" in exact:
        metrics["speedup"] = exact_seconds / max(attribution_seconds, 1e-9)
    circuit = candidate_circuit(estimate, exact, gap, params.top_k)
    _save(ctx, estimate, exact, gap, circuit)
    skipped = {f: (cfg.n_layers * (cfg.n_heads if f == "heads" else cfg.d_mlp)) for f in params.nodes if f not in exact}
    summary = {
        "circuit": circuit,
        "n_prompts": len(batch),
        "data": params.data.source,
        "exact": sorted(exact),
        "exact_skipped": {f: {"components": n, "patched_prompts": n * len(batch)} for f, n in skipped.items()},
        "seconds": {"attribution": round(attribution_seconds, 4), "exact": round(exact_seconds, 4)},
        "example_prompt": batch.texts[0],
    }
    return KindResult(
        findings=findings(metrics, circuit, summary, params),
        metrics=metrics,
        headline="estimate_vs_exact" if "heads" in exact else "head_effects",
        summary=summary,
    )


def _metrics(estimate: Attribution, exact: dict[str, Tensor], gap: float, top_k: int) -> dict:
    flat = estimate.heads.flatten()
    top = int(flat.abs().argmax())
    n_heads = estimate.heads.shape[1]
    metrics = {
        "clean_logit_difference": estimate.clean,
        "corrupt_logit_difference": estimate.corrupt,
        "top_head_effect": float(flat[top]) / gap if abs(gap) > 1e-9 else 0.0,
        "top_head_layer": top // n_heads,
        "top_head_head": top % n_heads,
    }
    if "heads" in exact:
        truth = exact["heads"].flatten()
        k = min(top_k, len(flat))
        by_estimate = set(flat.abs().topk(k).indices.tolist())
        by_exact = set(truth.abs().topk(k).indices.tolist())
        metrics["head_spearman"] = spearman(flat, truth)
        metrics["head_top_k_overlap"] = len(by_estimate & by_exact) / k
        if abs(gap) > 1e-9:
            metrics["head_mean_abs_error"] = float((flat - truth).abs().mean()) / abs(gap)
    if "neurons" in exact:
        metrics["neuron_spearman"] = spearman(estimate.neurons, exact["neurons"])
    return metrics


def candidate_circuit(estimate: Attribution, exact: dict[str, Tensor], gap: float, top_k: int) -> list[dict]:
    """The top_k heads (and neurons) by |estimated effect|, each with its exact effect when measured, and both as
    a share of clean − corrupt."""

    def share(value: float) -> float | None:
        return round(value / gap, 4) if abs(gap) > 1e-9 else None

    rows = []
    for family, values in (("head", estimate.heads), ("neuron", estimate.neurons)):
        if values is None:
            continue
        truth = exact.get(f"{family}s")
        width = values.shape[1]
        for index in values.flatten().abs().topk(min(top_k, values.numel())).indices.tolist():
            layer, unit = divmod(index, width)
            row = {"node": family, "layer": layer, family: unit, "estimate": round(float(values[layer, unit]), 5),
                   "estimate_share": share(float(values[layer, unit]))}  # fmt: skip
            if truth is not None:
                row["exact"] = round(float(truth[layer, unit]), 5)
                row["exact_share"] = share(float(truth[layer, unit]))
            rows.append(row)
    return rows


def node_name(row: dict) -> str:
    return head_name(row["layer"], row["head"]) if row["node"] == "head" else f"L{row['layer']}N{row['neuron']}"


def _save(ctx, estimate: Attribution, exact: dict[str, Tensor], gap: float, circuit: list[dict]) -> None:
    tensors = {"head_estimates": estimate.heads.contiguous()}
    if estimate.neurons is not None:
        tensors["neuron_estimates"] = estimate.neurons.contiguous()
    tensors.update({f"{family[:-1]}_exact": values.contiguous() for family, values in exact.items()})
    ctx.save_artifact("effects", tensors)
    panels = {"attribution estimate": estimate.heads}
    if "heads" in exact:
        panels["exact patching"] = exact["heads"]
        ctx.save_artifact("estimate_vs_exact", agreement_figure(estimate, exact, circuit))
    ctx.save_artifact(
        "head_effects",
        signed_head_heatmaps(
            panels, title="Effect of patching each head from the corrupted prompts (patched − clean logit difference)",
            value="Δ logit diff",
        ),
    )  # fmt: skip
    if estimate.neurons is not None:
        neuron_panels = {"attribution estimate": estimate.neurons}
        if "neurons" in exact:
            neuron_panels["exact patching"] = exact["neurons"]
        figure = signed_head_heatmaps(neuron_panels, title="Effect of patching each MLP neuron", value="Δ logit diff")
        figure.update_xaxes(showticklabels=False, title_text="neuron")
        ctx.save_artifact("neuron_effects", figure)


def agreement_figure(estimate: Attribution, exact: dict[str, Tensor], circuit: list[dict]) -> go.Figure:
    """Estimate against exact effect, one point per head (and neuron), the diagonal where they agree."""
    fig = go.Figure()
    shown: list[float] = []
    for family, values in (("heads", estimate.heads), ("neurons", estimate.neurons)):
        if family not in exact or values is None:
            continue
        width = values.shape[1]
        labels = [
            head_name(*divmod(i, width)) if family == "heads" else "L{}N{}".format(*divmod(i, width))
            for i in range(values.numel())
        ]
        xs, ys = exact[family].flatten().tolist(), values.flatten().tolist()
        shown += xs + ys
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="markers+text" if family == "heads" and len(xs) <= 48 else "markers",
                text=labels, textposition="top center", name=family,
                marker={"size": 9 if family == "heads" else 4, "opacity": 1 if family == "heads" else 0.5},
                hovertemplate="%{text}<br>exact %{x:.3f}<br>estimate %{y:.3f}<extra></extra>",
            )
        )  # fmt: skip
    low, high = min(shown), max(shown)
    fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="estimate = exact",
                             line={"dash": "dash", "color": "#9ca3af"}))  # fmt: skip
    fig.update_layout(
        title="Attribution patching against exact activation patching (patched − clean logit difference)",
        xaxis_title="exact patching effect", yaxis_title="attribution estimate", height=520,
    )  # fmt: skip
    return fig


def findings(metrics: dict, circuit: list[dict], summary: dict, params: Params) -> list[str]:
    what = "IOI prompts (clean vs ABC)" if summary["data"] == "ioi_prompts" else "prompt pairs"
    lines = [
        f"On {summary['n_prompts']} {what}, the mean logit difference is {metrics['clean_logit_difference']:.2f} "
        f"on the clean prompts and {metrics['corrupt_logit_difference']:.2f} on the corrupted ones."
    ]
    if "head_spearman" in metrics:
        k = params.top_k
        lines.append(
            f"Attribution patching ranks the heads as exact activation patching does with Spearman "
            f"{metrics['head_spearman']:.2f}; {metrics['head_top_k_overlap']:.0%} of the top {k} heads by exact "
            f"effect are among its top {k}"
            + (
                f"; its estimates are off by {metrics['head_mean_abs_error']:.0%} of the clean − corrupt gap on "
                "average."
                if "head_mean_abs_error" in metrics
                else "."
            )
        )
    if "neuron_spearman" in metrics:
        lines.append(f"Over MLP neurons the rank correlation is {metrics['neuron_spearman']:.2f}.")
    heads = [row for row in circuit if row["node"] == "head"]

    def described(row: dict) -> str:
        text = f"{node_name(row)} {row['estimate']:+.2f}"
        return text + (f" (exact {row['exact']:+.2f})" if "exact" in row else "")

    lines.append(f"Candidate circuit, the top {count(len(heads), 'head')} by estimated effect: "
                 + "; ".join(described(r) for r in heads) + ".")  # fmt: skip
    neurons = [row for row in circuit if row["node"] == "neuron"]
    if neurons:
        lines.append(f"Top {count(len(neurons), 'neuron')}: " + "; ".join(described(r) for r in neurons) + ".")
    seconds = summary["seconds"]
    if summary["exact"]:
        lines.append(
            f"Attribution patching took {seconds['attribution']:.2f} s, exact patching {seconds['exact']:.2f} s "
            f"({metrics['speedup']:.0f}x longer)."
        )
    for family, skipped in summary["exact_skipped"].items():
        if params.exact != "never":
            lines.append(
                f"Exact patching of the {skipped['components']:,} {family} was skipped: it would patch "
                f"{skipped['patched_prompts']:,} prompts, over the automatic limit of {EXACT_AUTO_LIMIT:,}."
            )
    return lines
