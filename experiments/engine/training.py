"""The training loop shared by `train_transformer` and `attention_depth_comparison`.

Trains a `LeanTransformer` (fused attention, same parameters as the
TL-native model) with AdamW and a warm-up + cosine schedule, logs the loss
series, evaluates in-context learning on repeated random tokens, and saves
checkpoints (config + weights, safetensors) at the requested steps.

`finetune_bridge` is its small twin for models without a lean twin (pretrained
Hugging Face models): it trains a TransformerBridge's own parameters through
its forward pass with the same optimizer, schedule and series, and saves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from experiments.engine.datasets import (
    InductionTraining,
    MarkovText,
    RepeatedRandomTokens,
    TextCorpus,
    TrainingData,
    corpus_batch,
    corpus_tokens,
    induction_batch,
    repeated_random_tokens,
    synthetic_batch,
)
from experiments.engine.errors import EngineError
from experiments.engine.evals.dialogues import (
    DIALOGUES_MODEL,
    Dialogues,
    dialogue_accuracy,
    dialogue_batch,
    dialogue_vocabulary,
    longest_dialogue,
)
from experiments.engine.evals.words import WORDS_META_KEY
from experiments.engine.facts import FACTS_MODEL, Facts, facts_accuracy, facts_batch, longest_sequence, vocabulary_size
from experiments.engine.ioi import (
    HELD_OUT_NAMES,
    IOIPrompts,
    WordEncoder,
    draw_prompts,
    encode_prompts,
    ioi_performance,
    ioi_training_batch,
)
from experiments.engine.lean import LeanTransformer, cosine_lr, init_like_native, lean_state_to_bridge
from experiments.engine.models import NativeConfig, bos_token, save_checkpoint
from experiments.engine.params import KindParams

MAX_TRAINING_TOKENS = 2_000_000_000

SMALL_ATTN_ONLY = NativeConfig(n_layers=2, n_heads=4, d_model=64, d_head=16, n_ctx=64, d_vocab=64, attn_only=True)
# The default model for IOI prompts: the word vocabulary (229 words) and the longest prompt fit.
IOI_MODEL = NativeConfig(n_layers=3, n_heads=4, d_model=128, d_head=32, n_ctx=32, d_vocab=256, attn_only=True)
# The model a spec gets for its data source when it names no model (or only some of its fields).
DEFAULT_MODEL_FOR = {"ioi_prompts": IOI_MODEL, "facts": FACTS_MODEL, "dialogues": DIALOGUES_MODEL}


class TrainingParams(KindParams):
    """What to train and for how long. The defaults train the small 2-layer model in about a minute on one core.

    The 300-step warm-up matters: with the peak rate reached after 50 steps, some seeds sat on the plateau
    past step 3000 or settled into a shifted copying circuit; with 300 they formed the textbook induction
    circuit (docs/science.md).
    """

    model: NativeConfig = Field(
        SMALL_ATTN_ONLY,
        description="The architecture (TL-native, standard positions); fields left out keep this default's values.",
    )
    data: TrainingData = Field(InductionTraining(), description="What to train on.")
    steps: int = Field(3000, ge=1, le=100_000)
    batch_size: int = Field(32, ge=1, le=1024)
    lr: float = Field(3e-3, gt=0, le=1, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.01, ge=0, le=1)
    warmup_steps: int = Field(300, ge=0, le=10_000, description="Steps of linear warm-up to the peak rate.")
    n_checkpoints: int = Field(30, ge=0, le=200, description="Log-spaced checkpoints (the last step is always one).")
    checkpoint_steps: list[int] | None = Field(
        None, max_length=200, description="Explicit checkpoint steps instead of log-spaced ones."
    )
    log_every: int = Field(10, ge=1, le=10_000, description="Steps between points of the loss series.")
    eval_every: int = Field(100, ge=1, le=100_000, description="Steps between in-context learning evaluations.")

    @model_validator(mode="before")
    @classmethod
    def _over_default_model(cls, values: object) -> object:
        # {"n_layers": 1} means the default model (for this data source) with one layer, not NativeConfig's
        # general defaults.
        if not isinstance(values, dict):
            return values
        data = values.get("data")
        source = data.get("source") if isinstance(data, dict) else getattr(data, "source", None)
        default = DEFAULT_MODEL_FOR.get(source, SMALL_ATTN_ONLY)
        model = values.get("model")
        if model is None:
            return {**values, "model": default}
        if isinstance(model, dict):
            return {**values, "model": default.model_dump() | model}
        return values

    @model_validator(mode="after")
    def _bounded(self) -> TrainingParams:
        tokens = self.steps * self.batch_size * self.model.n_ctx
        if tokens > MAX_TRAINING_TOKENS:
            raise ValueError(f"steps x batch_size x n_ctx = {tokens:,} tokens; the limit is {MAX_TRAINING_TOKENS:,}")
        if self.model.positional_embedding_type != "standard":
            raise ValueError("training supports standard positional embeddings")
        if self.checkpoint_steps is not None and any(not 1 <= s <= self.steps for s in self.checkpoint_steps):
            raise ValueError("every checkpoint step must be between 1 and steps")
        if isinstance(self.data, Facts):
            if (words := vocabulary_size(self.data)) > self.model.d_vocab:
                raise ValueError(f"the facts vocabulary has {words} words; set model.d_vocab to at least {words}")
            if (length := longest_sequence(self.data)) > self.model.n_ctx:
                raise ValueError(f"the longest fact is {length} tokens; set model.n_ctx to at least {length}")
        if isinstance(self.data, Dialogues):
            if (words := len(dialogue_vocabulary(self.data))) > self.model.d_vocab:
                raise ValueError(f"the dialogues' vocabulary has {words} words; set model.d_vocab to at least {words}")
            if (length := longest_dialogue(self.data)) > self.model.n_ctx:
                raise ValueError(f"the longest dialogue is {length} tokens; set model.n_ctx to at least {length}")
        return self

    def checkpoint_schedule(self) -> list[int]:
        if self.checkpoint_steps is not None:
            return sorted({*self.checkpoint_steps, self.steps})
        if self.n_checkpoints <= 1:
            return [self.steps]
        spaced = np.geomspace(min(10, self.steps), self.steps, self.n_checkpoints)
        return sorted({round(float(s)) for s in spaced} | {self.steps})


@dataclass
class TrainingOutcome:
    model: LeanTransformer
    config: NativeConfig
    checkpoints: list[dict] = field(default_factory=list)  # [{"step", "artifact"}]
    final_loss: float = float("nan")
    copied_segment_loss: float | None = None  # on a fixed held-out set at the end (see copied_segment_eval)
    copied_segment_accuracy: float | None = None
    repeated_first_half_loss: float = float("nan")
    repeated_second_half_loss: float = float("nan")
    ioi_logit_difference: float | None = None  # on held-out names (ioi_prompts data only)
    ioi_accuracy: float | None = None
    facts_accuracy: float | None = None  # facts data: top-1 attribute accuracy on the training templates
    paraphrase_accuracy: float | None = None  # and on the held-out paraphrase templates
    dialogue_accuracy: float | None = None  # dialogues data: share of answers reproduced exactly (top-1)


def copied_segment_eval(
    model: torch.nn.Module, data: InductionTraining, *, n_sequences: int, length: int, d_vocab: int, seed: int, device
) -> tuple[float, float]:
    """Loss and top-1 accuracy on the copied tokens of a fixed, seeded set of induction_training sequences."""
    generator = torch.Generator().manual_seed(seed + 99)
    tokens, predictable = induction_batch(data, batch=n_sequences, length=length, d_vocab=d_vocab, generator=generator)
    tokens, targets = tokens.to(device), predictable[:, 1:].to(device)
    with torch.no_grad():
        logits = model(tokens)[:, :-1]
        losses = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")
        correct = logits.argmax(dim=-1) == tokens[:, 1:]
    return float(losses[targets].mean()), float(correct[targets].float().mean())


def half_losses(loss: torch.Tensor, half: int) -> tuple[float, float]:
    """Mean loss on the first and on the second half of BOS + `half` tokens repeated once, from per-token losses
    where loss[:, i] is the loss of predicting token i+1 from the prefix up to i."""
    return loss[:, :half].mean().item(), loss[:, half + 1 :].mean().item()


def repeated_token_losses(model: torch.nn.Module, tokens: torch.Tensor) -> tuple[float, float]:
    """Mean next-token loss on the first and on the second half of repeated random tokens."""
    with torch.no_grad():
        logits = model(tokens)
        loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
    return half_losses(loss, (tokens.shape[1] - 1) // 2)


SERIES = {
    "loss": "training loss (nats per token)",
    "copied_segment_loss": "training loss on copied tokens (for IOI prompts: on the answer names; nats)",
    "attribute_loss": "training loss on the attribute tokens of facts (nats)",
    "repeated_tokens_second_half_loss": "loss on the second half of repeated random tokens (nats)",
}


def train(
    params: TrainingParams,
    ctx,
    *,
    name_prefix: str = "",
    on_progress: Callable[[float, str], None] | None = None,
    initial: LeanTransformer | None = None,
) -> TrainingOutcome:
    """Train from ctx.seed; report through ctx; save checkpoints as ctx artifacts named `<prefix>checkpoint-<step>`.

    The step series (`SERIES`) are logged under their own names: a composite kind trains inside a
    `ctx.part`, which names them per part. `initial` (a model of config `params.model`) is trained further in
    place instead of a fresh one: fine-tuning."""
    device = ctx.device
    config = params.model
    generator = torch.Generator().manual_seed(ctx.seed + 1)
    corpus = None
    if isinstance(params.data, TextCorpus):
        corpus, vocab = corpus_tokens(params.data, ctx.dataset_resolver)
        if vocab > config.d_vocab:
            raise EngineError(f"The tokenized corpus has {vocab} token ids; set model.d_vocab to at least {vocab}.")

    if initial is None:
        model = LeanTransformer(config)
        init_like_native(model, seed=ctx.seed)
    elif initial.config != config:
        raise EngineError("The model to train further must have the architecture params.model names.")
    else:
        model = initial
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    schedule = set(params.checkpoint_schedule())
    eval_tokens = repeated_random_tokens(
        RepeatedRandomTokens(n_sequences=32, half_length=(config.n_ctx - 1) // 2, seed=1234), d_vocab=config.d_vocab
    ).to(device)
    report = on_progress or ctx.progress
    outcome = TrainingOutcome(model=model, config=config)
    recent: list[float] = []

    for step in range(1, params.steps + 1):
        ctx.check_cancelled()
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step - 1, total=params.steps, warmup=params.warmup_steps, peak=params.lr)
        trained = None  # the positions whose next token is trained: all of them but for padded prompts
        attributes = None  # facts: the attribute tokens, whose loss is logged on its own
        if corpus is not None:
            tokens, predictable = (
                corpus_batch(corpus, batch=params.batch_size, length=config.n_ctx, generator=generator),
                None,
            )
        elif isinstance(params.data, Facts):
            (tokens, trained, attributes), predictable = (
                facts_batch(params.data, batch=params.batch_size, generator=generator),
                None,
            )
        elif isinstance(params.data, Dialogues):
            # Padded to the longest dialogue, not n_ctx: the positions after it would only be padding.
            (tokens, trained), predictable = (
                dialogue_batch(
                    params.data, batch=params.batch_size, length=longest_dialogue(params.data), generator=generator
                ),
                None,
            )
        elif isinstance(params.data, IOIPrompts):
            tokens, predictable, trained = ioi_training_batch(
                params.data, batch=params.batch_size, length=config.n_ctx, d_vocab=config.d_vocab, generator=generator
            )
        else:
            tokens, predictable = synthetic_batch(
                params.data, batch=params.batch_size, length=config.n_ctx, d_vocab=config.d_vocab, generator=generator
            )
        tokens = tokens.to(device)
        logits = model(tokens)
        # Position i predicts token i+1.
        per_token = F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
        loss = per_token.mean() if trained is None else per_token[trained[:, 1:].to(device)].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        recent = [*recent[-49:], loss.item()]
        if step % params.log_every == 0 or step == params.steps:
            ctx.log_metric("loss", recent[-1], step)
            if attributes is not None:
                ctx.log_metric("attribute_loss", per_token[attributes[:, 1:].to(device)].mean().item(), step)
            if predictable is not None:
                copied = per_token[predictable[:, 1:].to(device)].mean().item()
                ctx.log_metric("copied_segment_loss", copied, step)
        if step % params.eval_every == 0 or step == params.steps:
            model.eval()
            first, second = repeated_token_losses(model, eval_tokens)
            model.train()
            ctx.log_metric("repeated_tokens_second_half_loss", second, step)
            outcome.repeated_first_half_loss, outcome.repeated_second_half_loss = first, second
        if step in schedule:
            meta = {"step": step, "warmup_steps": params.warmup_steps}
            if isinstance(params.data, Facts):  # the world a causal_tracing run of this checkpoint must use
                meta["data"] = params.data.model_dump()
            if isinstance(params.data, Dialogues):  # what a behavioural kind scoring this checkpoint reads text with
                meta["data"] = params.data.model_dump()
                meta[WORDS_META_KEY] = dialogue_vocabulary(params.data)
            outcome.checkpoints.append(_checkpoint(model, config, ctx, name_prefix, meta))
        report(step / params.steps, f"step {step}/{params.steps}, loss {recent[-1]:.3f}")

    outcome.final_loss = float(np.mean(recent))
    model.eval()
    if isinstance(params.data, InductionTraining):
        outcome.copied_segment_loss, outcome.copied_segment_accuracy = copied_segment_eval(
            model, params.data, n_sequences=256, length=config.n_ctx, d_vocab=config.d_vocab, seed=ctx.seed,
            device=device,
        )  # fmt: skip
    if isinstance(params.data, Facts):
        outcome.facts_accuracy = facts_accuracy(model, params.data, held_out=False, device=device)
        outcome.paraphrase_accuracy = facts_accuracy(model, params.data, held_out=True, device=device)
    if isinstance(params.data, Dialogues):
        outcome.dialogue_accuracy = dialogue_accuracy(model, params.data, device=device)
    if isinstance(params.data, IOIPrompts):
        outcome.ioi_logit_difference, outcome.ioi_accuracy = ioi_performance(
            model, held_out_ioi_prompts(config, seed=ctx.seed).to(device)
        )
    return outcome


def held_out_ioi_prompts(config: NativeConfig, *, seed: int, n: int = 256):
    """A fixed set of IOI prompts with names the training prompts never use, in the word vocabulary."""
    prompts = draw_prompts(n, HELD_OUT_NAMES, order="both", generator=torch.Generator().manual_seed(seed + 99))
    return encode_prompts(prompts, WordEncoder(config.d_vocab), n_ctx=config.n_ctx)


def _checkpoint(model: LeanTransformer, config: NativeConfig, ctx, prefix: str, meta: dict) -> dict:
    name = f"{prefix}checkpoint-{meta['step']}"
    ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
    filename = f"{name}.safetensors"
    save_checkpoint(lean_state_to_bridge(model), config, ctx.artifact_dir / filename, meta=meta)
    ctx.register_file(name, filename, "checkpoint", "application/octet-stream", meta=meta)
    return {"step": meta["step"], "artifact": name}


# -- fine-tuning a TransformerBridge (pretrained models) ----------------------------------------------------------


def bridge_batch(
    model, data: InductionTraining | MarkovText, *, batch: int, length: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of a generated source in a bridge's vocabulary, each sequence starting with the model's BOS
    (the generators' BOS is 0); and the mask of copied tokens induction predicts."""
    tokens, predictable = synthetic_batch(
        data, batch=batch, length=length, d_vocab=model.cfg.d_vocab, generator=generator
    )
    tokens[:, 0] = bos_token(model)
    return tokens, predictable


def finetune_bridge(
    model,
    data: InductionTraining | MarkovText,
    ctx,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    warmup_steps: int,
    length: int,
    weight_decay: float = 0.01,
    log_every: int = 10,
    eval_every: int = 100,
    on_progress: Callable[[float, str], None] | None = None,
) -> float:
    """Fine-tune a TransformerBridge's own parameters in place on `length`-token sequences of a generated source;
    the mean training loss over the last 50 steps.

    `train`'s recipe for a model it cannot rebuild as a LeanTransformer (a pretrained one): AdamW, `cosine_lr`,
    next-token cross-entropy on the bridge's logits, the same step series (`SERIES`) and cancellation checks.
    The model trains in train mode (a Hugging Face model's dropout on, as in its own fine-tuning) and is left in
    eval mode. No checkpoint is saved."""
    device = ctx.device
    generator = torch.Generator().manual_seed(ctx.seed + 1)
    held_out = repeated_random_tokens(
        RepeatedRandomTokens(n_sequences=32, half_length=(length - 1) // 2, seed=1234), d_vocab=model.cfg.d_vocab
    )
    held_out[:, 0] = bos_token(model)
    held_out = held_out.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    report = on_progress or ctx.progress
    recent: list[float] = []

    model.train()
    for step in range(1, steps + 1):
        ctx.check_cancelled()
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step - 1, total=steps, warmup=warmup_steps, peak=lr)
        tokens, predictable = bridge_batch(model, data, batch=batch_size, length=length, generator=generator)
        tokens = tokens.to(device)
        logits = model(tokens)[:, :-1]  # position i predicts token i+1
        # Flattened rather than transposed: a large vocabulary's logits are not copied.
        per_token = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), reduction="none"
        ).view(batch_size, length - 1)
        loss = per_token.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        recent = [*recent[-49:], loss.item()]
        if step % log_every == 0 or step == steps:
            ctx.log_metric("loss", recent[-1], step)
            ctx.log_metric("copied_segment_loss", per_token[predictable[:, 1:].to(device)].mean().item(), step)
        if step % eval_every == 0 or step == steps:
            model.eval()
            ctx.log_metric("repeated_tokens_second_half_loss", repeated_token_losses(model, held_out)[1], step)
            model.train()
        report(step / steps, f"step {step}/{steps}, loss {recent[-1]:.3f}")
    model.eval()
    return float(np.mean(recent))
