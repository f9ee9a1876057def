"""Input helpers shared by the kinds: evaluation tokens for a model, checked against its context length."""

from __future__ import annotations

import torch

from experiments.engine.datasets import (
    InductionTraining,
    RepeatedRandomTokens,
    TextCorpus,
    corpus_batch,
    corpus_tokens,
    induction_batch,
    repeated_random_tokens,
)
from experiments.engine.errors import EngineError
from experiments.engine.models import bos_token


def repeated_tokens_for(model, ref: RepeatedRandomTokens, device) -> torch.Tensor:
    """Repeated random tokens in the model's vocabulary, starting with its BOS."""
    if ref.length > model.cfg.n_ctx:
        raise EngineError(
            f"data.half_length={ref.half_length} makes sequences of {ref.length} tokens; the model's context is "
            f"{model.cfg.n_ctx}. Use half_length <= {(model.cfg.n_ctx - 1) // 2}."
        )
    tokens = repeated_random_tokens(ref, d_vocab=model.cfg.d_vocab)
    tokens[:, 0] = bos_token(model)
    return tokens.to(device)


def eval_tokens(model, ref, ctx, *, n_sequences: int) -> torch.Tensor:
    """A fixed, seeded set of sequences to measure loss on (`n_sequences` of them for generated data)."""
    if isinstance(ref, RepeatedRandomTokens):
        return repeated_tokens_for(model, ref, ctx.device)
    generator = torch.Generator().manual_seed(ctx.seed + 7)
    length = model.cfg.n_ctx
    if isinstance(ref, InductionTraining):
        tokens, _ = induction_batch(
            ref, batch=n_sequences, length=length, d_vocab=model.cfg.d_vocab, generator=generator
        )
        return tokens.to(ctx.device)
    if isinstance(ref, TextCorpus):
        ids, vocab = corpus_tokens(ref, ctx.dataset_resolver)
        if vocab > model.cfg.d_vocab:
            raise EngineError(f"The corpus has {vocab} token ids but the model's vocabulary is {model.cfg.d_vocab}.")
        return corpus_batch(ids, batch=n_sequences, length=length, generator=generator).to(ctx.device)
    raise EngineError(f"Unsupported data source {ref!r}")
