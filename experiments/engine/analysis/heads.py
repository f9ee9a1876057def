"""Previous-token, duplicate-token and induction scores of every attention head.

Measured on repeated random tokens (BOS, r_1..r_h, r_1..r_h), as in Olsson et
al. 2022 and TransformerLens' head detector. For a query at position q:

- previous-token score: attention to q-1, averaged over every query after BOS;
- duplicate-token score: attention to q-h (the earlier copy of the current
  token), averaged over queries in the second half;
- induction score: attention to q-h+1 (the token that followed the earlier
  copy), averaged over queries in the second half.

Each score is the mean attention weight on the key a perfect head of that type
attends to, so it lies in [0, 1]; a uniform head over ~h keys scores ~1/h.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

# A head is given a type when its score reaches the threshold. 0.4 means 40% of
# the head's attention, averaged over the measured queries, goes to that one key:
# far above the ~1/h a diffuse head gives. A head may have several types.
THRESHOLDS = {"induction": 0.4, "previous_token": 0.4, "duplicate_token": 0.4}


@dataclass(frozen=True)
class HeadScores:
    induction: Float[Tensor, "layer head"]
    previous_token: Float[Tensor, "layer head"]
    duplicate_token: Float[Tensor, "layer head"]

    def by_type(self) -> dict[str, Tensor]:
        return {
            "induction": self.induction,
            "previous_token": self.previous_token,
            "duplicate_token": self.duplicate_token,
        }

    def types_of(self, layer: int, head: int) -> list[str]:
        return [name for name, scores in self.by_type().items() if scores[layer, head] >= THRESHOLDS[name]]

    def heads_of_type(self, name: str) -> list[tuple[int, int]]:
        scores = self.by_type()[name]
        return [tuple(idx) for idx in (scores >= THRESHOLDS[name]).nonzero().tolist()]


def head_scores_from_patterns(patterns: Float[Tensor, "layer batch head q k"], half: int) -> HeadScores:
    """Scores from attention patterns on BOS + `half` random tokens repeated once."""
    length = patterns.shape[-1]
    queries = torch.arange(1, length)
    second = torch.arange(half + 1, length)
    previous = patterns[..., queries, queries - 1].mean(dim=(1, 3))
    duplicate = patterns[..., second, second - half].mean(dim=(1, 3))
    induction = patterns[..., second, second - half + 1].mean(dim=(1, 3))
    return HeadScores(induction=induction, previous_token=previous, duplicate_token=duplicate)


def attention_patterns(model, tokens: Tensor) -> Float[Tensor, "layer batch head q k"]:
    """Every layer's attention pattern, caching nothing else."""
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("attn.hook_pattern"))
    return torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(model.cfg.n_layers)])


def head_scores(model, tokens: Tensor) -> HeadScores:
    """Scores of every head of a TransformerBridge on repeated random tokens."""
    half = (tokens.shape[1] - 1) // 2
    return head_scores_from_patterns(attention_patterns(model, tokens).float().cpu(), half)
