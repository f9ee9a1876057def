"""Head scores on repeated random tokens: the fixed-offset types and the generalised families.

Measured on repeated random tokens (BOS, r_1..r_h, r_1..r_h), as in Olsson et
al. 2022 and TransformerLens' head detector. For a query at position q:

- previous-token score: attention to q-1, averaged over every query after BOS;
- duplicate-token score: attention to q-h (the earlier copy of the current
  token), averaged over queries in the second half;
- induction score: attention to q-h+1 (the token that followed the earlier
  copy), averaged over queries in the second half.

Each is the mean attention weight on the key a perfect head of that type
attends to, so it lies in [0, 1]; a uniform head over ~h keys scores ~1/h.

Those three assume the textbook circuit. A model can copy in context with
other offsets: a layer-0 head that moves the token two or three back, and a
layer-1 head that matches on it and so attends to q-h+3 instead of q-h+1.
Two generalised families see such circuits:

- copying score: for each query of the repeated half, what the head reads
  from the earlier copy (its attention there times what each key sends
  through its OV circuit), read straight out through the unembedding (direct
  logit attribution): does it raise the correct next token more than any other
  token of the sequence? The score is the share of queries where it does, so it
  lies in [0, 1], is about 1/h for a head that reads the copy blindly, near 1
  for a textbook induction head, and sees a circuit whose attention is spread
  over several keys as well as a sharp one. `copying_offset` is where, relative
  to the earlier copy of the current token, the keys that push the answer sit
  (1 for the textbook head, 3 for the circuit above). The same score for all of
  a layer's heads together (`layer_copying`) shows a circuit shared by heads.
- look-back score: the largest mean attention to q-k for k in 1..`MAX_LOOK_BACK`,
  with that k (1 is the previous-token head), after weighting each key by the
  size of what it sends (a head that parks attention on a near-zero BOS value
  still moves the token it attends to).

A head is given a type or a family when its score reaches its threshold; a
head may have several.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor

# 0.4 means 40% of the head's attention, averaged over the measured queries, goes to that one key (for
# copying: what the head reads from the earlier copy names the answer at 40% of the queries): far above the
# ~1/h a diffuse head gives.
THRESHOLDS = {"induction": 0.4, "previous_token": 0.4, "duplicate_token": 0.4, "copying": 0.4, "look_back": 0.4}
FAMILIES = ("copying", "look_back")
MAX_LOOK_BACK = 4
OFFSET_OF = {"copying": "copying_offset", "look_back": "look_back_offset"}


@dataclass(frozen=True)
class HeadScores:
    """Scores per head ([layer, head] tensors) by type name, and the offsets of the generalised families."""

    scores: dict[str, Float[Tensor, "layer head"]]
    offsets: dict[str, Int[Tensor, "layer head"]] = field(default_factory=dict)
    layer_copying: Float[Tensor, " layer"] | None = None  # each layer's heads together (None when not measured)

    @property
    def induction(self) -> Tensor:
        return self.scores["induction"]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.induction.shape)

    def by_type(self) -> dict[str, Tensor]:
        return dict(self.scores)

    def types_of(self, layer: int, head: int) -> list[str]:
        return [name for name, s in self.scores.items() if s[layer, head] >= THRESHOLDS[name]]

    def heads_of_type(self, name: str) -> list[tuple[int, int]]:
        return [tuple(idx) for idx in (self.scores[name] >= THRESHOLDS[name]).nonzero().tolist()]

    def offset(self, name: str, layer: int, head: int) -> int | None:
        """The family's offset for a head (None for fixed-offset types)."""
        values = self.offsets.get(OFFSET_OF.get(name, ""))
        return None if values is None else int(values[layer, head])

    def circuit(self) -> dict:
        """The copying and look-back heads with their offsets: the in-context copying circuit, whatever its offsets;
        and each layer's heads' copying score taken together (a circuit spread over several heads shows there)."""
        layers = [] if self.layer_copying is None else [round(float(v), 4) for v in self.layer_copying]
        return {"layer_copying": layers} | {
            family: [
                {"layer": layer, "head": head, "score": round(float(self.scores[family][layer, head]), 4),
                 "offset": self.offset(family, layer, head)}
                for layer, head in sorted(self.heads_of_type(family), key=lambda lh: -float(self.scores[family][lh]))
            ]
            for family in FAMILIES
        }  # fmt: skip

    def head_row(self, layer: int, head: int) -> dict:
        """One head's scores, offsets and types, as the run summaries list them."""
        row = {"layer": layer, "head": head}
        row.update({name: round(float(s[layer, head]), 4) for name, s in self.scores.items()})
        row.update({name: int(o[layer, head]) for name, o in self.offsets.items()})
        row["types"] = self.types_of(layer, head)
        return row

    def tensors(self) -> dict[str, Tensor]:
        """Everything, as the `head_scores` artifact stores it."""
        saved = {**{k: v.contiguous() for k, v in self.scores.items()},
                 **{k: v.to(torch.int64).contiguous() for k, v in self.offsets.items()}}  # fmt: skip
        if self.layer_copying is not None:
            saved["layer_copying"] = self.layer_copying.contiguous()
        return saved

    @classmethod
    def from_tensors(cls, saved: dict[str, Tensor]) -> HeadScores:
        return cls(
            scores={k: v for k, v in saved.items() if k in THRESHOLDS},
            offsets={k: v for k, v in saved.items() if k in OFFSET_OF.values()},
            layer_copying=saved.get("layer_copying"),
        )


def copies_in_context(types: list[str]) -> bool:
    """Whether a head's types make it part of in-context copying as the reader: induction, or copying at any offset."""
    return "induction" in types or "copying" in types


def fixed_offset_scores(patterns: Float[Tensor, "layer batch head q k"], half: int) -> dict[str, Tensor]:
    """The textbook scores from attention patterns on BOS + `half` random tokens repeated once."""
    length = patterns.shape[-1]
    queries = torch.arange(1, length)
    second = torch.arange(half + 1, length)
    return {
        "induction": patterns[..., second, second - half + 1].mean(dim=(1, 3)),
        "previous_token": patterns[..., queries, queries - 1].mean(dim=(1, 3)),
        "duplicate_token": patterns[..., second, second - half].mean(dim=(1, 3)),
    }


def look_back_scores(patterns: Float[Tensor, "layer batch head q k"]) -> tuple[Tensor, Tensor]:
    """(best mean attention to q-k over k in 1..MAX_LOOK_BACK, that k); BOS is never the key."""
    length = patterns.shape[-1]
    per_k = []
    for k in range(1, MAX_LOOK_BACK + 1):
        queries = torch.arange(k + 1, length)
        per_k.append(patterns[..., queries, queries - k].mean(dim=(1, 3)))
    stacked = torch.stack(per_k)  # [k, layer, head]
    best, index = stacked.max(dim=0)
    return best, index + 1


def copying_scores(
    patterns: Float[Tensor, "batch head q k"],
    values_out: Float[Tensor, "batch head k d_model"],
    tokens: Int[Tensor, "batch pos"],
    readout: Float[Tensor, "d_model vocab"],
) -> tuple[Tensor, Tensor, float]:
    """(copying score and offset of each head, the layer's copying score) on BOS + r + r; see the module doc.

    `values_out` is what each key sends through the head's OV circuit (centred as the final norm would).
    """
    half = (tokens.shape[1] - 1) // 2
    length = tokens.shape[1]
    queries = torch.arange(half + 1, length - 1)  # each predicts a token of the repeated half
    answers = tokens[:, queries + 1]  # [batch, q]
    candidates = readout[:, tokens[:, 1:]].permute(1, 0, 2)  # [batch, d_model, pos-1]: the sequence's tokens
    from_copy = patterns[:, :, queries, 1 : half + 1]  # [batch, head, q, k in the earlier copy]
    read = torch.einsum("bhqk,bhkm->bhqm", from_copy, values_out[:, :, 1 : half + 1])
    read = torch.cat([read, read.sum(dim=1, keepdim=True)], dim=1)  # and all the layer's heads together
    favoured = torch.gather(
        tokens[:, None, 1:].expand(-1, read.shape[1], -1), 2, (read @ candidates[:, None]).argmax(dim=-1)
    )  # [batch, head, q]: the sequence's token that what the head reads from the copy raises most
    names_answer = (favoured == answers[:, None, :]).float().mean(dim=(0, 2))
    score, layer_score = names_answer[:-1], float(names_answer[-1])
    # Where that help comes from: each key's push on the answer over the sequence's average token.
    answer_dirs = readout[:, answers].permute(1, 2, 0) - candidates.mean(dim=-1)[:, None, :]  # [batch, q, d_model]
    push = torch.einsum("bhkm,bqm->bhqk", values_out[:, :, 1 : half + 1], answer_dirs)
    helped = (from_copy * push.clamp_min(0)).sum(dim=0)  # [head, q, k]
    relative = torch.arange(1, half + 1)[None, :] - (queries - half)[:, None]  # [q, k]: key minus the twin
    relative = relative.to(helped.device)  # scatter_add_ wants its index and source on its own device (CUDA)
    by_offset = torch.zeros(helped.shape[0], 2 * length + 1, device=helped.device)
    by_offset.scatter_add_(1, (relative + length).flatten().expand(helped.shape[0], -1), helped.flatten(1))
    return score, by_offset.argmax(dim=-1) - length, layer_score


def value_weighted(
    patterns: Float[Tensor, "batch head q k"], value_norms: Float[Tensor, "batch head k"]
) -> Float[Tensor, "batch head q k"]:
    """Attention re-weighted by the size of what each key sends (Kobayashi et al. 2020), rows summing to 1.

    A head that parks most of its attention on BOS, whose value is near zero, and the rest on q-2 moves
    q-2's token all the same; by raw attention it would look idle.
    """
    sent = patterns * value_norms[:, :, None, :]
    return sent / sent.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def _readout(model) -> Tensor:
    """The unembedding [d_model, vocab] with the final norm's weight folded in."""
    w_u = model.W_U.detach().float()
    weight = next((p for name, p in model.ln_final.named_parameters() if name.endswith("weight")), None)
    return w_u if weight is None else w_u * weight.detach().float()[:, None]


@torch.no_grad()
def head_scores(model, tokens: Int[Tensor, "batch pos"]) -> HeadScores:
    """Every score of every head of a TransformerBridge on repeated random tokens (BOS + r + r)."""
    half = (tokens.shape[1] - 1) // 2
    n_layers = model.cfg.n_layers
    _, cache = model.run_with_cache(
        tokens, names_filter=lambda name: name.endswith(("attn.hook_pattern", "attn.hook_v"))
    )
    patterns = torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(n_layers)]).float().cpu()
    readout = _readout(model).to(tokens.device)
    centres = getattr(model.cfg, "normalization_type", None) in ("LN", "LNPre")
    copying, copying_offset, by_layer, weighted = [], [], [], []
    for layer in range(n_layers):
        values = cache[f"blocks.{layer}.attn.hook_v"].float()  # [batch, k, head, d_head]
        out = torch.einsum("bkhd,hdm->bhkm", values, model.W_O[layer].detach().float())
        if centres:
            out = out - out.mean(dim=-1, keepdim=True)
        layer_patterns = patterns[layer].to(out.device)
        score, offset, layer_score = copying_scores(layer_patterns, out, tokens, readout)
        by_layer.append(layer_score)
        copying.append(score.cpu())
        copying_offset.append(offset.cpu())
        weighted.append(value_weighted(layer_patterns, out.norm(dim=-1)).cpu())
    del cache
    look_back, look_back_offset = look_back_scores(torch.stack(weighted))
    return HeadScores(
        scores={**fixed_offset_scores(patterns, half), "copying": torch.stack(copying), "look_back": look_back},
        offsets={"copying_offset": torch.stack(copying_offset), "look_back_offset": look_back_offset},
        layer_copying=torch.tensor(by_layer),
    )
