"""A lean training module with the TL-native architecture, and the hand-off to a TransformerBridge.

TransformerLens' native model computes attention explicitly and routes every
activation through hook points: right for analysis, slow for training (about
0.5-0.7x of a plain PyTorch model on a CPU). `LeanTransformer` is the same
function with the same parameters under the same names as the bridge's
state dict, using fused `scaled_dot_product_attention`. Kinds train it and
hand its weights to `to_bridge` for analysis; tests check both give the same
logits.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from experiments.engine.models import NativeConfig, build_native

ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
}


class _RMSNorm(nn.Module):
    def __init__(self, d_model: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


class _LayerNormPre(nn.Module):
    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x = x - x.mean(-1, keepdim=True)
        return x / (x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt()


def _norm(config: NativeConfig, eps: float = 1e-5) -> nn.Module:
    if config.normalization_type == "LN":
        return nn.LayerNorm(config.d_model, eps=eps)
    if config.normalization_type == "RMS":
        return _RMSNorm(config.d_model, eps)
    if config.normalization_type == "LNPre":
        return _LayerNormPre(eps)
    return nn.Identity()


class _Attention(nn.Module):
    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        inner = config.n_heads * config.d_head
        self.n_heads, self.d_head = config.n_heads, config.d_head
        self.q = nn.Linear(config.d_model, inner)
        self.k = nn.Linear(config.d_model, inner)
        self.v = nn.Linear(config.d_model, inner)
        self.o = nn.Linear(inner, config.d_model)

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        batch, pos, _ = x.shape

        def heads(t: Tensor) -> Tensor:  # [batch, pos, head*d_head] -> [batch, head, pos, d_head]
            return t.view(batch, pos, self.n_heads, self.d_head).transpose(1, 2)

        z = F.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)), is_causal=True)
        return self.o(z.transpose(1, 2).reshape(batch, pos, -1))


class _MLP(nn.Module):
    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        d_mlp = config.d_mlp or 4 * config.d_model
        # "in" is a keyword, so the submodule is added by name to match the bridge's keys (mlp.in.weight).
        self.add_module("in", nn.Linear(config.d_model, d_mlp))
        self.out = nn.Linear(d_mlp, config.d_model)
        self.act = ACTIVATIONS[config.act_fn]

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.act(getattr(self, "in")(x)))


class _Block(nn.Module):
    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        self.ln1 = _norm(config)
        self.attn = _Attention(config)
        self.attn_only = config.attn_only
        if not config.attn_only:
            self.ln2 = _norm(config)
            self.mlp = _MLP(config)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        if not self.attn_only:
            x = x + self.mlp(self.ln2(x))
        return x


class LeanTransformer(nn.Module):
    """The TL-native architecture (standard positional embeddings) for fast training."""

    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        if config.positional_embedding_type != "standard":
            raise ValueError("LeanTransformer supports standard positional embeddings only.")
        self.config = config
        self.embed = nn.Embedding(config.d_vocab, config.d_model)
        self.pos_embed = nn.Embedding(config.n_ctx, config.d_model)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.ln_final = _norm(config)
        self.unembed = nn.Linear(config.d_model, config.d_vocab, bias=False)

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_vocab"]:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embed(tokens) + self.pos_embed(positions)
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_final(x))


def init_like_native(model: LeanTransformer, *, seed: int) -> None:
    """Start from the weights boot_native would give for this seed, so both paths train the same model."""
    bridge = build_native(model.config, seed=seed)
    model.load_state_dict(bridge_state_to_lean(bridge.state_dict()))


def bridge_state_to_lean(state: dict[str, Tensor]) -> dict[str, Tensor]:
    # The bridge reports a zero unembedding bias the native model does not have.
    return {k: v for k, v in state.items() if k != "unembed.bias"}


def lean_state_to_bridge(model: LeanTransformer) -> dict[str, Tensor]:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["unembed.bias"] = torch.zeros(model.config.d_vocab, device=model.unembed.weight.device)
    return state


def to_bridge(model: LeanTransformer, *, device: torch.device | str = "cpu") -> Any:
    """A TransformerBridge holding the lean model's weights (for hooks, caches, composition scores)."""
    bridge = build_native(model.config, seed=0, device=device)
    bridge.load_state_dict(lean_state_to_bridge(model))
    return bridge


def lean_from_bridge(bridge: Any, config: NativeConfig) -> LeanTransformer:
    """The inverse hand-off, for continuing to train a loaded checkpoint."""
    model = LeanTransformer(config)
    model.load_state_dict(bridge_state_to_lean(bridge.state_dict()))
    return model


def cosine_lr(step: int, *, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up to `peak`, then cosine decay to a tenth of it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
