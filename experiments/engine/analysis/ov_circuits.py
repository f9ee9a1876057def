"""Head families read from the weights alone: OV copying (Elhage et al. 2021) and successor heads (Gould et al. 2023).

Both read a head's full OV circuit, the direct path from a token's embedding,
through the head's value and output matrices, to the unembedding:

    OV_full = W_E' W_V W_O W_U'    [vocab, vocab]

where W_E' is the embedding as the head reads it (centred over d_model when
the model uses LayerNorm, times the weight of the block's first norm) and W_U'
the unembedding times the final norm's weight. Row i is what the head writes to
the logits when it attends to token i. Positional embeddings, the norms'
per-token scale and earlier layers (an MLP0 that acts as an extended embedding
in GPT-2) are left out, as in Elhage et al.

- OV copying: the eigenvalue positivity of OV_full, sum(λ) / sum(|λ|), in
  [-1, 1]. A head that copies the token it attends to (raises that token's
  logit) has mostly positive eigenvalues and scores near 1; one that suppresses
  it (a negative copying head) near -1; a random OV circuit near 0 (standard
  deviation about 0.2 with d_head 8, 0.1 with d_head 16). OV_full = A B with A = W_E' W_V [vocab, d_head] and B = W_O
  W_U' [d_head, vocab], and A B has the same nonzero eigenvalues as the
  d_head x d_head matrix B A = W_O (W_U' W_E') W_V. So the score is exact over
  the whole vocabulary: one [d_model, vocab] x [vocab, d_model] product per
  model, then a d_head x d_head eigenproblem per head; no sampling of tokens.
- Successor: on ordinal sequences whose members are each one token in the
  model's tokenizer (numerals 1-20, number words, ordinal words, days, months,
  letters; with and without a leading space), the share of ordinal tokens
  whose top output, among all the ordinal tokens of the same spelling, is its
  successor ("3" -> "4", "Monday" -> "Tuesday"). A head that copies scores 0 (its
  top output is the token itself); chance is about 1 / (number of candidates).
  Models without a tokenizer (native models, checkpoints of models trained
  here on synthetic tokens) have no ordinal tokens: successor heads are not
  applicable there, and no score is reported rather than a meaningless one.
  As in Gould et al., heads after the first layer read an "effective
  embedding": the token's embedding plus what block 0's MLP writes for it
  (layer 0's attention left out), since GPT-2's MLP0 acts as part of the
  embedding; layer-0 heads, and models without MLPs, read W_E itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

# A head is OV-copying when its eigenvalues are mostly positive: 0.7 is far above a random circuit (standard deviation
# 0.1-0.2; untrained default models stay within 0.23) and below the ~0.9+ of trained induction heads.
# A successor head maps at least half its ordinal tokens to their successors (chance is 1/candidates, < 0.05 on GPT-2).
OV_THRESHOLDS = {"ov_copying": 0.7, "successor": 0.5}

ORDINAL_SEQUENCES = {
    "numerals": [str(i) for i in range(1, 21)],
    "number words": "one two three four five six seven eight nine ten eleven twelve".split(),
    "ordinal words": "first second third fourth fifth sixth seventh eighth ninth tenth".split(),
    "days": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split(),
    "months": "January February March April May June July August September October November December".split(),
    "letters": [chr(c) for c in range(ord("A"), ord("Z") + 1)],
}
SPELLINGS = (" ", "")  # with a leading space (how words follow others in BPE vocabularies), and without
MIN_SUCCESSOR_PAIRS = 8  # fewer one-token (token, successor) pairs than this: not applicable


def eigenvalue_positivity(
    w_v: Float[Tensor, "*heads d_model d_head"],
    w_o: Float[Tensor, "*heads d_head d_model"],
    embed: Float[Tensor, "vocab d_model"],
    readout: Float[Tensor, "d_model vocab"],
) -> Float[Tensor, "*heads"]:
    """sum(λ) / sum(|λ|) of embed @ w_v @ w_o @ readout, per head, from the small matrix w_o (readout embed) w_v."""
    through = readout @ embed  # [d_model, d_model]: a residual direction read back into the embedding space
    small = w_o @ through @ w_v  # [..., d_head, d_head]: the full circuit's nonzero eigenvalues, cheaply
    eigenvalues = torch.linalg.eigvals(small.double())
    total = eigenvalues.abs().sum(dim=-1)
    return (eigenvalues.sum(dim=-1).real / total.clamp_min(1e-30)).float()


def successor_score(
    w_v: Float[Tensor, "*heads d_model d_head"],
    w_o: Float[Tensor, "*heads d_head d_model"],
    embed: Float[Tensor, "n d_model"],
    readout: Float[Tensor, "d_model n"],
    successor: list[int],
) -> Float[Tensor, "*heads"]:
    """Share of rows i with successor[i] >= 0 whose top OV output among the n candidates is that successor.

    `embed` and `readout` hold the same n ordinal tokens (rows and columns); successor[i] is the index of token i's
    successor among them, or -1 when it has none (the last of a sequence)."""
    outputs = embed @ w_v @ w_o @ readout  # [..., n, n]: what attending to token i writes to candidate j's logit
    target = torch.tensor(successor)
    queried = target >= 0
    top = outputs[..., queried, :].argmax(dim=-1)  # [..., queried]
    return (top == target[queried]).float().mean(dim=-1)


@dataclass(frozen=True)
class OrdinalTokens:
    """One-token ordinal sequence members of a tokenizer: ids, successor indices, and how they were found."""

    ids: list[int]
    successor: list[int]  # index into ids of each token's successor, -1 for none
    sequences: list[str]  # "months (with a leading space)", ...

    @property
    def n_pairs(self) -> int:
        return sum(s >= 0 for s in self.successor)


def _one_token(tokenizer, text: str) -> int | None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1 or ids[0] == getattr(tokenizer, "unk_token_id", None):
        return None
    return ids[0] if tokenizer.decode(ids) == text else None


def ordinal_tokens(tokenizer) -> dict[str, OrdinalTokens]:
    """Per spelling (" " or ""), the one-token members of each ordinal sequence, and who succeeds whom.

    A member's successor is the next member of its sequence, when that is one token too."""
    found = {}
    for spelling in SPELLINGS:
        ids, successor, names = [], [], []
        for name, members in ORDINAL_SEQUENCES.items():
            member_ids = [_one_token(tokenizer, spelling + member) for member in members]
            if sum(i is not None for i in member_ids) < 2:
                continue
            start = len(ids)
            kept = [i for i in member_ids if i is not None]
            for position, token in enumerate(member_ids):
                if token is None:
                    continue
                after = member_ids[position + 1] if position + 1 < len(member_ids) else None
                ids.append(token)
                successor.append(-1 if after is None else start + kept.index(after))
            names.append(f"{name} ({'with a leading space' if spelling else 'no leading space'})")
        found[spelling] = OrdinalTokens(ids=ids, successor=successor, sequences=names)
    return found


def _norm_weight(module) -> Tensor | None:
    return next((p for name, p in module.named_parameters() if name.endswith("weight")), None)


def _centred(model, rows: Tensor) -> Tensor:
    """Rows of the residual stream as a LayerNorm reads them: centred over d_model (no change for RMSNorm)."""
    if getattr(model.cfg, "normalization_type", None) in ("LN", "LNPre"):
        return rows - rows.mean(dim=-1, keepdim=True)
    return rows


def _embedding(model) -> Tensor:
    """W_E, centred over d_model when the model's norms are LayerNorms (they remove the mean first)."""
    return _centred(model, model.W_E.detach().float())


def _effective_embedding(model, ids: list[int]) -> Float[Tensor, "n d_model"]:
    """W_E of these tokens plus what block 0's MLP writes for them (Gould et al.); W_E alone without an MLP."""
    raw = model.W_E.detach()[ids]
    block = model.blocks[0]
    if getattr(model.cfg, "attn_only", False) or not hasattr(block, "mlp") or not hasattr(block, "ln2"):
        return raw.float()
    return (raw + block.mlp(block.ln2(raw[None]))[0]).detach().float()


def _readout(model) -> Tensor:
    """W_U [d_model, vocab] with the final norm's weight folded in."""
    w_u = model.W_U.detach().float()
    weight = _norm_weight(model.ln_final)
    return w_u if weight is None else w_u * weight.detach().float()[:, None]


def _ln1_weights(model) -> Float[Tensor, "layer d_model"]:
    """Each block's first norm weight (ones where a block has none)."""
    rows = []
    for block in model.blocks:
        weight = _norm_weight(block.ln1) if hasattr(block, "ln1") else None
        rows.append(torch.ones(model.cfg.d_model) if weight is None else weight.detach().float().cpu())
    return torch.stack(rows)


@torch.no_grad()
def ov_copying_scores(model) -> Float[Tensor, "layer head"]:
    """Eigenvalue positivity of every head's full OV circuit (see the module doc), exact over the whole vocabulary."""
    embed, readout = _embedding(model), _readout(model)
    through = (readout @ embed).cpu()  # [d_model, d_model], the one large product
    w_v, w_o = model.W_V.detach().float().cpu(), model.W_O.detach().float().cpu()
    ln1 = _ln1_weights(model)
    # Folding ln1's weight into the embedding is scaling the columns of `through`: pass the identity as `embed`.
    scores = [
        eigenvalue_positivity(w_v[layer], w_o[layer], torch.diag(ln1[layer]), through)
        for layer in range(model.cfg.n_layers)
    ]
    return torch.stack(scores)


@dataclass(frozen=True)
class SuccessorScores:
    """Successor scores per head, or why there are none."""

    scores: Float[Tensor, "layer head"] | None
    why_not: str | None = None
    n_pairs: int = 0
    sequences: tuple[str, ...] = ()


@torch.no_grad()
def successor_scores(model) -> SuccessorScores:
    """Successor score of every head, averaged over the spellings with enough one-token ordinal pairs, weighted
    by their pairs; not applicable to a model without a tokenizer or without enough such pairs."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return SuccessorScores(None, "the model has no tokenizer (its tokens have no ordinal meaning)")
    usable = [o for o in ordinal_tokens(tokenizer).values() if o.n_pairs >= MIN_SUCCESSOR_PAIRS]
    if not usable:
        return SuccessorScores(
            None, f"its tokenizer has fewer than {MIN_SUCCESSOR_PAIRS} one-token ordinal pairs (1 -> 2, Monday -> ...)"
        )
    readout = _readout(model).cpu()
    w_v, w_o = model.W_V.detach().float().cpu(), model.W_O.detach().float().cpu()
    ln1 = _ln1_weights(model)
    total = sum(o.n_pairs for o in usable)
    scores = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for ordinal in usable:
        direct = _centred(model, model.W_E.detach().float()[ordinal.ids]).cpu()
        effective = _centred(model, _effective_embedding(model, ordinal.ids)).cpu()
        for layer in range(model.cfg.n_layers):
            rows = (direct if layer == 0 else effective) * ln1[layer]
            share = successor_score(w_v[layer], w_o[layer], rows, readout[:, ordinal.ids], ordinal.successor)
            scores[layer] += share * ordinal.n_pairs / total
    names = tuple(name for o in usable for name in o.sequences)
    return SuccessorScores(scores, None, total, names)
