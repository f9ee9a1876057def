"""Fourier analysis of a modular-addition model: Nanda et al. 2023, "Progress measures for grokking via
mechanistic interpretability".

A model that has grokked `a + b mod p` represents its inputs by a few frequencies w_k = 2 pi k / p: the embedding
W_E, read as a function of the input token x, is mostly cos(w_k x) and sin(w_k x) for those key frequencies, and
the logits are sums of cos(w_k (a + b - c)). Here:

- `fourier_basis(p)`: the orthonormal Fourier basis of functions on 0..p-1 (p odd): the constant, then
  cos(w_k x) and sin(w_k x) for k = 1..(p-1)/2;
- `frequency_energy(W_E)`: the squared norm of the embedding per frequency k (its cos and sin components summed
  over d_model); with the constant's, these add up to the embedding's squared norm (Parseval);
- `key_frequencies`: the frequencies whose share is at least KEY_FACTOR times an even share;
- `restricted_and_excluded_loss`: the logits on all p^2 pairs, as functions of (a, b) for each answer c, either
  kept only along the directions cos(w_k (a + b)), sin(w_k (a + b)) of the key frequencies (plus each answer's
  mean: the restricted loss, on all pairs) or with those directions removed (the excluded loss, on the training
  pairs). cos(w (a + b - c)) lies in the span of the two directions for every c, so the restricted logits keep
  exactly the generalising algorithm and the excluded logits keep everything else, memorisation included.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

KEY_FACTOR = 3.0  # a key frequency carries at least 3x the share every frequency would carry if all were equal
MAX_KEY_FREQUENCIES = 10


def fourier_basis(p: int) -> Tensor:
    """[p, p] orthonormal rows: the constant, then cos(w_k x), sin(w_k x) for k = 1..(p-1)/2 (p odd)."""
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.full((p,), 1.0 / math.sqrt(p), dtype=torch.float64)]
    for k in range(1, (p - 1) // 2 + 1):
        angle = 2 * math.pi * k * x / p
        rows += [torch.cos(angle) * math.sqrt(2 / p), torch.sin(angle) * math.sqrt(2 / p)]
    return torch.stack(rows)


def frequency_energy(embedding: Tensor) -> tuple[Tensor, float]:
    """The squared norm of `embedding` [p, d_model] (rows: input tokens 0..p-1) per frequency k = 1..(p-1)/2
    (index k-1), and the constant component's."""
    p = embedding.shape[0]
    coefficients = fourier_basis(p) @ embedding.detach().double().cpu()  # [p components, d_model]
    energy = (coefficients**2).sum(dim=-1)
    return energy[1::2] + energy[2::2], float(energy[0])


def top_share(energy: Tensor, constant: float, top: int) -> float:
    """Share of the embedding's squared norm (constant included) carried by its `top` strongest frequencies."""
    return float(energy.sort(descending=True).values[:top].sum() / (energy.sum() + constant))


def key_frequencies(energy: Tensor) -> list[int]:
    """Frequencies k (1-based) whose squared norm is at least KEY_FACTOR times the mean over frequencies, strongest
    first, at most MAX_KEY_FREQUENCIES."""
    threshold = KEY_FACTOR * float(energy.mean())
    order = energy.argsort(descending=True).tolist()
    return [k + 1 for k in order[:MAX_KEY_FREQUENCIES] if float(energy[k]) >= threshold]


def pair_directions(p: int, frequencies: list[int]) -> Tensor:
    """[2 * len(frequencies), p*p] orthonormal directions cos(w_k (a + b)) and sin(w_k (a + b)) over the pairs,
    row a*p + b."""
    total = (torch.arange(p).repeat_interleave(p) + torch.arange(p).repeat(p)).double()
    rows = []
    for k in frequencies:
        angle = 2 * math.pi * k * total / p
        rows += [torch.cos(angle), torch.sin(angle)]
    directions = torch.stack(rows) if rows else torch.zeros(0, p * p, dtype=torch.float64)
    return directions / directions.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def restricted_and_excluded_loss(
    logits: Tensor, labels: Tensor, train: Tensor, frequencies: list[int]
) -> tuple[float, float]:
    """(restricted loss on all pairs, excluded loss on the training pairs) of `logits` [p*p, p] (row a*p + b)."""
    p = logits.shape[1]
    logits = logits.detach().double().cpu()
    directions = pair_directions(p, frequencies)  # [2 n_freq, p*p]
    along = directions.T @ (directions @ logits)  # the logits' key-frequency part, per answer c
    restricted = logits.mean(dim=0, keepdim=True) + along
    excluded = logits - along
    labels, train = labels.cpu(), train.cpu()
    return float(F.cross_entropy(restricted, labels)), float(F.cross_entropy(excluded[train], labels[train]))
