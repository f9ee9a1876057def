"""Rank statistics shared by analyses that compare two scorings of the same nodes."""

from __future__ import annotations

import torch
from torch import Tensor


def ranks(x: Tensor) -> Tensor:
    """1-based ranks of a vector, ties given their mean rank (as Spearman's correlation needs)."""
    x = x.double().flatten()
    order = torch.argsort(x)
    ranked = torch.empty_like(x)
    ranked[order] = torch.arange(1, len(x) + 1, dtype=x.dtype)
    _, group = torch.unique(x, return_inverse=True)
    sums = torch.zeros(int(group.max()) + 1, dtype=x.dtype).index_add_(0, group, ranked)
    return (sums / torch.bincount(group).to(x.dtype))[group]


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman's rank correlation of two scorings of the same items (any shape, flattened); NaN when either is
    constant or fewer than 3 items are given."""
    if a.numel() != b.numel():
        raise ValueError(f"cannot correlate {a.numel()} scores with {b.numel()}")
    if a.numel() < 3:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / denominator if denominator > 0 else float("nan")
