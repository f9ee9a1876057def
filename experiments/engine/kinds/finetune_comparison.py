"""Does fine-tuning build new circuits, or re-weight the ones a model already has? (catalogue idea #9)

Takes a model (a checkpoint of an earlier run, a pretrained Hugging Face model,
or the project's default 2-layer induction model trained inside this run
first), fine-tunes it on a second
dataset (by default `markov_text`: "text" with bigram statistics the model has
never seen, in which phrases repeat), and compares the model before and after,
head by head, on the same inputs:

- head-type scores on repeated random tokens (previous-token, duplicate-token,
  induction; Olsson et al. 2022, "In-context Learning and Induction Heads");
- the Jensen-Shannon divergence between each head's attention patterns before
  and after (bits, 0..1, averaged over queries), on the original and the new data;
- each head's zero-ablation importance (loss increase) on the original data
  (repeated random tokens) and on the new data;
- the loss on the original data, on each half of the repeated tokens: what
  fine-tuning cost, and whether the in-context copying or the rest paid.

Each head is classified by the rules in `RULES` (thresholds are the module
constants): *kept*, *re-weighted*, *new*, *lost* or *inactive*.
`new_circuit_fraction` = new heads / heads important after fine-tuning (0 when
none are): the share of what the fine-tuned model relies on that was not there
before. The catalogue's hypothesis (fine-tuning re-weights existing circuits)
predicts it near 0. Jain et al. 2023 ("Mechanistically analyzing the effects
of fine-tuning on procedurally defined tasks") and Prakash et al. 2024
("Fine-tuning enhances existing mechanisms") report the same picture in larger
models.

How robust (docs/science.md, "Fine-tuning"; five seeds nobody tuned with): with
the defaults (the base model trained here for 3000 steps, then 1000 fine-tuning
steps at a tenth of its rate on Markov text; one to two minutes on one core),
every seed kept an induction head >= 0.5 (best 0.68-0.79 after, 0.83-0.89
before) and lost none; the induction heads were re-weighted, not kept (scores
down 0.09-0.16, patterns moved 0.24-0.33 bits); new_circuit_fraction was 0 on
four seeds and 0.25 on one (two idle layer-0 heads recruited). Fine-tuned on
text with short repeats instead, at least half of the induction heads were
kept on every seed (2-4 of 4), the rest re-weighted (their importance on the
original data halved), none new or lost.

A pretrained base (`{"source": "pretrained", "name": "/models/gpt2"}`, a folder
under PRETRAINED_MODEL_DIRS) has no LeanTransformer twin: it is measured, then
fine-tuned in place through its TransformerBridge (`training.finetune_bridge`:
AdamW with the same warm-up and cosine schedule, next-token cross-entropy on
the bridge's logits, the model's dropout on) and measured again; its heads are
ablated through hooks. It is fine-tuned on `markov_text` or
`induction_training` drawn in its vocabulary, in sequences of
`pretrained_sequence_length` tokens (at most its context) that start with its
BOS. An uploaded `text_corpus` is refused for it (tokenized with the platform's
tokenizer, not the model's), and its fine-tuned weights are not saved (too
large to keep per run; the run's log and summary say so). What a GPU worker
should run: GPT-2 small fine-tuned on Markov text with the defaults (1000
steps of 32 sequences of 64 tokens; zero-ablating its 144 heads through hooks
runs 768 sequences at once: some 30 GB of logits, by estimate). Here it was run
only on a tiny randomly initialised GPT-2 for a few steps: whether the picture
above holds for GPT-2 small, and how long it takes, is unmeasured.
"""

from __future__ import annotations

from typing import Annotated

import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from jaxtyping import Float
from pydantic import Field, model_validator
from torch import Tensor

from experiments.engine.analysis.ablation import head_ablation
from experiments.engine.analysis.heads import THRESHOLDS, head_scores
from experiments.engine.datasets import (
    DatasetNotAvailable,
    MarkovText,
    RepeatedRandomTokens,
    TextCorpus,
    TrainingData,
    corpus_tokens,
)
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.kinds._inputs import context_problem, eval_tokens, model_shape, repeated_tokens_for
from experiments.engine.lean import lean_from_bridge, to_bridge
from experiments.engine.models import (
    ArtifactResolver,
    NativeConfig,
    NativeModelRef,
    PretrainedModelRef,
    RunModelRef,
    load_model_and_config,
    read_checkpoint_config,
)
from experiments.engine.params import KindParams
from experiments.engine.plots import head_heatmaps
from experiments.engine.registry import KindResult
from experiments.engine.runtime import within
from experiments.engine.training import (
    MAX_TRAINING_TOKENS,
    TrainingParams,
    bridge_batch,
    finetune_bridge,
    repeated_token_losses,
    train,
)
from experiments.engine.training import SERIES as TRAINING_SERIES
from experiments.engine.wording import count, head_name, heads_text

KEY = "finetune_comparison"
TITLE = "Fine-tuning: which heads are kept, re-weighted, new or lost"
DEVICE = "gpu"
SOFT_TIME_LIMIT = 3 * 3600
TIME_LIMIT = 3 * 3600 + 120

# The head types the classification reads (fixed-offset scores of analysis.heads, typed at THRESHOLDS).
TYPES = ("previous_token", "duplicate_token", "induction")
# Important: zero-ablating the head raises the mean loss on the original or on the new data by at least
# IMPORTANT_NATS. In use: by at least IN_USE_NATS. The gap between them keeps a head that hovers near the line
# (0.09 nats before, 0.11 after) from being called new or lost: it was in use both times, so it is re-weighted.
IMPORTANT_NATS = 0.1
IN_USE_NATS = 0.05
# Kept needs all three small: attention patterns (Jensen-Shannon divergence, bits), type scores, importance.
KEPT_MAX_JS = 0.15
KEPT_MAX_SCORE_CHANGE = 0.2
KEPT_MAX_IMPORTANCE_CHANGE = 0.5  # |after - before| / the larger (each at least IN_USE_NATS), on each data
CLASSES = ("kept", "re-weighted", "new", "lost", "inactive")
RULES = {
    "important": f"zero-ablation raises the loss on the original or on the new data by >= {IMPORTANT_NATS} nats",
    "in use": f"zero-ablation raises the loss on either data by >= {IN_USE_NATS} nats",
    "typed": f"a previous-token, duplicate-token or induction score >= {THRESHOLDS['induction']}",
    "kept": f"important or typed, and in use or typed both before and after, with the same types, attention "
    f"patterns within {KEPT_MAX_JS} bits (Jensen-Shannon, on each data), no type score moved by more than "
    f"{KEPT_MAX_SCORE_CHANGE} and the importance on each data changed by at most {KEPT_MAX_IMPORTANCE_CHANGE:.0%} "
    "of the larger",
    "re-weighted": "like kept, but not within those limits (up- or down-weighted, or its pattern or types changed)",
    "new": "important after fine-tuning; before, neither in use nor typed",
    "lost": "important or typed before; after, neither in use nor typed",
    "inactive": "neither important nor typed at either time",
}
CLASS_COLORS = {
    "kept": "#15803d",
    "re-weighted": "#ca8a04",
    "new": "#dc2626",
    "lost": "#6b7280",
    "inactive": "#e5e7eb",
}
METRICS = {
    "new_circuit_fraction": "New heads / heads important after fine-tuning (0 when none are): the share of what "
    "the fine-tuned model relies on that was neither in use nor typed before.",
    **{f"n_{c.replace('-', '')}_heads": f"Heads classified {c} ({RULES[c]})." for c in CLASSES},
    "n_important_before": f"Heads important before fine-tuning (ablation costs >= {IMPORTANT_NATS} nats on the "
    "original or the new data).",
    "n_important_after": "Heads important after fine-tuning.",
    "induction_score_before": "Best induction score of any head before fine-tuning.",
    "induction_score_after": "Best induction score of any head after fine-tuning.",
    "induction_heads_kept_fraction": "Share of the induction heads before (score >= 0.4) classified kept.",
    "original_loss_before": "Mean loss on the original data (repeated random tokens) before fine-tuning.",
    "original_loss_after": "The same after fine-tuning: how much was lost.",
    "original_second_half_loss_before": "Loss on the second half of the repeated tokens (in-context copying), before.",
    "original_second_half_loss_after": "The same after fine-tuning.",
    "original_first_half_loss_before": "Loss on the first half of the repeated tokens (nothing to copy yet), before.",
    "original_first_half_loss_after": "The same after fine-tuning.",
    "new_data_loss_before": "Mean loss on the fine-tuning data before fine-tuning.",
    "new_data_loss_after": "Mean loss on the fine-tuning data after.",
    "max_js_divergence": "Largest per-head Jensen-Shannon divergence of attention, before vs after (bits).",
    "mean_js_divergence": "Mean per-head Jensen-Shannon divergence of attention on the original data (bits).",
    "base_final_loss": "Base model trained in this run: mean training loss over its last 50 steps.",
    "finetune_final_loss": "Fine-tuning: mean training loss over its last 50 steps.",
}
PART_METRICS = {"final_loss": "Mean training loss over the last 50 steps (nats per token)."}
SERIES = TRAINING_SERIES


# A text corpus is tokenized with the platform's own tokenizer (BPE trained on it, or characters), whose ids mean
# nothing to a pretrained model's embedding.
PRETRAINED_TEXT_CORPUS = (
    "A pretrained base is fine-tuned on generated data only (markov_text or induction_training): an uploaded "
    "text_corpus is tokenized with the platform's tokenizer, not the model's, so its token ids would mean nothing "
    "to the model."
)
NOT_SAVED = "The fine-tuned weights of a pretrained model are not saved (too large to keep per run)."


class Params(KindParams):
    base: Annotated[NativeModelRef | RunModelRef | PretrainedModelRef, Field(discriminator="source")] | None = Field(
        None,
        description="The model to fine-tune: a checkpoint of an earlier run, a pretrained Hugging Face model from a "
        "local folder (fine-tuned on generated data in its own vocabulary; its weights are not saved), or a freshly "
        "initialised native model (a control that builds every circuit anew). None trains `base_training` here "
        "first.",
    )
    base_training: TrainingParams = Field(
        TrainingParams(n_checkpoints=1),
        description="How to train the base model when `base` is None (default: the project's 2-layer induction model).",
    )
    finetune_data: TrainingData = Field(
        MarkovText(branching=8),
        description="What to fine-tune on (default: Markov text, 8 likely successors per token, phrases repeated).",
    )
    steps: int = Field(1000, ge=1, le=20_000, description="Fine-tuning steps.")
    batch_size: int = Field(32, ge=1, le=512, description="Fine-tuning batch size.")
    lr: float = Field(
        3e-4, gt=0, le=0.1, description="Peak fine-tuning learning rate (AdamW, warm-up then cosine; a tenth of the "
        "base training's).",
    )  # fmt: skip
    warmup_steps: int = Field(100, ge=0, le=5000, description="Fine-tuning warm-up steps.")
    original_data: RepeatedRandomTokens = Field(
        RepeatedRandomTokens(n_sequences=64, half_length=31),
        description="The before/after comparison's inputs: head types, patterns, importance and loss by half.",
    )
    n_new_sequences: int = Field(64, ge=8, le=1024, description="Sequences of the new data to measure on.")
    pretrained_sequence_length: int = Field(
        64, ge=8, le=1024, description="For a pretrained base only: tokens per fine-tuning and new-data sequence "
        "(at most its context). A native base uses its whole context, n_ctx.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _trainable(self) -> Params:
        if isinstance(self.base, NativeModelRef) and self.base.config.positional_embedding_type != "standard":
            raise ValueError("base: fine-tuning supports standard positional embeddings")
        if self.warmup_steps > self.steps:
            raise ValueError("warmup_steps must not exceed steps")
        if isinstance(self.base, PretrainedModelRef):
            problem = self.too_many_tokens(self.pretrained_sequence_length, "pretrained_sequence_length")
            if problem:
                raise ValueError(problem)
            return self
        config = self.base_training.model if self.base is None else getattr(self.base, "config", None)
        if config is not None and (problem := self.too_many_tokens(config.n_ctx)):
            raise ValueError(problem)
        return self

    def too_many_tokens(self, length: int, length_name: str = "n_ctx") -> str | None:
        """Why fine-tuning on sequences of `length` tokens would exceed the training loop's token budget, or None."""
        tokens = self.steps * self.batch_size * length
        if tokens <= MAX_TRAINING_TOKENS:
            return None
        return f"steps x batch_size x {length_name} = {tokens:,} tokens; the limit is {MAX_TRAINING_TOKENS:,}"


def _base_config(params: Params, runs: ArtifactResolver) -> NativeConfig | None:
    """The base model's architecture, read without loading it (None when its checkpoint cannot be read: the
    spec check names that)."""
    if params.base is None:
        return params.base_training.model
    if isinstance(params.base, NativeModelRef):
        return params.base.config
    try:
        return read_checkpoint_config(runs.artifact_path(params.base.run, params.base.artifact))[0]
    except ModelNotAvailable:
        return None


BPE_MIN_VOCAB = 257  # the byte-level alphabet and BOS: a BPE tokenizer of any vocab_size has at least these


def _corpus_problem(ref: TextCorpus, config: NativeConfig, runs) -> str | None:
    """Why the corpus cannot be fed to the model (its vocabulary exceeds the model's, or it is shorter than one
    sequence), or None. A BPE vocabulary is bounded without tokenizing when the bounds decide."""
    try:
        runs.dataset_path(ref.dataset)
    except DatasetNotAvailable:
        return None  # the spec check names a missing dataset
    if ref.tokenizer == "bpe":
        if BPE_MIN_VOCAB > config.d_vocab:
            return (
                f"A BPE tokenization has at least {BPE_MIN_VOCAB} token ids (256 bytes and BOS); the model's "
                f"vocabulary is {config.d_vocab}. Use tokenizer 'char' or a model with a larger d_vocab."
            )
        if max(ref.vocab_size, BPE_MIN_VOCAB) <= config.d_vocab:
            return None
    ids, vocab = corpus_tokens(ref, runs)
    if vocab > config.d_vocab:
        return f"The tokenized corpus has {vocab} token ids; the model's vocabulary is {config.d_vocab}."
    if len(ids) < config.n_ctx:
        return f"The corpus has {len(ids)} tokens, fewer than one sequence of the model's context ({config.n_ctx})."
    return None


def check_references(params: Params, runs) -> dict[str, str]:
    """Before a run is queued: the original data fits the base model's context, and an uploaded fine-tuning
    corpus fits its vocabulary (`runs` finds checkpoints and, where the platform gives it, datasets); a
    pretrained base is fine-tuned on generated data only."""
    if isinstance(params.base, PretrainedModelRef):
        return _pretrained_problems(params, runs)
    config = _base_config(params, runs)
    if config is None:
        return {}
    problems = {}
    if problem := params.too_many_tokens(config.n_ctx):
        problems["steps"] = problem
    if problem := context_problem(params.original_data, config.n_ctx):
        problems["original_data.half_length"] = problem
    if isinstance(params.finetune_data, TextCorpus) and hasattr(runs, "dataset_path"):
        if problem := _corpus_problem(params.finetune_data, config, runs):
            problems["finetune_data.dataset"] = problem
    return problems


def _pretrained_problems(params: Params, runs) -> dict[str, str]:
    """A pretrained base's checks: generated fine-tuning data, and original data within the context its
    config.json gives (when that is readable here; otherwise the worker reports it)."""
    problems = {}
    if isinstance(params.finetune_data, TextCorpus):
        problems["finetune_data"] = PRETRAINED_TEXT_CORPUS
    shape = model_shape(params.base, runs)
    if shape is not None and (problem := context_problem(params.original_data, shape.n_ctx)):
        problems["original_data.half_length"] = problem
    return problems


# -- measuring ------------------------------------------------------------------------------------------------


@torch.no_grad()
def attention_patterns(model, tokens: Tensor) -> Float[Tensor, "layer batch head q k"]:
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("attn.hook_pattern"))
    return torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(model.cfg.n_layers)]).float()


def js_divergence(p: Tensor, q: Tensor) -> Float[Tensor, "layer head"]:
    """Per head, the Jensen-Shannon divergence (bits, 0..1) between two attention patterns [layer, batch, head,
    q, k], averaged over sequences and over queries after the first (the first can only attend to itself)."""
    m = (p + q) / 2

    def kl(a: Tensor) -> Tensor:  # sum over keys of a log2(a/m), with 0 log 0 = 0
        return torch.where(a > 0, a * (a.clamp_min(1e-12) / m.clamp_min(1e-12)).log2(), 0.0).sum(-1)

    js = 0.5 * kl(p) + 0.5 * kl(q)  # [layer, batch, head, q]
    return js[..., 1:].mean(dim=(1, 3)).clamp(0, 1).cpu()


@torch.no_grad()
def mean_loss(model, tokens: Tensor) -> float:
    logits = model(tokens)[:, :-1]
    return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tokens[:, 1:].reshape(-1)))


def measure(model, config: NativeConfig, original: Tensor, new: Tensor) -> dict:
    """Everything compared before vs after, for one model."""
    scores = head_scores(model, original)
    first, second = repeated_token_losses(model, original)
    importance = {}
    for name, tokens in (("original", original), ("new", new)):
        clean, ablated = head_ablation(model, tokens, mode="zero", config=config)
        importance[name] = (ablated - clean).cpu()
    return {
        "scores": {t: scores.scores[t].cpu() for t in TYPES},
        "importance": importance,
        "patterns": {"original": attention_patterns(model, original), "new": attention_patterns(model, new)},
        "original_loss": mean_loss(model, original),
        "original_first_half_loss": first,
        "original_second_half_loss": second,
        "new_data_loss": mean_loss(model, new),
    }


def _importance_change(before: float, after: float) -> float:
    before, after = max(before, IN_USE_NATS), max(after, IN_USE_NATS)
    return abs(after - before) / max(before, after)


def classify(before: dict, after: dict, js: dict[str, Tensor]) -> list[dict]:
    """One row per head: its class by `RULES`, and the numbers the rule read."""
    n_layers, n_heads = before["scores"]["induction"].shape
    rows = []
    for layer in range(n_layers):
        for head in range(n_heads):
            at = (layer, head)
            types = {when: [t for t in TYPES if m["scores"][t][at] >= THRESHOLDS[t]] for when, m in
                     (("before", before), ("after", after))}  # fmt: skip
            cost = {when: max(float(m["importance"][d][at]) for d in ("original", "new")) for when, m in
                    (("before", before), ("after", after))}  # fmt: skip
            important = {when: cost[when] >= IMPORTANT_NATS for when in cost}
            matters = {when: important[when] or bool(types[when]) for when in cost}
            present = {when: cost[when] >= IN_USE_NATS or bool(types[when]) for when in cost}
            head_js = max(float(js["original"][at]), float(js["new"][at]))
            score_change = max(abs(float(after["scores"][t][at] - before["scores"][t][at])) for t in TYPES)
            importance_change = max(
                _importance_change(float(before["importance"][d][at]), float(after["importance"][d][at]))
                for d in ("original", "new")
            )
            if important["after"] and not present["before"]:
                label = "new"
            elif matters["before"] and not present["after"]:
                label = "lost"
            elif (matters["before"] or matters["after"]) and present["before"] and present["after"]:
                kept = (
                    types["before"] == types["after"]
                    and head_js <= KEPT_MAX_JS
                    and score_change <= KEPT_MAX_SCORE_CHANGE
                    and importance_change <= KEPT_MAX_IMPORTANCE_CHANGE
                )
                label = "kept" if kept else "re-weighted"
            else:
                label = "inactive"
            rows.append({
                "layer": layer, "head": head, "class": label,
                "important_before": important["before"], "important_after": important["after"],
                "types_before": types["before"], "types_after": types["after"],
                **{f"{t}_before": round(float(before["scores"][t][at]), 4) for t in TYPES},
                **{f"{t}_after": round(float(after["scores"][t][at]), 4) for t in TYPES},
                **{f"importance_{d}_{when}": round(float(m["importance"][d][at]), 4)
                   for d in ("original", "new") for when, m in (("before", before), ("after", after))},
                "js_original": round(float(js["original"][at]), 4), "js_new": round(float(js["new"][at]), 4),
                "score_change": round(score_change, 4), "importance_change": round(importance_change, 4),
            })  # fmt: skip
    return rows


# -- running ----------------------------------------------------------------------------------------------------


def run(params: Params, ctx) -> KindResult:
    metrics = {}
    if params.base is None:
        with ctx.part("base", "base model") as part:
            outcome = train(
                params.base_training, ctx, name_prefix="base-",
                on_progress=within(ctx.progress, 0, 0.45, "training the base model: "),
            )  # fmt: skip
            part.metrics = {"final_loss": outcome.final_loss}
            part.findings = [f"Trained the base model for {params.base_training.steps} steps (final loss "
                             f"{outcome.final_loss:.3f} nats)."]  # fmt: skip
        metrics["base_final_loss"] = outcome.final_loss
        config = params.base_training.model
        base = to_bridge(outcome.model, device=ctx.device)
        start = 0.45
    else:
        if isinstance(params.base, PretrainedModelRef) and isinstance(params.finetune_data, TextCorpus):
            raise EngineError(PRETRAINED_TEXT_CORPUS)
        ctx.progress(0.02, "loading the base model")
        base, config = load_model_and_config(params.base, ctx)  # config: None for a pretrained model
        if config is not None and config.positional_embedding_type != "standard":
            raise EngineError("Fine-tuning supports models with standard positional embeddings.")
        start = 0.05
    base.eval()
    original = repeated_tokens_for(base, params.original_data, ctx.device)
    if config is None:
        length = min(params.pretrained_sequence_length, base.cfg.n_ctx)
        new = bridge_batch(
            base, params.finetune_data, batch=params.n_new_sequences, length=length,
            generator=torch.Generator().manual_seed(ctx.seed + 7),
        )[0].to(ctx.device)  # fmt: skip
    else:
        new = eval_tokens(base, params.finetune_data, ctx, n_sequences=params.n_new_sequences)
    ctx.progress(start, "measuring the base model")
    before = measure(base, config, original, new)

    ctx.check_cancelled()
    if config is None:
        # Measured already, so fine-tuned in place: nothing reads the model before fine-tuning again (and a
        # TransformerBridge cannot be deep-copied).
        finetuned, metrics["finetune_final_loss"] = base, _finetune_pretrained(base, params, ctx, start, length)
    else:
        finetuned, metrics["finetune_final_loss"] = _finetune_native(base, config, params, ctx, start)
    ctx.progress(0.9, "measuring the fine-tuned model")
    after = measure(finetuned, config, original, new)

    js = {d: js_divergence(before["patterns"][d], after["patterns"][d]) for d in ("original", "new")}
    rows = classify(before, after, js)
    metrics.update(_metrics(rows, before, after, js))
    _save_figures(ctx, rows, before, after, js, base.cfg)
    summary = {"heads": rows, "rules": RULES, "thresholds": {
        "important_nats": IMPORTANT_NATS, "in_use_nats": IN_USE_NATS,
        "type_threshold": THRESHOLDS["induction"], "kept_max_js_bits": KEPT_MAX_JS,
        "kept_max_score_change": KEPT_MAX_SCORE_CHANGE, "kept_max_importance_change": KEPT_MAX_IMPORTANCE_CHANGE,
    }}  # fmt: skip
    if config is None:
        summary.update(sequence_length=length, finetuned_weights=NOT_SAVED)
    return KindResult(findings=findings(rows, metrics), metrics=metrics, headline="head_classes", summary=summary)


def _finetune_native(base, config: NativeConfig, params: Params, ctx, start: float) -> tuple[object, float]:
    """Fine-tune a copy of a native model with the training loop (its LeanTransformer twin), which saves the
    fine-tuned checkpoint; the fine-tuned bridge and its final training loss."""
    finetuning = TrainingParams(
        model=config, data=params.finetune_data, steps=params.steps, batch_size=params.batch_size, lr=params.lr,
        warmup_steps=params.warmup_steps, n_checkpoints=1, eval_every=max(1, params.steps // 20),
    )  # fmt: skip
    with ctx.part("finetune", "fine-tuning") as part:
        outcome = train(
            finetuning, ctx, name_prefix="finetuned-", initial=lean_from_bridge(base, config).to(ctx.device),
            on_progress=within(ctx.progress, start + 0.05, 0.9, "fine-tuning: "),
        )  # fmt: skip
        part.metrics = {"final_loss": outcome.final_loss}
        part.findings = [f"Fine-tuned for {params.steps} steps (final loss {outcome.final_loss:.3f} nats)."]
    return to_bridge(outcome.model, device=ctx.device).eval(), outcome.final_loss


def _finetune_pretrained(base, params: Params, ctx, start: float, length: int) -> float:
    """Fine-tune a pretrained model's bridge in place on `length`-token sequences; its final training loss.
    Nothing is saved."""
    with ctx.part("finetune", "fine-tuning") as part:
        final_loss = finetune_bridge(
            base, params.finetune_data, ctx, steps=params.steps, batch_size=params.batch_size, lr=params.lr,
            warmup_steps=params.warmup_steps, length=length, eval_every=max(1, params.steps // 20),
            on_progress=within(ctx.progress, start + 0.05, 0.9, "fine-tuning: "),
        )  # fmt: skip
        part.metrics = {"final_loss": final_loss}
        part.findings = [
            f"Fine-tuned for {params.steps} steps on {length}-token sequences (final loss {final_loss:.3f} nats). "
            + NOT_SAVED
        ]
    ctx.log(NOT_SAVED)
    return final_loss


def _metrics(rows: list[dict], before: dict, after: dict, js: dict[str, Tensor]) -> dict:
    by_class = {c: [r for r in rows if r["class"] == c] for c in CLASSES}
    n_important_after = sum(r["important_after"] for r in rows)
    induction_before = [r for r in rows if "induction" in r["types_before"]]
    metrics = {f"n_{c.replace('-', '')}_heads": len(by_class[c]) for c in CLASSES}
    metrics.update(
        new_circuit_fraction=len(by_class["new"]) / n_important_after if n_important_after else 0.0,
        n_important_before=sum(r["important_before"] for r in rows),
        n_important_after=n_important_after,
        induction_score_before=float(before["scores"]["induction"].max()),
        induction_score_after=float(after["scores"]["induction"].max()),
        max_js_divergence=float(torch.maximum(js["original"], js["new"]).max()),
        mean_js_divergence=float(js["original"].mean()),
    )
    if induction_before:
        metrics["induction_heads_kept_fraction"] = sum(r["class"] == "kept" for r in induction_before) / len(
            induction_before
        )
    for name in ("original_loss", "original_first_half_loss", "original_second_half_loss", "new_data_loss"):
        metrics[f"{name}_before"], metrics[f"{name}_after"] = before[name], after[name]
    return metrics


def _save_figures(ctx, rows: list[dict], before: dict, after: dict, js: dict[str, Tensor], cfg) -> None:
    ctx.save_artifact("head_classes", class_figure(rows, cfg.n_layers, cfg.n_heads))
    ctx.save_artifact("head_scores_before", head_heatmaps(before["scores"], title="Head scores before fine-tuning"))
    ctx.save_artifact("head_scores_after", head_heatmaps(after["scores"], title="Head scores after fine-tuning"))
    ctx.save_artifact(
        "js_divergence",
        head_heatmaps(
            {"original data": js["original"], "new data": js["new"]},
            title="Attention-pattern change per head (Jensen-Shannon divergence, bits)",
        ),
    )
    importance = {
        f"{d} data, {when}": m["importance"][d] for d in ("original", "new") for when, m in (("before", before),
                                                                                               ("after", after))
    }  # fmt: skip
    ctx.save_artifact(
        "importance", head_heatmaps(importance, title="Loss increase when each head is zero-ablated (nats)", zmax=None)
    )
    ctx.save_artifact("original_loss", loss_figure(before, after))
    ctx.save_artifact(
        "head_comparison",
        {
            "scores_before": torch.stack([before["scores"][t] for t in TYPES]).contiguous(),
            "scores_after": torch.stack([after["scores"][t] for t in TYPES]).contiguous(),
            "js_original": js["original"].contiguous(),
            "js_new": js["new"].contiguous(),
        },
    )


def class_figure(rows: list[dict], n_layers: int, n_heads: int) -> go.Figure:
    """A layer x head grid coloured by class, each cell labelled with its class and types."""
    index = {c: i for i, c in enumerate(CLASSES)}
    z = [[0] * n_heads for _ in range(n_layers)]
    text = [[""] * n_heads for _ in range(n_layers)]
    for r in rows:
        z[r["layer"]][r["head"]] = index[r["class"]]
        types = "/".join(t.replace("_", "-") for t in r["types_after"] or r["types_before"]) or "untyped"
        text[r["layer"]][r["head"]] = f"{r['class']}<br>{types}"
    n = len(CLASSES)
    scale = [[edge, CLASS_COLORS[c]] for i, c in enumerate(CLASSES) for edge in (i / n, (i + 1) / n)]
    fig = go.Figure(
        go.Heatmap(
            z=z, x=[f"H{h}" for h in range(n_heads)], y=[f"L{layer}" for layer in range(n_layers)],
            text=text, texttemplate="%{text}", zmin=-0.5, zmax=n - 0.5, colorscale=scale,
            colorbar={"tickvals": list(range(n)), "ticktext": list(CLASSES)},
            hovertemplate="%{y}%{x}: %{text}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(title="Heads after fine-tuning: kept, re-weighted, new, lost", height=240 + 60 * n_layers)
    fig.update_yaxes(autorange="reversed")
    return fig


def loss_figure(before: dict, after: dict) -> go.Figure:
    halves = ["first half (nothing to copy)", "second half (copy of the first)"]
    fig = go.Figure()
    for when, m in (("before", before), ("after", after)):
        values = [m["original_first_half_loss"], m["original_second_half_loss"]]
        fig.add_trace(go.Bar(name=f"{when} fine-tuning", x=halves, y=values))
    fig.update_layout(
        title="Loss on the original data (repeated random tokens)", yaxis_title="loss (nats)", barmode="group"
    )
    return fig


def findings(rows: list[dict], metrics: dict) -> list[str]:
    def heads(label: str) -> list[tuple[int, int]]:
        return [(r["layer"], r["head"]) for r in rows if r["class"] == label]

    induction = [r for r in rows if "induction" in r["types_before"]]
    lines = []
    if induction:
        pairs = ", ".join(
            f"{head_name(r['layer'], r['head'])} {r['induction_before']:.2f} → {r['induction_after']:.2f}"
            for r in induction
        )
        classes = ", ".join(f"{n} {c}" for c in CLASSES if (n := sum(r["class"] == c for r in induction)))
        lines.append(
            f"Its {count(len(induction), 'induction head')} after fine-tuning: {classes} (induction score "
            f"before → after: {pairs})."
        )
    else:
        lines.append(
            f"The base model had no induction head (best score {metrics['induction_score_before']:.2f}); after "
            f"fine-tuning the best scores {metrics['induction_score_after']:.2f}."
        )
    n_after, n_new = metrics["n_important_after"], metrics["n_new_heads"]
    if n_after:
        lines.append(
            f"{n_new} of {count(n_after, 'head')} important after fine-tuning {'is' if n_new == 1 else 'are'} new "
            f"(new_circuit_fraction {metrics['new_circuit_fraction']:.2f})"
            + (f": {heads_text(heads('new'))}." if n_new else ".")
        )
    else:
        lines.append("No head is important after fine-tuning (new_circuit_fraction 0.00).")
    lines.append(
        "Heads by class: "
        + "; ".join(f"{c} {len(heads(c))}" + (f" ({heads_text(heads(c))})" if heads(c) else "") for c in CLASSES[:4])
        + f"; the largest attention change is {metrics['max_js_divergence']:.2f} bits."
    )
    lines.append(
        f"Loss on the original data went from {metrics['original_loss_before']:.2f} to "
        f"{metrics['original_loss_after']:.2f} nats: first half {metrics['original_first_half_loss_before']:.2f} → "
        f"{metrics['original_first_half_loss_after']:.2f}, second half (copied) "
        f"{metrics['original_second_half_loss_before']:.2f} → {metrics['original_second_half_loss_after']:.2f}; "
        f"on the new data {metrics['new_data_loss_before']:.2f} → {metrics['new_data_loss_after']:.2f}."
    )
    return lines
