"""Modular addition `a + b mod p` and the one-layer transformer that groks it (Nanda et al. 2023).

The data: every pair (a, b) with 0 <= a, b < p as the three tokens `a b =` (`=` is token p), labelled
(a + b) mod p; a seeded shuffle splits the p^2 pairs into a training set and a test set.

The model: one block, no LayerNorm: token and position embeddings, multi-head attention, a ReLU MLP, an
unembedding to the p answers. Weights are named as in TransformerLens (W_E, W_pos, W_Q, W_K, W_V, W_O, W_in,
b_in, W_out, b_out, W_U), so the analysis reads like Nanda et al.'s. The loss is read at the last position only,
so only that position's query, attention output and MLP are computed: positions 0 and 1 give keys and values,
and nothing the loss or the analysis reads depends on their own outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class ModularShape:
    p: int
    d_model: int
    n_heads: int
    d_mlp: int

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


@dataclass(frozen=True)
class ModularData:
    """All p^2 pairs; `train` and `test` index into them."""

    tokens: Tensor  # [p*p, 3]: a, b, = (row a*p + b)
    labels: Tensor  # [p*p]
    train: Tensor  # indices of the training pairs
    test: Tensor  # indices of the test pairs


def modular_addition_data(p: int, train_fraction: float, seed: int) -> ModularData:
    """Every pair (a, b), row a*p + b, with a seeded split: the first round(train_fraction * p^2) of a shuffle train."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    order = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
    n_train = round(train_fraction * p * p)
    return ModularData(tokens=tokens, labels=(a + b) % p, train=order[:n_train], test=order[n_train:])


class OneLayerTransformer(nn.Module):
    """Embed, attend, ReLU MLP, unembed; logits at the last position only: [batch, 3] -> [batch, p]."""

    def __init__(self, shape: ModularShape) -> None:
        super().__init__()
        p, d, h, dh, m = shape.p, shape.d_model, shape.n_heads, shape.d_head, shape.d_mlp
        self.shape = shape
        self.W_E = nn.Parameter(torch.empty(p + 1, d))
        self.W_pos = nn.Parameter(torch.empty(3, d))
        self.W_Q = nn.Parameter(torch.empty(h, d, dh))
        self.W_K = nn.Parameter(torch.empty(h, d, dh))
        self.W_V = nn.Parameter(torch.empty(h, d, dh))
        self.W_O = nn.Parameter(torch.empty(h, dh, d))
        self.W_in = nn.Parameter(torch.empty(d, m))
        self.b_in = nn.Parameter(torch.zeros(m))
        self.W_out = nn.Parameter(torch.empty(m, d))
        self.b_out = nn.Parameter(torch.zeros(d))
        self.W_U = nn.Parameter(torch.empty(d, p))

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Normal weights with standard deviation 1/sqrt(fan-in) (1/sqrt(d_mlp) for W_out, 1/sqrt(d_head) for
        W_O), zero biases: the scale of Nanda et al.'s original grokking code."""
        d, dh, m = self.shape.d_model, self.shape.d_head, self.shape.d_mlp
        scales = {"W_E": d, "W_pos": d, "W_Q": d, "W_K": d, "W_V": d, "W_O": dh, "W_in": d, "W_out": m, "W_U": d}
        with torch.no_grad():
            for name, fan_in in scales.items():
                weight = getattr(self, name)
                weight.copy_(torch.randn(weight.shape, generator=generator) / fan_in**0.5)
            self.b_in.zero_()
            self.b_out.zero_()

    def residual(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """The last position's residual stream after attention [batch, d_model] and its MLP activations
        [batch, d_mlp]."""
        h, dh = self.shape.n_heads, self.shape.d_head
        x = self.W_E[tokens] + self.W_pos  # [batch, 3, d_model]
        batch = x.shape[0]
        # Each [head, d_model, d_head] weight as one [d_model, head * d_head] matrix: one matmul for all heads.
        q = (x[:, -1] @ _heads_side_by_side(self.W_Q)).view(batch, 1, h, dh)  # the last position's query only
        k = (x @ _heads_side_by_side(self.W_K)).view(batch, 3, h, dh)
        v = (x @ _heads_side_by_side(self.W_V)).view(batch, 3, h, dh)
        pattern = torch.softmax((q * k).sum(-1) / dh**0.5, dim=1)  # [batch, pos, head]
        z = (pattern.unsqueeze(-1) * v).sum(1)  # [batch, head, d_head]
        resid = x[:, -1] + z.reshape(batch, h * dh) @ self.W_O.reshape(h * dh, -1)
        acts = F.relu(resid @ self.W_in + self.b_in)  # [batch, d_mlp]
        return resid + acts @ self.W_out + self.b_out, acts

    def forward(self, tokens: Tensor) -> Tensor:
        return self.residual(tokens)[0] @ self.W_U


def _heads_side_by_side(weight: Tensor) -> Tensor:
    """[head, d_model, d_head] -> [d_model, head * d_head]."""
    return weight.transpose(0, 1).reshape(weight.shape[1], -1)


def cross_entropy_f64(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy computed in float64: near zero loss, float32 rounding makes the gradient noisy enough to
    destabilise training (the 'slingshots' Nanda et al. avoid the same way)."""
    return F.cross_entropy(logits.double(), labels)


def accuracy(logits: Tensor, labels: Tensor) -> float:
    return float((logits.argmax(dim=-1) == labels).float().mean())


def weight_norm(model: nn.Module) -> float:
    """The L2 norm of all parameters together."""
    return float(torch.sqrt(sum((w.detach() ** 2).sum() for w in model.parameters())))
