"""Causal tracing of facts, with two corruptions side by side (catalogue idea #7; Meng et al. 2022, "Locating and
Editing Factual Associations in GPT", ROME, section 2).

Prompts state a fact up to its attribute ("we know that Olin Kira lives in" -> "Paris"; the `facts` dataset,
experiments.engine.facts). The subject's tokens are corrupted, then one hidden state at a time (layer x position)
is restored to its clean value, and the share of the clean answer's probability that comes back is that state's
indirect effect. Restored states: the residual stream after each layer (ROME's hidden states), each layer's
attention output and MLP output (no MLP map for an attention-only model), and, for the attention map, each head's
output on its own (which heads carry the fact). Maps average over prompts by kind of position, as ROME's
figures do: the tokens before the subject, the first, middle and last subject tokens, the first token after it,
further tokens, the last token. A value is (restored - corrupted) / (clean - corrupted) probability of the clean
answer, pooled over the prompts and positions of its cell.

Two corruptions in the same run, as the idea asks:
- noise: Gaussian noise on the subject tokens' embeddings at `noise_scale` x their standard deviation (ROME's
  3), `noise_samples` draws per prompt, the same draws for every restoration;
- resample: the subject replaced by another subject of the same token length whose answer differs (activations
  of a real input rather than off-distribution noise, the objection Zhang & Nanda 2024 raise against noise).
`rank_correlation` is the Spearman correlation of the two corruptions' maps (residual, attention and MLP cells
together): how far the picture depends on the corruption.

Models: a checkpoint of `train_transformer` on `facts` (its facts world is read from the checkpoint), a native
model, a pretrained Hugging Face model from a folder under PRETRAINED_MODEL_DIRS (facts written as text and
tokenized with its tokenizer, so a subject may be several tokens), or, with no model, the default facts model
(`FACTS_TRAINING`, 3 layers with MLPs, 1500 steps) trained in the run first; a partial `training` ({"steps":
3000}, {"model": {"n_layers": 4}}) changes only what it names. Only facts the
model gets right are traced (`known_only`, as ROME traces facts GPT knows). A pretrained model does not know the
made-up facts, so on one `known_only` must be false and the maps say little; what a GPU worker should run on
GPT-2 small is this kind's mechanics on real facts, not yet written (the facts world is made up).

How robust (docs/science.md, "Causal tracing"; three test seeds nobody tuned with): on the default facts model
(3 layers with MLPs, 1500 steps with the loss on every token; a few minutes on one core), a token before the
subject recovers nothing (exactly 0: the causal mask), and of the subject's tokens the last one recovers the most,
after layer 0, where the MLP at the last subject token is the largest MLP site, under both corruptions, on every
seed. Its share reached half of the clean probability under noise on two of three seeds (0.56, 0.44, 0.56) and
under resampling on none (0.48, 0.26, 0.41): in these tiny models the fact is spread over the subject's tokens and
the last token reads part of it directly. The two corruptions' maps ranked alike (Spearman 0.76 to 0.91). With
the loss on the attribute only, the same models read the subject at the last token and the last subject token
recovered a quarter or less.
"""

from __future__ import annotations

from typing import Annotated, Literal

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from pydantic import Field, field_validator, model_validator

from experiments.engine.analysis.ranks import spearman
from experiments.engine.analysis.tracing import (
    CATEGORIES,
    Site,
    Trace,
    embedding_std,
    noise_corruption,
    position_categories,
    recovered_by_category,
    resample_corruption,
    trace,
)
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.facts import (
    FACTS_MODEL,
    FactPrompts,
    Facts,
    fact_prompts,
    fact_world,
    longest_sequence,
    tokenizer_encoder,
    vocabulary_size,
    word_encoder,
)
from experiments.engine.lean import to_bridge
from experiments.engine.models import (
    ArtifactResolver,
    NativeModelRef,
    PretrainedModelRef,
    RunModelRef,
    bos_token,
    load_model_and_config,
    read_checkpoint_config,
)
from experiments.engine.params import KindParams
from experiments.engine.registry import KindResult
from experiments.engine.runtime import within
from experiments.engine.training import TrainingParams, train

KEY = "causal_tracing"
TITLE = "Causal tracing of facts: noise vs resampling"
DEVICE = "gpu"
SOFT_TIME_LIMIT = 3 * 3600
TIME_LIMIT = 3 * 3600 + 120

FACTS_TRAINING = TrainingParams(
    model=FACTS_MODEL, data=Facts(), steps=1500, batch_size=64, lr=3e-3, warmup_steps=100, n_checkpoints=1,
    eval_every=500,
)  # fmt: skip
CORRUPTIONS = ("noise", "resample")
COMPONENT_LABELS = {"resid": "residual stream", "attn": "attention output", "mlp": "MLP output"}
MIN_PROMPTS = 4  # fewer known facts than this and a map is noise
LAST_SUBJECT = CATEGORIES.index("last subject token")
BEFORE_SUBJECT = CATEGORIES.index("before the subject")
LAST_TOKEN = CATEGORIES.index("last token")

METRICS = {
    "clean_probability": "Mean probability of the right attribute on the clean prompts traced.",
    **{f"{c}_corrupted_probability": f"The same with the subject corrupted by {c}." for c in CORRUPTIONS},
    **{
        f"last_subject_recovery_{c}": f"Under {c}: the most of the clean probability (fraction of what the "
        "corruption took) that restoring the residual stream at the last subject token brings back, over layers."
        for c in CORRUPTIONS
    },
    **{f"last_subject_layer_{c}": f"The layer where it peaks, under {c}." for c in CORRUPTIONS},
    **{
        f"before_subject_recovery_{c}": f"Under {c}: the most that restoring the residual stream at a token "
        "before the subject brings back, over layers (0: nothing flows back in time)."
        for c in CORRUPTIONS
    },
    **{
        f"mlp_last_subject_recovery_{c}": f"Under {c}: the most that restoring one MLP output at the last "
        "subject token brings back, over layers (models with MLPs)."
        for c in CORRUPTIONS
    },
    **{
        f"top_head_recovery_{c}": f"Under {c}: the most that restoring one head's output at one kind of "
        "position brings back."
        for c in CORRUPTIONS
    },
    "rank_correlation": "Spearman correlation between the noise and the resampling maps (residual, attention and "
    "MLP cells together).",
    "n_prompts": "Prompts traced.",
    "known_fraction": "Share of the candidate prompts whose attribute the model ranks first.",
}


class Params(KindParams):
    model: Annotated[NativeModelRef | RunModelRef | PretrainedModelRef, Field(discriminator="source")] | None = Field(
        None,
        description="The model to trace: a checkpoint of a train_transformer run on facts, a native model, or a "
        "pretrained model from a local folder. None trains `training` here first.",
    )
    training: TrainingParams = Field(
        FACTS_TRAINING, description="How to train the facts model when `model` is None (on `facts`)."
    )
    facts: Facts | None = Field(
        None,
        description="The facts world. None: the one a checkpoint was trained on, `training.data` when the model is "
        "trained here, else the default world.",
    )
    templates: Literal["held_out", "training"] = Field(
        "held_out", description="Trace the held-out paraphrase templates, or the training ones."
    )
    n_prompts: int = Field(64, ge=MIN_PROMPTS, le=1024, description="Prompts to trace (facts the model knows).")
    noise_samples: int = Field(10, ge=1, le=50, description="Noise draws per prompt (ROME: 10).")
    noise_scale: float = Field(
        3.0, gt=0, le=20, description="Noise standard deviation in units of the subject embeddings' (ROME: 3)."
    )
    known_only: bool = Field(True, description="Trace only facts the model gets right (ROME's choice).")
    per_head: bool = Field(True, description="Also restore each attention head's output on its own.")

    @field_validator("training", mode="before")
    @classmethod
    def _over_default_training(cls, value: object) -> object:
        # {"steps": 500} means the default facts training for 500 steps; {"model": {"n_layers": 3}} the default
        # facts model with three layers.
        if isinstance(value, dict):
            merged = FACTS_TRAINING.model_dump() | value
            if isinstance(value.get("model"), dict):
                merged["model"] = FACTS_MODEL.model_dump() | value["model"]
            return merged
        return value

    @model_validator(mode="after")
    def _facts_model(self) -> Params:
        if self.model is None and not isinstance(self.training.data, Facts):
            raise ValueError("training.data: the model trained here must be trained on facts")
        if self.model is None and self.facts is not None and self.facts != self.training.data:
            raise ValueError("facts: leave it out (or equal to training.data) when the model is trained here")
        return self


def _checkpoint_facts(ref: RunModelRef, runs: ArtifactResolver) -> Facts | None:
    """The facts world a checkpoint was trained on, from its meta (None when it was not trained on facts)."""
    meta = read_checkpoint_config(runs.artifact_path(ref.run, ref.artifact))[1]
    data = meta.get("data") or {}
    return Facts.model_validate(data) if data.get("source") == "facts" else None


def traced_facts(params: Params, runs: ArtifactResolver | None) -> Facts:
    if params.facts is not None:
        return params.facts
    if params.model is None:
        return params.training.data
    if isinstance(params.model, RunModelRef) and runs is not None:
        return _checkpoint_facts(params.model, runs) or Facts()
    return Facts()


def split_size(facts: Facts, templates: str) -> int:
    """Prompts a facts world has in one split (every subject with every template of it)."""
    world = fact_world(facts)
    return facts.n_subjects * sum(t.held_out == (templates == "held_out") for t in world.templates)


def check_references(params: Params, runs: ArtifactResolver) -> dict[str, str]:
    """Before a run is queued: the facts have as many prompts as asked for, and a native model or checkpoint has
    the vocabulary and context the facts need."""
    problems = {}
    try:
        facts = traced_facts(params, runs)
    except ModelNotAvailable:
        return {}  # the spec check names a missing checkpoint
    available = split_size(facts, params.templates)
    if params.n_prompts > available:
        problems["n_prompts"] = (
            f"The facts have {available} {params.templates.replace('_', '-')} prompts ({facts.n_subjects} subjects "
            f"x their templates); n_prompts={params.n_prompts} asks for more. Lower it or add subjects."
        )
    config = None
    if isinstance(params.model, NativeModelRef):
        config = params.model.config
    elif isinstance(params.model, RunModelRef):
        try:
            config = read_checkpoint_config(runs.artifact_path(params.model.run, params.model.artifact))[0]
        except ModelNotAvailable:
            config = None
    if config is not None:
        if (words := vocabulary_size(facts)) > config.d_vocab:
            problems["model"] = f"The facts vocabulary has {words} words; the model's has {config.d_vocab}."
        elif (length := longest_sequence(facts)) > config.n_ctx:
            problems["model"] = f"The longest fact is {length} tokens; the model's context is {config.n_ctx}."
    return problems


# -- prompts --------------------------------------------------------------------------------------------------


def prompt_pool(model, facts: Facts, params: Params, pretrained: bool) -> FactPrompts:
    world = fact_world(facts)
    held_out = params.templates == "held_out"
    if not pretrained:
        if vocabulary_size(facts) > model.cfg.d_vocab:
            raise EngineError(f"The facts vocabulary has {vocabulary_size(facts)} words; the model's has "
                              f"{model.cfg.d_vocab}.")  # fmt: skip
        return fact_prompts(world, held_out=held_out, encode=word_encoder(world))
    tokenizer = model.tokenizer
    pad = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)
    return fact_prompts(world, held_out=held_out, encode=tokenizer_encoder(tokenizer), bos=bos_token(model), pad=pad)


def resample_partners(pool: FactPrompts, generator: torch.Generator) -> torch.Tensor:
    """For each prompt, another prompt of the same template whose subject has as many tokens and whose answer
    differs (-1 where there is none): the resampling corruption."""
    length = pool.subject_end - pool.subject_start
    partners = torch.full((len(pool),), -1)
    draws = torch.rand(len(pool), generator=generator)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, key in enumerate(zip(pool.template.tolist(), length.tolist(), strict=True)):
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        members_t = torch.tensor(members)
        for i in members:
            candidates = members_t[pool.answer[members_t] != pool.answer[i]]
            if len(candidates):
                partners[i] = candidates[int(draws[i] * len(candidates))]
    return partners


@torch.no_grad()
def known(model, pool: FactPrompts, device) -> torch.Tensor:
    """Whether the model ranks each prompt's attribute first."""
    chunk = max(1, 20_000_000 // (pool.tokens.shape[1] * model.cfg.d_vocab))
    right = []
    for start in range(0, len(pool), chunk):
        part = pool.select(torch.arange(start, min(start + chunk, len(pool))))
        logits = model(part.tokens.to(device))
        right.append(logits[torch.arange(len(part)), part.last.to(device)].argmax(-1).cpu() == part.answer)
    return torch.cat(right)


def choose_prompts(model, pool: FactPrompts, params: Params, ctx) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The traced prompts (rows of the pool), their resampling partners, and the share of the pool known."""
    generator = torch.Generator().manual_seed(ctx.seed + 11)
    partners = resample_partners(pool, generator)
    right = known(model, pool, ctx.device)
    usable = partners >= 0
    if params.known_only:
        usable &= right
    order = torch.randperm(len(pool), generator=generator)
    chosen = order[usable[order]][: params.n_prompts]
    if len(chosen) < MIN_PROMPTS:
        why = " the model knows" if params.known_only else ""
        raise EngineError(
            f"Only {len(chosen)} facts{why} have a resampling partner; tracing needs at least {MIN_PROMPTS}. "
            + ("Train the model longer, or set known_only to false." if params.known_only else "Add subjects.")
        )
    return chosen, partners[chosen], float(right.float().mean())


# -- running ----------------------------------------------------------------------------------------------------


def run(params: Params, ctx) -> KindResult:
    metrics: dict[str, float] = {}
    if params.model is None:
        with ctx.part("facts_model", "facts model") as part:
            outcome = train(params.training, ctx, on_progress=within(ctx.progress, 0, 0.4, "training: "))
            part.metrics = {"final_loss": outcome.final_loss, "facts_accuracy": outcome.facts_accuracy,
                            "paraphrase_accuracy": outcome.paraphrase_accuracy}  # fmt: skip
            part.findings = [
                f"Trained the facts model for {params.training.steps} steps: it answers "
                f"{outcome.facts_accuracy:.0%} of the training prompts and {outcome.paraphrase_accuracy:.0%} of "
                "the held-out paraphrases."
            ]
        model, start = to_bridge(outcome.model, device=ctx.device), 0.4
    else:
        ctx.progress(0.02, "loading the model")
        model, start = load_model_and_config(params.model, ctx)[0], 0.05
    model.eval()
    pretrained = isinstance(params.model, PretrainedModelRef)
    facts = traced_facts(params, ctx.artifact_resolver)
    pool = prompt_pool(model, facts, params, pretrained)
    if pool.tokens.shape[1] > model.cfg.n_ctx:
        raise EngineError(f"The longest prompt is {pool.tokens.shape[1]} tokens; the model's context is "
                          f"{model.cfg.n_ctx}.")  # fmt: skip
    chosen, partners, known_fraction = choose_prompts(model, pool, params, ctx)
    prompts = pool.select(chosen)

    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    components = ["resid", "attn"] + ([] if getattr(model.cfg, "attn_only", False) else ["mlp"])
    sites = [Site(c, layer) for c in components for layer in range(n_layers)]
    if params.per_head:
        sites += [Site("head", layer, head) for layer in range(n_layers) for head in range(n_heads)]

    std = embedding_std(model, prompts.tokens.to(ctx.device), prompts.subject_mask)
    generator = torch.Generator().manual_seed(ctx.seed + 13)
    corruptions = {
        "noise": noise_corruption(
            prompts.tokens, prompts.subject_mask, std=params.noise_scale * std, samples=params.noise_samples,
            generator=generator, d_model=model.cfg.d_model,
        ),
        "resample": resample_corruption(pool.tokens[partners]),
    }  # fmt: skip
    traces: dict[str, Trace] = {}
    for i, (name, corruption) in enumerate(corruptions.items()):
        ctx.check_cancelled()
        report = within(ctx.progress, start + (0.95 - start) * i / 2, start + (0.95 - start) * (i + 1) / 2,
                        f"tracing under {name}: ")  # fmt: skip

        def on_site(done: int, total: int, report=report) -> None:
            ctx.check_cancelled()
            report(done / total, f"{done}/{total} sites restored")

        traces[name] = trace(model, prompts.tokens, prompts.last, prompts.answer, corruption, sites, on_site=on_site)

    categories = position_categories(prompts.subject_start, prompts.subject_end, prompts.last, prompts.tokens.shape[1])
    maps = {
        name: {
            c: torch.stack([recovered_by_category(t, categories, Site(c, layer)) for layer in range(n_layers)])
            for c in components
        }
        for name, t in traces.items()
    }  # [layer, category] per corruption and component
    heads = (
        {name: torch.stack([recovered_by_category(t, categories, s) for s in sites if s.head is not None])
         for name, t in traces.items()}
        if params.per_head else {}
    )  # fmt: skip  # [layer * head, category]

    metrics.update(_metrics(traces, maps, heads, components))
    metrics["n_prompts"], metrics["known_fraction"] = len(prompts), known_fraction
    _save(ctx, maps, heads, components, n_heads)
    summary = _summary(params, facts, prompts, pool, partners, maps, heads, components, n_heads, std, pretrained)
    return KindResult(findings=findings(metrics, summary), metrics=metrics, headline="tracing_maps", summary=summary)


def _finite_max(values: torch.Tensor) -> tuple[float, int]:
    """The largest finite value and its index; (nan, -1) when none is finite."""
    finite = torch.isfinite(values)
    if not finite.any():
        return float("nan"), -1
    index = int(torch.where(finite, values, torch.tensor(float("-inf"))).argmax())
    return float(values[index]), index


def _metrics(traces: dict[str, Trace], maps: dict, heads: dict, components: list[str]) -> dict[str, float]:
    out = {"clean_probability": float(traces["noise"].clean.mean())}
    for name, t in traces.items():
        out[f"{name}_corrupted_probability"] = float(t.corrupt.mean())
        value, layer = _finite_max(maps[name]["resid"][:, LAST_SUBJECT])
        out[f"last_subject_recovery_{name}"], out[f"last_subject_layer_{name}"] = value, layer
        out[f"before_subject_recovery_{name}"] = _finite_max(maps[name]["resid"][:, BEFORE_SUBJECT])[0]
        if "mlp" in components:
            out[f"mlp_last_subject_recovery_{name}"] = _finite_max(maps[name]["mlp"][:, LAST_SUBJECT])[0]
        if heads:
            out[f"top_head_recovery_{name}"] = _finite_max(heads[name].flatten())[0]
    cells = [torch.stack([maps[name][c].flatten() for c in components]).flatten() for name in CORRUPTIONS]
    finite = torch.isfinite(cells[0]) & torch.isfinite(cells[1])
    out["rank_correlation"] = spearman(cells[0][finite], cells[1][finite]) if finite.sum() > 2 else float("nan")
    return out


def _summary(params, facts, prompts, pool, partners, maps, heads, components, n_heads, std, pretrained) -> dict:
    def table(values: torch.Tensor) -> list[list[float | None]]:
        return [[round(float(v), 4) if torch.isfinite(v) else None for v in row] for row in values]

    summary = {
        "categories": list(CATEGORIES),
        "maps": {name: {c: table(m[c]) for c in components} for name, m in maps.items()},
        "facts": facts.model_dump(),
        "templates": params.templates,
        "noise_std": std * params.noise_scale,
        "embedding_std": std,
        "subject_token_lengths": sorted({int(n) for n in prompts.subject_end - prompts.subject_start}),
        "tokenized_with": "the model's tokenizer" if pretrained else "the facts' word vocabulary",
        "restored_residual": "blocks.<layer>.hook_resid_post (the residual stream after the layer)",
    }
    if heads:
        summary["heads"] = {name: table(h) for name, h in heads.items()}
        ranked = []
        for name, h in heads.items():
            value, index = _finite_max(h.flatten())
            if index >= 0:
                row, category = divmod(index, len(CATEGORIES))
                ranked.append({"corruption": name, "layer": row // n_heads, "head": row % n_heads,
                               "position": CATEGORIES[category], "recovery": round(value, 4)})  # fmt: skip
        summary["top_heads"] = ranked
    return summary


# -- figures and findings ---------------------------------------------------------------------------------------


def _save(ctx, maps: dict, heads: dict, components: list[str], n_heads: int) -> None:
    n_layers = next(iter(maps.values()))["resid"].shape[0]
    titles = [f"{COMPONENT_LABELS[c]}, {name}" for name in CORRUPTIONS for c in components]
    fig = make_subplots(rows=2, cols=len(components), subplot_titles=titles, horizontal_spacing=0.06,
                        vertical_spacing=0.14)  # fmt: skip
    for row, name in enumerate(CORRUPTIONS, start=1):
        for col, c in enumerate(components, start=1):
            values = maps[name][c]
            fig.add_trace(
                go.Heatmap(
                    z=values.T.tolist(), x=[f"L{layer}" for layer in range(n_layers)], y=list(CATEGORIES),
                    zmin=0, zmax=1, coloraxis="coloraxis",
                    hovertemplate=f"{COMPONENT_LABELS[c]}, {name}<br>%{{y}}, %{{x}}: %{{z:.2f}}<extra></extra>",
                ),
                row=row, col=col,
            )  # fmt: skip
    fig.update_layout(
        title="Share of the clean probability restored, by layer and position (top: noise; bottom: resampling)",
        coloraxis={"colorscale": "Purples", "colorbar": {"title": "restored"}}, height=720,
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    ctx.save_artifact("tracing_maps", fig)
    if heads:
        labels = [f"L{layer}H{head}" for layer in range(n_layers) for head in range(n_heads)]
        fig = make_subplots(rows=1, cols=2, subplot_titles=[f"heads, {name}" for name in CORRUPTIONS])
        for col, name in enumerate(CORRUPTIONS, start=1):
            fig.add_trace(
                go.Heatmap(
                    z=heads[name].T.tolist(), x=labels, y=list(CATEGORIES), zmin=0, zmax=1, coloraxis="coloraxis",
                    hovertemplate=f"{name}<br>%{{x}} at %{{y}}: %{{z:.2f}}<extra></extra>",
                ),
                row=1, col=col,
            )  # fmt: skip
        fig.update_layout(
            title="Share of the clean probability restored by one head's output", height=420,
            coloraxis={"colorscale": "Purples", "colorbar": {"title": "restored"}},
        )  # fmt: skip
        fig.update_yaxes(autorange="reversed")
        ctx.save_artifact("head_maps", fig)
    ctx.save_artifact(
        "tracing", {name: {c: maps[name][c].contiguous() for c in components} for name in CORRUPTIONS}
        | ({f"{name}_heads": heads[name].contiguous() for name in heads} if heads else {}),
    )  # fmt: skip


def findings(metrics: dict, summary: dict) -> list[str]:
    """What the maps show, from the metrics and the summary's tables."""
    lines = [
        f"Traced {int(metrics['n_prompts'])} facts ({summary['templates'].replace('_', '-')} templates; the model "
        f"knows {metrics['known_fraction']:.0%} of them): the right attribute has probability "
        f"{metrics['clean_probability']:.2f} clean, {metrics['noise_corrupted_probability']:.2f} with noise on the "
        f"subject and {metrics['resample_corrupted_probability']:.2f} with another subject in its place."
    ]
    for name in CORRUPTIONS:
        recovery, layer = metrics[f"last_subject_recovery_{name}"], metrics[f"last_subject_layer_{name}"]
        if recovery == recovery:  # not NaN
            line = (
                f"Under {'noise' if name == 'noise' else 'resampling'}, restoring the residual stream at the last "
                f"subject token after layer {int(layer)} recovers {recovery:.0%} of the clean probability; "
                f"at a token before the subject, at most {metrics[f'before_subject_recovery_{name}']:.0%}"
            )
            if f"mlp_last_subject_recovery_{name}" in metrics:
                mlp = metrics[f"mlp_last_subject_recovery_{name}"]
                line += f"; one MLP output at the last subject token, up to {mlp:.0%}"
            lines.append(line + ".")
    correlation = metrics["rank_correlation"]
    if correlation == correlation:
        agree = "agree" if correlation >= 0.7 else "partly agree" if correlation >= 0.4 else "disagree"
        lines.append(f"The two corruptions' maps {agree}: Spearman rank correlation {correlation:.2f}.")
    for row in summary.get("top_heads", []):
        lines.append(
            f"Under {row['corruption']}, the head that carries most is L{row['layer']}H{row['head']}: restoring its "
            f"output at the {row['position']} recovers {row['recovery']:.0%}."
        )
    return lines
