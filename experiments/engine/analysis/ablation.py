"""Loss increase from zero- or mean-ablating each attention head, all heads batched.

Ablating head h of layer l changes nothing below layer l, and changes layer
l's attention output only by that head's own term, z_h · W_O[h]. So one clean
pass caches every layer's residual stream and per-head outputs; then, per
layer, the H ablated variants of the residual stream are built by subtracting
one head's term each (and adding its mean, for mean-ablation), stacked along
the batch dimension, and only the layers above are run. For L layers this
costs about sum_l H·(L-1-l) layer passes instead of H·L full forward passes.

Mean-ablation replaces a head's output at each position with its mean over
the batch at that position. `per_head_loop` is the one-head-at-a-time
reference, through TransformerLens hooks on `hook_z`; the tests check both
agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from experiments.engine.lean import LeanTransformer, lean_from_bridge
from experiments.engine.models import NativeConfig

MODES = ("zero", "mean")


def _token_losses(logits: Tensor, tokens: Tensor) -> Float[Tensor, "batch pos"]:
    """loss[:, i] is the loss of predicting token i+1."""
    return _next_token_losses(logits[:, :-1], tokens[:, 1:])


def _next_token_losses(
    logits: Float[Tensor, "batch pos d_vocab"], targets: Int[Tensor, "batch pos"]
) -> Float[Tensor, "batch pos"]:
    # Flattened to [batch*pos, d_vocab] rather than transposed to [batch, d_vocab, pos]:
    # cross_entropy would copy the transposed logits, which cost as much as the unembedding.
    flat = logits.reshape(-1, logits.shape[-1]).float()
    return F.cross_entropy(flat, targets.reshape(-1), reduction="none").view(targets.shape)


def _lean_losses(model: LeanTransformer, resid: Tensor, targets: Tensor) -> Float[Tensor, "batch pos"]:
    """Next-token losses from the final residual stream; the last position predicts nothing, so it is not unembedded."""
    return _next_token_losses(model.unembed(model.ln_final(resid[:, :-1])), targets)


def _masked_mean(losses: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return losses.mean(dim=(-2, -1))
    return (losses * mask).sum(dim=(-2, -1)) / mask.sum()


@torch.no_grad()
def batched_ablation(
    model: LeanTransformer,
    tokens: Int[Tensor, "batch pos"],
    *,
    mode: str = "zero",
    loss_mask: Tensor | None = None,
    max_variants: int = 64,
) -> tuple[float, Float[Tensor, "layer head"]]:
    """(clean loss, loss with each head ablated). `loss_mask` [batch, pos-1] picks the predictions that count."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    n_layers, n_heads, d_head = model.config.n_layers, model.config.n_heads, model.config.d_head
    batch, pos = tokens.shape
    x = model.embed(tokens) + model.pos_embed(torch.arange(pos, device=tokens.device))
    mids, head_outs = [], []
    for block in model.blocks:
        attn = block.attn
        h_in = block.ln1(x)

        def heads(t: Tensor) -> Tensor:  # [batch, pos, head*d_head] -> [batch, head, pos, d_head]
            return t.view(batch, pos, n_heads, d_head).transpose(1, 2)

        z = F.scaled_dot_product_attention(
            heads(attn.q(h_in)), heads(attn.k(h_in)), heads(attn.v(h_in)), is_causal=True
        )
        w_o = attn.o.weight.view(-1, n_heads, d_head)  # [d_model, head, d_head]
        head_out = torch.einsum("bhpd,mhd->hbpm", z, w_o)  # each head's term of the attention output
        mid = x + head_out.sum(0) + attn.o.bias
        mids.append(mid)
        head_outs.append(head_out)
        x = mid if block.attn_only else mid + block.mlp(block.ln2(mid))
    targets = tokens[:, 1:]
    clean = float(_masked_mean(_lean_losses(model, x, targets), loss_mask))

    ablated = torch.empty(n_layers, n_heads)
    heads_per_chunk = max(1, max_variants // batch)
    for layer in range(n_layers):
        head_out = head_outs[layer]  # [head, batch, pos, d_model]
        mean = head_out.mean(dim=1, keepdim=True) if mode == "mean" else None  # [head, 1, pos, d_model]
        block = model.blocks[layer]
        # The variants are built one chunk of heads at a time: smaller tensors stay in cache.
        for start in range(0, n_heads, heads_per_chunk):
            stop = min(n_heads, start + heads_per_chunk)
            n = stop - start
            y = mids[layer] - head_out[start:stop]  # [n, batch, pos, d_model]: head start+i removed in y[i]
            if mean is not None:
                y += mean[start:stop]
            y = y.view(n * batch, pos, -1)
            if not block.attn_only:
                y = y + block.mlp(block.ln2(y))
            for later in model.blocks[layer + 1 :]:
                y = later(y)
            losses = _lean_losses(model, y, targets.repeat(n, 1)).view(n, batch, pos - 1)
            ablated[layer, start:stop] = _masked_mean(losses, loss_mask).cpu()
    return clean, ablated


@torch.no_grad()
def per_head_loop(
    bridge, tokens: Tensor, *, mode: str = "zero", loss_mask: Tensor | None = None
) -> tuple[float, Float[Tensor, "layer head"]]:
    """The reference: one forward pass per head, ablating it with a hook on `blocks.{l}.attn.hook_z`."""
    clean = float(_masked_mean(_token_losses(bridge(tokens), tokens), loss_mask))
    ablated = torch.empty(bridge.cfg.n_layers, bridge.cfg.n_heads)
    for layer in range(bridge.cfg.n_layers):
        for head in range(bridge.cfg.n_heads):

            def ablate(z: Tensor, hook, head: int = head) -> Tensor:  # z: [batch, pos, head, d_head]
                z = z.clone()
                z[:, :, head] = z[:, :, head].mean(dim=0, keepdim=True) if mode == "mean" else 0.0
                return z

            logits = bridge.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", ablate)])
            ablated[layer, head] = _masked_mean(_token_losses(logits, tokens), loss_mask).cpu()
    return clean, ablated


@torch.no_grad()
def hook_batched_ablation(
    bridge, tokens: Tensor, *, mode: str = "zero", loss_mask: Tensor | None = None
) -> tuple[float, Float[Tensor, "layer head"]]:
    """For models without a lean twin (pretrained): per layer, one pass over the batch repeated once per head."""
    n_layers, n_heads = bridge.cfg.n_layers, bridge.cfg.n_heads
    batch = tokens.shape[0]
    clean = float(_masked_mean(_token_losses(bridge(tokens), tokens), loss_mask))
    ablated = torch.empty(n_layers, n_heads)
    stacked = tokens.repeat(n_heads, 1)  # replica i ablates head i
    for layer in range(n_layers):

        def ablate(z: Tensor, hook) -> Tensor:
            z = z.clone().view(n_heads, batch, *z.shape[1:])
            for head in range(n_heads):
                z[head, :, :, head] = z[head, :, :, head].mean(dim=0, keepdim=True) if mode == "mean" else 0.0
            return z.view(n_heads * batch, *z.shape[2:])

        logits = bridge.run_with_hooks(stacked, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", ablate)])
        losses = _token_losses(logits, stacked).view(n_heads, batch, -1)
        ablated[layer] = _masked_mean(losses, loss_mask).cpu()
    return clean, ablated


def head_ablation(
    bridge, tokens: Tensor, *, mode: str, config: NativeConfig | None, loss_mask: Tensor | None = None
) -> tuple[float, Tensor]:
    """Batched ablation: the cached-residual method when the model has a lean twin (native config), else hooks."""
    if config is not None and config.positional_embedding_type == "standard":
        lean = lean_from_bridge(bridge, config).to(tokens.device).eval()
        return batched_ablation(lean, tokens, mode=mode, loss_mask=loss_mask)
    return hook_batched_ablation(bridge, tokens, mode=mode, loss_mask=loss_mask)
