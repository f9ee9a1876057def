"""Attribution patching: a first-order estimate of every node's activation-patching effect from one backward pass.

Activation patching (`analysis.patching`) replaces one node's activation a (a head's output z, before W_O; or
one MLP neuron's post-activation) on the clean prompts by its value a' on the corrupted prompts, and measures the
metric again: one forward pass per node. Attribution patching (Nanda 2023, "Attribution Patching"; Syed, Rager
and Conmy 2023, "Attribution Patching Outperforms Automated Circuit Discovery") takes the metric's linear
approximation around the clean run instead:

    effect(node) ≈ (a'_node − a_node) · ∂metric/∂a_node  (at the clean activations)

summed over positions (and over d_head for a head). Every node's estimate comes from the same three passes: a
forward pass on the corrupted prompts (the a'), a forward pass on the clean prompts keeping the a, and one
backward pass for the gradients. The estimate is exact for a node the metric depends on linearly, and drifts
where patching moves an attention pattern or a nonlinearity far (Syed et al. report it matching activation
patching well on IOI in GPT-2, except for some layer-0 heads and MLPs).

As in `analysis.patching`, an effect is patched − clean for the mean of the metric over the prompts, so the two
are compared number for number.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from experiments.engine.analysis.patching import Metric


def head_hook(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_z"  # [batch, pos, head, d_head]


def neuron_hook(layer: int) -> str:
    return f"blocks.{layer}.mlp.hook_post"  # [batch, pos, d_mlp]


def has_neurons(bridge) -> bool:
    """Whether the model has MLPs whose neurons can be patched (attention-only models have none)."""
    return not bridge.cfg.attn_only and neuron_hook(0) in bridge.hook_dict


@dataclass(frozen=True)
class Attribution:
    clean: float  # the metric's mean on the clean prompts
    corrupt: float  # ... and on the corrupted ones
    heads: Float[Tensor, "layer head"]  # estimated patched − clean, per head
    neurons: Float[Tensor, "layer neuron"] | None  # ... per MLP neuron, when asked for


def attribution_patching(
    bridge,
    clean: Int[Tensor, "batch pos"],
    corrupt: Int[Tensor, "batch pos"],
    metric: Metric,
    *,
    neurons: bool = False,
) -> Attribution:
    """Every head's (and, with `neurons`, every MLP neuron's) estimated patching effect, from two forward
    passes and one backward pass."""
    if clean.shape != corrupt.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and corrupted {tuple(corrupt.shape)} prompts differ in shape")
    if neurons and not has_neurons(bridge):
        raise ValueError("this model has no MLP neurons to attribute")
    n_layers = bridge.cfg.n_layers
    names = [head_hook(layer) for layer in range(n_layers)]
    if neurons:
        names += [neuron_hook(layer) for layer in range(n_layers)]

    with torch.no_grad():
        corrupt_logits, corrupt_cache = bridge.run_with_cache(corrupt, names_filter=lambda name: name in names)
        corrupt_value = float(metric(corrupt_logits).mean())

    clean_acts: dict[str, Tensor] = {}

    def keeper(name: str):
        def keep(act: Tensor, hook) -> Tensor:
            # A model whose weights are frozen gives activations outside the autograd graph; the first node made a
            # leaf puts every later one back in it.
            if not act.requires_grad:
                act = act.detach().requires_grad_(True)
            clean_acts[name] = act
            return act

        return keep

    with torch.enable_grad():
        value = metric(bridge.run_with_hooks(clean, fwd_hooks=[(name, keeper(name)) for name in names])).mean()
        grads = dict(zip(names, torch.autograd.grad(value, [clean_acts[name] for name in names]), strict=True))

    def estimate(name: str) -> Tensor:
        delta = corrupt_cache[name] - clean_acts[name].detach()
        per_unit = (delta * grads[name]).sum(dim=(0, 1))  # over prompts and positions: [head, d_head] or [neuron]
        return per_unit.sum(-1) if per_unit.dim() == 2 else per_unit

    with torch.no_grad():
        heads = torch.stack([estimate(head_hook(layer)) for layer in range(n_layers)]).float().cpu()
        per_neuron = (
            torch.stack([estimate(neuron_hook(layer)) for layer in range(n_layers)]).float().cpu() if neurons else None
        )
    return Attribution(float(value.detach()), corrupt_value, heads, per_neuron)
