"""Activation patching of attention heads: how much of a metric each head carries between two prompt sets.

Patching head h of layer l runs the clean prompts with that head's output (its `hook_z`, before W_O) replaced
by its value on the corrupted prompts at every position, and measures a metric of the logits (for IOI, the
logit difference IO − S at END). A head the task flows through moves the metric towards its corrupted value.
Clean and corrupted prompts must have the same length, position by position (Wang et al. 2022 patch from the
"ABC" distribution; Meng et al. 2022 call restoring clean states into a corrupted run "causal tracing").

The effect is reported as the change of the metric, patched − clean, so a head the task needs shows a
negative effect on a metric the clean prompts make large. One forward pass per layer over the batch repeated
once per head: (n_layers + 2) passes of n_heads × batch prompts, the same compute as a pass per head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

Metric = Callable[[Tensor], Tensor]  # logits [batch, pos, d_vocab] -> one value per prompt [batch]


@dataclass(frozen=True)
class HeadPatching:
    clean: float  # the metric's mean on the clean prompts
    corrupt: float  # ... and on the corrupted ones
    effects: Float[Tensor, "layer head"]  # patched − clean, per head

    def normalised(self) -> Float[Tensor, "layer head"]:
        """The effects as a share of the whole clean − corrupt gap: -1 means the head alone carries all of it."""
        gap = self.clean - self.corrupt
        return self.effects / gap if abs(gap) > 1e-9 else torch.zeros_like(self.effects)


@torch.no_grad()
def head_patching(
    bridge, clean: Int[Tensor, "batch pos"], corrupt: Int[Tensor, "batch pos"], metric: Metric
) -> HeadPatching:
    """Patch every head's output from the corrupted run into the clean run, one head at a time."""
    if clean.shape != corrupt.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and corrupted {tuple(corrupt.shape)} prompts differ in shape")
    n_layers, n_heads = bridge.cfg.n_layers, bridge.cfg.n_heads
    batch = clean.shape[0]
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(n_layers)]
    corrupt_logits, cache = bridge.run_with_cache(corrupt, names_filter=lambda name: name in names)
    clean_value = float(metric(bridge(clean)).mean())
    corrupt_value = float(metric(corrupt_logits).mean())
    stacked = clean.repeat(n_heads, 1)  # replica i patches head i
    effects = torch.empty(n_layers, n_heads)
    for layer in range(n_layers):
        source = cache[names[layer]]  # [batch, pos, head, d_head]

        def patch(z: Tensor, hook, source: Tensor = source) -> Tensor:
            z = z.clone().view(n_heads, batch, *z.shape[1:])
            for head in range(n_heads):
                z[head, :, :, head] = source[:, :, head]
            return z.view(n_heads * batch, *z.shape[2:])

        logits = bridge.run_with_hooks(stacked, fwd_hooks=[(names[layer], patch)])
        per_replica = logits.view(n_heads, batch, *logits.shape[1:])
        effects[layer] = torch.stack([metric(per_replica[head]).mean() for head in range(n_heads)]).cpu()
    return HeadPatching(clean_value, corrupt_value, effects - clean_value)


@torch.no_grad()
def neuron_patching(
    bridge,
    clean: Int[Tensor, "batch pos"],
    corrupt: Int[Tensor, "batch pos"],
    metric: Metric,
    *,
    max_rows: int = 1024,
) -> Float[Tensor, "layer neuron"]:
    """Patch every MLP neuron's post-activation (`blocks.{l}.mlp.hook_post`) from the corrupted run into the clean
    run, one neuron at a time: patched − clean per neuron. Neurons are patched in replicas of the batch, as many
    at once as fit in `max_rows` prompts per forward pass (at least one)."""
    if clean.shape != corrupt.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and corrupted {tuple(corrupt.shape)} prompts differ in shape")
    n_layers, d_mlp = bridge.cfg.n_layers, bridge.cfg.d_mlp
    batch = clean.shape[0]
    names = [f"blocks.{layer}.mlp.hook_post" for layer in range(n_layers)]
    _, cache = bridge.run_with_cache(corrupt, names_filter=lambda name: name in names)
    clean_value = float(metric(bridge(clean)).mean())
    per_pass = max(1, max_rows // batch)
    effects = torch.empty(n_layers, d_mlp)
    for layer in range(n_layers):
        source = cache[names[layer]]  # [batch, pos, d_mlp]
        for start in range(0, d_mlp, per_pass):
            neurons = range(start, min(start + per_pass, d_mlp))

            def patch(post: Tensor, hook, source: Tensor = source, neurons: range = neurons) -> Tensor:
                post = post.clone().view(len(neurons), batch, *post.shape[1:])
                for replica, neuron in enumerate(neurons):
                    post[replica, :, :, neuron] = source[:, :, neuron]
                return post.view(len(neurons) * batch, *post.shape[2:])

            logits = bridge.run_with_hooks(clean.repeat(len(neurons), 1), fwd_hooks=[(names[layer], patch)])
            per_replica = logits.view(len(neurons), batch, *logits.shape[1:])
            effects[layer, neurons.start : neurons.stop] = torch.stack(
                [metric(per_replica[replica]).mean() for replica in range(len(neurons))]
            ).cpu()
    return effects - clean_value
