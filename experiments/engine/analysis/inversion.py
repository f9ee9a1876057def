"""Decoders that read the input token back out of a model's residual stream (the `activation_inversion` kind).

Each decoder sees one position's activation (a slice of the residual stream at one layer) and predicts the token
at that same position. Decoders for several layers, and for a second model, train side by side on the same
batches, so one forward pass of each model serves them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from experiments.engine.lean import lean_from_bridge


def hook_name(layer: int, n_layers: int) -> str:
    """The residual stream before block `layer`; `layer == n_layers` is the stream after the last block."""
    return f"blocks.{layer}.hook_resid_pre" if layer < n_layers else f"blocks.{n_layers - 1}.hook_resid_post"


def residual_streams(
    model, tokens: Int[Tensor, "batch pos"], layers: list[int], dims: slice
) -> dict[int, Float[Tensor, "batch pos d"]]:
    """The `dims` slice of the residual stream at each of `layers`, from one forward pass."""
    names = {layer: hook_name(layer, model.cfg.n_layers) for layer in layers}
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in set(names.values()))
    return {layer: cache[name][..., dims].float() for layer, name in names.items()}


def stream_reader(model, config, layers: list[int], dims: slice) -> Callable[[Tensor], dict[int, Tensor]]:
    """`residual_streams` as a function of the tokens. A native model (its config given) is read through the
    fused lean module with the same weights: the same numbers (to float rounding) several times faster than the
    bridge's hooks, which matters when decoders train on a fresh batch every step."""
    if config is None or config.positional_embedding_type != "standard":
        return lambda tokens: residual_streams(model, tokens, layers, dims)
    lean = lean_from_bridge(model, config).to(model.cfg.device).eval()

    def read(tokens: Tensor) -> dict[int, Tensor]:
        with torch.no_grad():
            x = lean.embed(tokens) + lean.pos_embed(torch.arange(tokens.shape[1], device=tokens.device))
            streams = [x]  # streams[l]: before block l; streams[n_layers]: after the last block
            for block in lean.blocks:
                x = block(x)
                streams.append(x)
        return {layer: streams[layer][..., dims].float() for layer in layers}

    return read


def decoder(kind: str, d_in: int, d_vocab: int, hidden: int) -> nn.Module:
    """A linear map to token logits, or a one-hidden-layer MLP; both start from standardised inputs."""
    head = nn.Linear(d_in, d_vocab) if kind == "linear" else nn.Sequential(
        nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_vocab)
    )  # fmt: skip
    return nn.Sequential(nn.LayerNorm(d_in, elementwise_affine=False), head)


@dataclass
class Evaluation:
    accuracy: float
    top10_accuracy: float
    per_position: list[float]  # accuracy at positions 1.. (position 0 is BOS)
    guesses: Int[Tensor, "example pos ten"]  # top-10 token guesses for the first sequences
    probabilities: Float[Tensor, "example pos ten"]


def train_decoders(
    decoders: dict[int, nn.Module],
    activations_of,
    batches,
    *,
    lr: float,
    on_step=None,
) -> list[float]:
    """Train every layer's decoder on the same batches: `activations_of(tokens)` gives {layer: activations}.
    Position 0 (BOS) is left out. Returns the last batch's loss per layer, in `decoders`' order."""
    params = [p for d in decoders.values() for p in d.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses: list[float] = []
    for step, tokens in enumerate(batches, start=1):
        activations = activations_of(tokens)
        targets = tokens[:, 1:]
        per_layer = [
            F.cross_entropy(d(activations[layer][:, 1:]).transpose(1, 2), targets) for layer, d in decoders.items()
        ]
        optimizer.zero_grad(set_to_none=True)
        torch.stack(per_layer).sum().backward()
        optimizer.step()
        losses = [loss.detach().item() for loss in per_layer]
        if on_step is not None:
            on_step(step)
    return losses


def evaluate(
    decoder_: nn.Module, activations: Float[Tensor, "batch pos d"], tokens: Int[Tensor, "batch pos"], n_examples: int
) -> Evaluation:
    """Accuracy of one decoder on held-out sequences, per position, and its top-10 guesses for the first few."""
    with torch.no_grad():
        logits = decoder_(activations[:, 1:])
    targets = tokens[:, 1:]
    correct = logits.argmax(dim=-1) == targets
    top = logits[:n_examples].softmax(dim=-1).topk(min(10, logits.shape[-1]), dim=-1)
    in_top10 = (logits.topk(min(10, logits.shape[-1]), dim=-1).indices == targets[..., None]).any(dim=-1)
    return Evaluation(
        accuracy=float(correct.float().mean()),
        top10_accuracy=float(in_top10.float().mean()),
        per_position=correct.float().mean(dim=0).tolist(),
        guesses=top.indices,
        probabilities=top.values,
    )
