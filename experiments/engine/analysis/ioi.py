"""The indirect-object-identification (IOI) circuit of a model, head by head (Wang et al. 2022).

`analyse_ioi(model, batch)` measures, on IOI prompts (`experiments.engine.ioi`):

- the logit difference IO − S at END and the accuracy, on the clean and on the ABC prompts;
- each head's direct logit attribution (DLA) at END: its output z·W_O, centred and divided by the final
  LayerNorm's scale cached on the clean run (the way TransformerLens apportions the residual stream), read
  against the final norm's weight times W_U[:, IO] − W_U[:, S];
- each head's activation-patching effect (`analysis.patching.head_patching`): its output from the ABC prompts
  patched into the clean run, patched − clean logit difference; negative = the head carries the IOI signal;
- where each head looks, on the clean prompts: from END to IO, to S1 + S2, to S2; from S2+1 to S1+1
  (induction), from S2 to S1 (duplicate token), from each position to the one before (previous token).

Role candidates, after Wang et al.'s classes (their path patching is replaced by these attention and
attribution rules; each threshold is a constant below). "Significant" patching means an effect of at most
−PATCH_FRACTION of the clean − ABC gap (the head alone moves the logit difference at least that far towards
the ABC value); "large" DLA means |DLA| at least DLA_FRACTION of the largest |DLA| of any head and at least
DLA_MIN logits.

- name_mover: attends END -> IO at least ATTENTION_MIN and more than END -> S1 + S2 by ATTENTION_MARGIN,
  large positive DLA, significant patching effect.
- negative_name_mover: attends END -> IO as a name mover does, large negative DLA (it writes against the
  name it reads).
- s_inhibition: in a layer before the latest name mover's (before the last layer when there is none), not a
  name mover, significant patching effect, and attends END -> S2 at least ATTENTION_MIN and more than END ->
  IO (it tells later heads which name not to copy).
- induction: attends S2+1 -> S1+1 at least ROLE_ATTENTION_MIN.
- duplicate_token: attends S2 -> S1 at least ROLE_ATTENTION_MIN.
- previous_token: attends each position -> the one before at least ROLE_ATTENTION_MIN on average (positions
  1..END of each prompt).

A head can hold several roles (a previous-token head may also be an induction candidate). On GPT-2 small
Wang et al. report a logit difference of 3.55, name movers 9.9, 9.6 and 10.0, negative name movers 10.7 and
11.10, S-inhibition heads 7.3, 7.9, 8.6, 8.10, induction 5.5 and 6.9, duplicate-token 0.1 and 3.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import torch
from jaxtyping import Float
from torch import Tensor

from experiments.engine.analysis.patching import head_patching
from experiments.engine.ioi import IOIBatch, end_logits, logit_difference

ATTENTION_MIN = 0.2  # END -> IO (name movers) or END -> S2 (S-inhibition): at least this share of attention
ATTENTION_MARGIN = 0.1  # ... and this much more than to the other name(s)
ROLE_ATTENTION_MIN = 0.3  # induction, duplicate-token, previous-token: mean attention to the role's key
PATCH_FRACTION = 0.05  # significant patching: effect <= -5% of the clean − ABC logit-difference gap
DLA_FRACTION = 0.1  # large DLA: |DLA| >= 10% of the largest |DLA| of any head ...
DLA_MIN = 0.05  # ... and >= this many logits
ROLES = ("name_mover", "negative_name_mover", "s_inhibition", "induction", "duplicate_token", "previous_token")
RULES = {
    "name_mover": f"attends END -> IO >= {ATTENTION_MIN} and by >= {ATTENTION_MARGIN} more than END -> S1+S2; "
    f"DLA >= {DLA_FRACTION:.0%} of the largest |DLA| (and >= {DLA_MIN}); patching effect <= "
    f"-{PATCH_FRACTION:.0%} of the clean - ABC gap",
    "negative_name_mover": f"attends END -> IO as a name mover does; DLA <= -{DLA_FRACTION:.0%} of the largest "
    f"|DLA| (and <= -{DLA_MIN})",
    "s_inhibition": "in a layer before the latest name mover's (before the last layer without one), not a name "
    f"mover; patching effect <= -{PATCH_FRACTION:.0%} of the gap; attends END -> S2 >= {ATTENTION_MIN} and more "
    "than END -> IO",
    "induction": f"attends S2+1 -> S1+1 >= {ROLE_ATTENTION_MIN}",
    "duplicate_token": f"attends S2 -> S1 >= {ROLE_ATTENTION_MIN}",
    "previous_token": f"attends each position -> the one before >= {ROLE_ATTENTION_MIN} on average",
}
HeadList = list[tuple[int, int]]


@dataclass
class IOIAnalysis:
    n_layers: int
    n_heads: int
    logit_diff: float  # mean IO − S logit difference at END, clean prompts
    accuracy: float  # share of prompts with IO logit > S logit
    corrupt_logit_diff: float  # the same on the ABC prompts
    dla: Float[Tensor, "layer head"]  # direct logit attribution to W_U[IO] − W_U[S] at END (clean run)
    patching: Float[Tensor, "layer head"]  # patched (from ABC) − clean logit difference
    attn_io: Float[Tensor, "layer head"]  # mean attention END -> IO
    attn_s: Float[Tensor, "layer head"]  # mean attention END -> S1 and S2, summed
    roles: dict[str, HeadList]  # ROLES -> the heads that meet the role's rule
    corrupt_accuracy: float = float("nan")
    attn_s2: Tensor | None = None  # [layer, head] mean attention END -> S2
    role_scores: dict[str, Tensor] = field(default_factory=dict)  # induction, duplicate_token, previous_token

    @property
    def gap(self) -> float:
        """Clean − ABC logit difference: what patching every head at once from ABC could take away."""
        return self.logit_diff - self.corrupt_logit_diff

    def top_heads(self, k: int) -> HeadList:
        """The k heads with the largest |patching effect|, largest first."""
        order = self.patching.flatten().abs().argsort(descending=True, stable=True)[:k].tolist()
        return [divmod(i, self.n_heads) for i in order]

    def roles_of(self, layer: int, head: int) -> list[str]:
        return [role for role in ROLES if (layer, head) in self.roles.get(role, [])]

    def summary(self) -> dict:
        """Everything as JSON-able numbers and lists ([layer][head] for the per-head tables)."""

        def table(values: Tensor | None) -> list[list[float]] | None:
            return None if values is None else [[round(float(v), 5) for v in row] for row in values]

        return {
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "logit_diff": self.logit_diff,
            "accuracy": self.accuracy,
            "corrupt_logit_diff": self.corrupt_logit_diff,
            "corrupt_accuracy": self.corrupt_accuracy,
            "dla": table(self.dla),
            "patching": table(self.patching),
            "attn_io": table(self.attn_io),
            "attn_s": table(self.attn_s),
            "attn_s2": table(self.attn_s2),
            "role_scores": {name: table(values) for name, values in self.role_scores.items()},
            "roles": {role: [list(h) for h in self.roles.get(role, [])] for role in ROLES},
            "rules": RULES,
            "top_heads": [list(h) for h in self.top_heads(min(10, self.n_layers * self.n_heads))],
        }


def _ioi_metric(batch: IOIBatch):
    def metric(logits: Tensor) -> Tensor:
        return logit_difference(end_logits(logits, batch), batch)

    return metric


def _readout_direction(model, batch: IOIBatch) -> Float[Tensor, "batch d_model"]:
    """W_U[:, IO] − W_U[:, S] per prompt, with the final norm's weight folded in."""
    w_u = model.W_U.detach().float()
    weight = next((p for name, p in model.ln_final.named_parameters() if name.endswith("weight")), None)
    direction = w_u[:, batch.io] - w_u[:, batch.s]  # [d_model, batch]
    if weight is not None:
        direction = direction * weight.detach().float()[:, None]
    return direction.T


@torch.no_grad()
def analyse_ioi(model, batch: IOIBatch) -> IOIAnalysis:
    """Performance, per-head DLA, patching and attention on IOI prompts, and the role candidates."""
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    norm = getattr(model.cfg, "normalization_type", None)
    wanted = {f"blocks.{layer}.attn.{hook}" for layer in range(n_layers) for hook in ("hook_z", "hook_pattern")}
    wanted.add("ln_final.hook_scale")
    logits, cache = model.run_with_cache(batch.tokens, names_filter=lambda name: name in wanted)
    clean = logit_difference(end_logits(logits, batch), batch).float()
    corrupt = logit_difference(end_logits(model(batch.corrupt), batch), batch).float()
    rows = torch.arange(len(batch), device=batch.tokens.device)

    # DLA: each head's write at END, as the final norm sees it (centred for LayerNorm, divided by its scale).
    direction = _readout_direction(model, batch)  # [batch, d_model]
    scale = cache["ln_final.hook_scale"][rows, batch.end].float() if "ln_final.hook_scale" in cache else None
    dla = torch.empty(n_layers, n_heads)
    for layer in range(n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"][rows, batch.end].float()  # [batch, head, d_head]
        out = torch.einsum("bhd,hdm->bhm", z, model.W_O[layer].detach().float())  # [batch, head, d_model]
        if norm in ("LN", "LNPre"):
            out = out - out.mean(dim=-1, keepdim=True)
        if scale is not None:
            out = out / scale[:, None, :]
        dla[layer] = torch.einsum("bhm,bm->h", out, direction).cpu() / len(batch)

    patterns = torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"].float() for layer in range(n_layers)])
    del cache
    scores = attention_scores(patterns, batch)  # each [layer, head]
    patching = head_patching(model, batch.tokens, batch.corrupt, _ioi_metric(batch))
    analysis = IOIAnalysis(
        n_layers=n_layers,
        n_heads=n_heads,
        logit_diff=float(clean.mean()),
        accuracy=float((clean > 0).float().mean()),
        corrupt_logit_diff=float(corrupt.mean()),
        corrupt_accuracy=float((corrupt > 0).float().mean()),
        dla=dla,
        patching=patching.effects,
        attn_io=scores["end_io"],
        attn_s=scores["end_s1"] + scores["end_s2"],
        attn_s2=scores["end_s2"],
        roles={},
        role_scores={name: scores[name] for name in ("induction", "duplicate_token", "previous_token")},
    )
    analysis.roles = assign_roles(analysis)
    return analysis


def attention_scores(patterns: Float[Tensor, "layer batch head q k"], batch: IOIBatch) -> dict[str, Tensor]:
    """Mean attention [layer, head] from the query to the key each score names, over the prompts."""
    patterns = patterns.cpu()
    rows = torch.arange(len(batch))
    end, io, s1, s2 = (t.cpu() for t in (batch.end, batch.io_pos, batch.s1_pos, batch.s2_pos))

    def mean_attention(query: Tensor, key: Tensor) -> Tensor:
        # The indexed batch dimension comes first ([batch, layer, head]): the index tensors are not adjacent.
        return patterns[:, rows, :, query, key].mean(dim=0)

    # Previous token: positions 1..END of each prompt, each attending to the one before.
    positions = torch.arange(1, patterns.shape[-1])
    previous = patterns[..., positions, positions - 1]  # [layer, batch, head, pos-1]
    real = (positions[None, :] <= end[:, None]).float()  # [batch, pos-1]
    per_prompt = (previous * real[None, :, None, :]).sum(dim=-1) / real.sum(dim=-1)[None, :, None]
    return {
        "end_io": mean_attention(end, io),
        "end_s1": mean_attention(end, s1),
        "end_s2": mean_attention(end, s2),
        "induction": mean_attention(s2 + 1, s1 + 1),
        "duplicate_token": mean_attention(s2, s1),
        "previous_token": per_prompt.mean(dim=1),
    }


def assign_roles(analysis: IOIAnalysis) -> dict[str, HeadList]:
    """The role candidates by the module's rules (see RULES)."""
    significant = analysis.patching <= -PATCH_FRACTION * abs(analysis.gap)
    if analysis.gap <= 0:  # the model does not tell IO from S better on clean prompts: nothing to patch away
        significant = torch.zeros_like(significant)
    large = analysis.dla.abs() >= max(DLA_FRACTION * float(analysis.dla.abs().max()), DLA_MIN)
    reads_io = (analysis.attn_io >= ATTENTION_MIN) & (analysis.attn_io >= analysis.attn_s + ATTENTION_MARGIN)
    name_mover = reads_io & large & (analysis.dla > 0) & significant
    negative = reads_io & large & (analysis.dla < 0)
    mover_layers = [layer for layer, _ in _heads(name_mover)]
    before = max(mover_layers) if mover_layers else analysis.n_layers - 1
    earlier = (torch.arange(analysis.n_layers) < before)[:, None].expand_as(significant)
    s2 = analysis.attn_s2 if analysis.attn_s2 is not None else analysis.attn_s
    s_inhibition = earlier & ~name_mover & significant & (s2 >= ATTENTION_MIN) & (s2 > analysis.attn_io)
    roles = {"name_mover": name_mover, "negative_name_mover": negative, "s_inhibition": s_inhibition}
    for name in ("induction", "duplicate_token", "previous_token"):
        roles[name] = analysis.role_scores[name] >= ROLE_ATTENTION_MIN
    return {role: _heads(roles[role]) for role in ROLES}


def _heads(mask: Tensor) -> HeadList:
    return [tuple(pair) for pair in mask.nonzero().tolist()]


# -- mean ablation ------------------------------------------------------------------------------------------------


@torch.no_grad()
def mean_ablated_logit_diffs(model, batch: IOIBatch, head_sets: list[HeadList], *, chunk: int = 16) -> Tensor:
    """The clean mean logit difference with each set of heads mean-ablated, one value per set.

    A head is mean-ablated by replacing its output (hook_z) at every position with its mean over the ABC
    prompts of the same template at that position (Wang et al.'s ablation over the ABC distribution): what the
    head writes without knowing which name repeats. `chunk` sets are run per forward pass.
    """
    n_layers = model.cfg.n_layers
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(n_layers)]
    _, cache = model.run_with_cache(batch.corrupt, names_filter=lambda name: name in names)
    means = {}
    for layer, name in enumerate(names):
        z = cache[name]  # [batch, pos, head, d_head]
        mean = torch.empty_like(z)
        for template in batch.template.unique():
            same = batch.template == template
            mean[same] = z[same].mean(dim=0, keepdim=True)
        means[layer] = mean
    del cache
    metric = _ioi_metric(batch)
    results = []
    size = len(batch)
    for start in range(0, len(head_sets), chunk):
        sets = head_sets[start : start + chunk]
        stacked = batch.tokens.repeat(len(sets), 1)
        hooks = []
        for layer, name in enumerate(names):
            ablate = [(i, h) for i, heads in enumerate(sets) for lay, h in heads if lay == layer]
            if not ablate:
                continue

            def hook(z: Tensor, hook, layer: int = layer, ablate: list = ablate) -> Tensor:
                z = z.clone()
                for i, head in ablate:
                    z[i * size : (i + 1) * size, :, head] = means[layer][:, :, head]
                return z

            hooks.append((name, hook))
        logits = model.run_with_hooks(stacked, fwd_hooks=hooks)
        for i in range(len(sets)):
            results.append(float(metric(logits[i * size : (i + 1) * size]).mean()))
    return torch.tensor(results)


def all_head_sets(n_layers: int, n_heads: int, size: int) -> list[HeadList]:
    """Every set of `size` heads, in a fixed order."""
    heads = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    return [list(c) for c in combinations(heads, size)]
