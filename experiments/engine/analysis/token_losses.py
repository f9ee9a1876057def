"""Per-token losses of models on the same tokens: the classes the tokens fall in, the contexts where two models
differ most, and which step of a series changed them most (the `model_diff` kind).

Losses are aligned the way the training loop's are: `loss[:, i]` is the loss of predicting token i+1 from the
prefix up to i, so a sequence of n tokens has n-1 losses and the predicted token sits at position i+1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

Decode = Callable[[list[int]], str]


def per_token_losses(model, tokens: Int[Tensor, "batch pos"], *, batch_size: int = 64) -> Float[Tensor, "batch pred"]:
    """Next-token loss of every token after the first, computed `batch_size` sequences at a time."""
    parts = []
    with torch.no_grad():
        for chunk in tokens.split(batch_size):
            logits = model(chunk)[:, :-1].float()
            parts.append(F.cross_entropy(logits.transpose(1, 2), chunk[:, 1:], reduction="none").cpu())
    return torch.cat(parts)


@dataclass(frozen=True)
class TokenClasses:
    """Which class each predicted token belongs to: `labels[b, i]` indexes `names` for the loss `loss[b, i]`."""

    names: tuple[str, ...]
    labels: Int[Tensor, "batch pred"]
    rule: str  # how the classes were drawn, in words, for the summary

    def means(self, losses: Float[Tensor, "batch pred"]) -> dict[str, float]:
        """Mean loss of each class (classes with no token are left out)."""
        return {
            name: float(losses[self.labels == i].mean())
            for i, name in enumerate(self.names)
            if (self.labels == i).any()
        }

    def shares(self, flat_index: Tensor) -> dict[str, float]:
        """Share of the tokens at these flat positions (indices into `labels.flatten()`) in each class."""
        picked = self.labels.flatten()[flat_index]
        return {name: float((picked == i).float().mean()) for i, name in enumerate(self.names)}

    def name_at(self, flat_index: int) -> str:
        return self.names[int(self.labels.flatten()[flat_index])]


def repeated_classes(n_sequences: int, half: int) -> TokenClasses:
    """BOS + `half` random tokens repeated once: the first half (nothing to copy from), the first repeated token
    (it follows the last random token, so nothing predicts it either) and the rest of the second half (an
    induction head predicts them)."""
    labels = torch.full((n_sequences, 2 * half), 2, dtype=torch.long)
    labels[:, :half] = 0
    labels[:, half] = 1
    return TokenClasses(
        ("first_half", "repeat_start", "second_half"),
        labels,
        "first_half: tokens 1..h; repeat_start: token h+1, the first of the repeat (unpredictable); second_half: "
        "tokens h+2..2h, which copying the first half predicts.",
    )


def copied_classes(predictable: Tensor) -> TokenClasses:
    """induction_training sequences: the copied tokens only induction predicts, and the rest."""
    labels = torch.where(predictable[:, 1:], 0, 1).long()
    return TokenClasses(
        ("copied", "not_copied"), labels, "copied: tokens of the copied segment after its first (induction predicts "
        "them); not_copied: every other token."
    )  # fmt: skip


def frequency_classes(tokens: Int[Tensor, "batch pos"], corpus: np.ndarray) -> TokenClasses:
    """Text: each predicted token by how often its id occurs in the corpus, cut at the terciles of the corpus'
    occurrences (so each bucket holds about a third of the running text)."""
    counts = np.bincount(corpus, minlength=int(tokens.max()) + 1)
    low, high = np.quantile(counts[corpus], [1 / 3, 2 / 3])
    frequency = torch.from_numpy(counts)[tokens[:, 1:].cpu()]
    labels = torch.where(frequency >= high, 0, torch.where(frequency >= low, 1, 2)).long()
    return TokenClasses(
        ("frequent", "middle", "rare"), labels,
        f"by the corpus frequency of the token's id: frequent >= {int(high)} occurrences, middle >= {int(low)}, "
        "rare below (the terciles of the corpus' running text).",
    )  # fmt: skip


def top_contexts(
    tokens: Int[Tensor, "batch pos"],
    before: Float[Tensor, "batch pred"],
    after: Float[Tensor, "batch pred"],
    classes: TokenClasses,
    *,
    k: int,
    window: int,
    drops: bool,
    decode: Decode | None = None,
) -> tuple[Tensor, list[dict]]:
    """The `k` tokens whose loss fell most from `before` to `after` (`drops`), or rose most: their flat indices
    and, for each, the token, its position, `window` tokens either side and both losses."""
    difference = (after - before).flatten()
    k = min(k, difference.numel())
    flat = torch.topk(-difference if drops else difference, k).indices
    n_pred = before.shape[1]
    rows = []
    for index in flat.tolist():
        sequence, i = divmod(index, n_pred)
        position = i + 1  # the predicted token
        start = max(0, position - window)
        context = tokens[sequence, start : position + window + 1].tolist()
        token = int(tokens[sequence, position])
        row = {
            "sequence": sequence, "position": position, "token": token, "class": classes.name_at(index),
            "window_start": start, "window": context, "loss_before": round(float(before.flatten()[index]), 4),
            "loss_after": round(float(after.flatten()[index]), 4), "difference": round(float(difference[index]), 4),
        }  # fmt: skip
        if decode is not None:
            row["text"] = decode([token])
            row["window_text"] = [decode([t]) for t in context]
        rows.append(row)
    return flat, rows


def consecutive_changes(losses: Float[Tensor, "model batch pred"]) -> Float[Tensor, " pair"]:
    """Mean absolute change of the per-token loss between each model and the next."""
    return (losses[1:] - losses[:-1]).abs().flatten(1).mean(dim=1)
