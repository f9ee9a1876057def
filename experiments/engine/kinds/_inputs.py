"""Input helpers shared by the kinds: evaluation tokens for a model, checked against its context length,
and the checks a kind runs on what its params refer to before a run is queued (`check_references`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from experiments.engine.datasets import (
    InductionTraining,
    MarkovText,
    RepeatedRandomTokens,
    TextCorpus,
    corpus_batch,
    corpus_tokens,
    repeated_random_tokens,
    synthetic_batch,
)
from experiments.engine.errors import EngineError, ModelNotAvailable
from experiments.engine.models import (
    ArtifactResolver,
    NativeModelRef,
    PretrainedModelRef,
    RunModelRef,
    bos_token,
    read_checkpoint_config,
    resolve_pretrained_dir,
)


def context_problem(ref: RepeatedRandomTokens, n_ctx: int) -> str | None:
    """Why these sequences do not fit a model with context `n_ctx`, or None when they do."""
    if ref.length <= n_ctx:
        return None
    return (
        f"half_length={ref.half_length} makes sequences of {ref.length} tokens; the model's context is {n_ctx}. "
        f"Use half_length <= {(n_ctx - 1) // 2}."
    )


def repeated_tokens_for(model, ref: RepeatedRandomTokens, device) -> torch.Tensor:
    """Repeated random tokens in the model's vocabulary, starting with its BOS."""
    problem = context_problem(ref, model.cfg.n_ctx)
    if problem:
        raise EngineError(f"data.{problem}")
    tokens = repeated_random_tokens(ref, d_vocab=model.cfg.d_vocab)
    tokens[:, 0] = bos_token(model)
    return tokens.to(device)


def eval_tokens(model, ref, ctx, *, n_sequences: int) -> torch.Tensor:
    """A fixed, seeded set of sequences to measure loss on (`n_sequences` of them for generated data)."""
    return eval_batch(model, ref, ctx, n_sequences=n_sequences)[0]


def eval_batch(model, ref, ctx, *, n_sequences: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`eval_tokens` and, for induction_training data, the mask of the copied tokens only induction predicts
    (None for the other sources)."""
    if isinstance(ref, RepeatedRandomTokens):
        return repeated_tokens_for(model, ref, ctx.device), None
    generator = torch.Generator().manual_seed(ctx.seed + 7)
    length = model.cfg.n_ctx
    if isinstance(ref, InductionTraining | MarkovText):
        tokens, predictable = synthetic_batch(
            ref, batch=n_sequences, length=length, d_vocab=model.cfg.d_vocab, generator=generator
        )
        return tokens.to(ctx.device), predictable
    if isinstance(ref, TextCorpus):
        ids, vocab = corpus_tokens(ref, ctx.dataset_resolver)
        if vocab > model.cfg.d_vocab:
            raise EngineError(f"The corpus has {vocab} token ids but the model's vocabulary is {model.cfg.d_vocab}.")
        return corpus_batch(ids, batch=n_sequences, length=length, generator=generator).to(ctx.device), None
    raise EngineError(f"Unsupported data source {ref!r}")


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a referenced model that a spec check needs, read without loading its weights."""

    n_layers: int
    d_model: int
    d_vocab: int
    n_ctx: int


def model_shape(ref: NativeModelRef | RunModelRef | PretrainedModelRef, runs: ArtifactResolver) -> ModelShape | None:
    """A referenced model's sizes: from a native config, a checkpoint's stored config, or a pretrained folder's
    config.json. None when a pretrained model's config cannot be read here (the worker reports that); a
    checkpoint that cannot be found raises ModelNotAvailable with the reason."""
    if isinstance(ref, NativeModelRef | RunModelRef):
        config = ref.config if isinstance(ref, NativeModelRef) else read_checkpoint_config(
            runs.artifact_path(ref.run, ref.artifact)
        )[0]  # fmt: skip
        return ModelShape(config.n_layers, config.d_model, config.d_vocab, config.n_ctx)
    try:
        config = json.loads((resolve_pretrained_dir(ref.name) / "config.json").read_text(encoding="utf-8"))
    except (ModelNotAvailable, OSError, ValueError):
        return None
    sizes = [
        next((config[key] for key in keys if isinstance(config.get(key), int)), None)
        for keys in (
            ("n_layer", "num_hidden_layers", "n_layers"),
            ("n_embd", "hidden_size", "d_model"),
            ("vocab_size",),
            ("n_positions", "max_position_embeddings", "n_ctx"),
        )
    ]
    return ModelShape(*sizes) if None not in sizes else None


def model_context(ref: NativeModelRef | RunModelRef | PretrainedModelRef, runs: ArtifactResolver) -> int | None:
    """A referenced model's context length, read without loading it; None for a pretrained model (its
    config is only read on the worker) or a checkpoint that cannot be found (the spec check reports that)."""
    if isinstance(ref, PretrainedModelRef):
        return None
    try:
        return model_shape(ref, runs).n_ctx
    except ModelNotAvailable:
        return None


def data_fits_model(data, model: NativeModelRef | RunModelRef | PretrainedModelRef, runs: ArtifactResolver) -> dict:
    """{"data.half_length": why} when repeated random tokens are too long for the model; {} otherwise."""
    n_ctx = model_context(model, runs)
    problem = context_problem(data, n_ctx) if isinstance(data, RepeatedRandomTokens) and n_ctx else None
    return {"data.half_length": problem} if problem else {}
