"""Causal tracing (Meng et al. 2022, "Locating and Editing Factual Associations in GPT", ROME, section 2).

Run a prompt clean, then corrupted (its subject tokens changed), then corrupted again once per hidden state with
that one state restored to its clean value: the probability of the clean answer that comes back measures how much
of the fact flows through that state. The states are the residual stream after each layer, each layer's
attention output, its MLP output (models with MLPs), and each attention head's output (`hook_z`), at every
position.

Two corruptions:
- `noise`: Gaussian noise added to the subject tokens' embeddings (`hook_embed`), `samples` draws per prompt,
  the same draws for every restoration (as ROME does); ROME's scale is 3 x the standard deviation of the
  subject tokens' embeddings;
- `resample`: the prompt with another subject of the same token length (and another answer) in its place.

All restorations of one site are batched: each row of a forward pass is one (position, sample, prompt).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

COMPONENTS = {
    "resid": "blocks.{layer}.hook_resid_post",  # the residual stream after the layer (ROME's hidden state)
    "attn": "blocks.{layer}.hook_attn_out",
    "mlp": "blocks.{layer}.hook_mlp_out",
}
HEAD_HOOK = "blocks.{layer}.attn.hook_z"  # [batch, pos, head, d_head]
LOGIT_BUDGET = 60_000_000  # logits (rows x positions x vocabulary) per forward pass on a CPU; 16x on a GPU


@dataclass(frozen=True)
class Site:
    """One place to restore: a component of one layer, or one head (hook_z) of one layer."""

    component: str  # resid | attn | mlp | head
    layer: int
    head: int | None = None

    @property
    def hook(self) -> str:
        return (HEAD_HOOK if self.head is not None else COMPONENTS[self.component]).format(layer=self.layer)


@dataclass(frozen=True)
class Corruption:
    """A corrupted run of `n_prompts` prompts: row s * n_prompts + b is sample s of prompt b."""

    name: str
    tokens: Int[Tensor, "rows pos"]
    embed_noise: Float[Tensor, "rows pos d_model"] | None  # added to the token embeddings; None for resampling
    n_prompts: int

    @property
    def samples(self) -> int:
        return self.tokens.shape[0] // self.n_prompts


def noise_corruption(
    tokens: Int[Tensor, "batch pos"],
    subject: Bool[Tensor, "batch pos"],
    *,
    std: float,
    samples: int,
    generator: torch.Generator,
    d_model: int,
) -> Corruption:
    """Gaussian noise of standard deviation `std` on the subject tokens' embeddings, `samples` draws per prompt."""
    batch, pos = tokens.shape
    noise = torch.randn(samples, batch, pos, d_model, generator=generator) * std
    noise = noise * subject[None, :, :, None]  # only the subject's tokens
    return Corruption("noise", tokens.repeat(samples, 1), noise.view(samples * batch, pos, d_model), n_prompts=batch)


def resample_corruption(corrupt_tokens: Int[Tensor, "batch pos"]) -> Corruption:
    return Corruption("resample", corrupt_tokens, None, n_prompts=corrupt_tokens.shape[0])


def embedding_std(model, tokens: Int[Tensor, "batch pos"], subject: Bool[Tensor, "batch pos"]) -> float:
    """The standard deviation of the subject tokens' embeddings (every coordinate), ROME's unit of noise."""
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name == "hook_embed")
    return float(cache["hook_embed"][subject.to(cache["hook_embed"].device)].float().std())


@dataclass
class Trace:
    """What one corruption gave: probabilities of the clean answer, per prompt and per restored state."""

    clean: Float[Tensor, " batch"]
    corrupt: Float[Tensor, " batch"]  # mean over samples
    restored: dict[Site, Float[Tensor, "pos batch"]]  # mean over samples


def _answer_probs(logits: Tensor, last: Tensor, answer: Tensor) -> Tensor:
    rows = torch.arange(logits.shape[0], device=logits.device)
    return torch.softmax(logits[rows, last].float(), dim=-1)[rows, answer]


def trace(
    model,
    clean_tokens: Int[Tensor, "batch pos"],
    last: Int[Tensor, " batch"],
    answer: Int[Tensor, " batch"],
    corruption: Corruption,
    sites: list[Site],
    *,
    on_site=None,
) -> Trace:
    """Restore each site at every position up to the longest prompt's last token, under one corruption."""
    device = next(model.parameters()).device
    clean_tokens, last, answer = clean_tokens.to(device), last.to(device), answer.to(device)
    batch = clean_tokens.shape[0]
    hooks = {site.hook for site in sites}
    with torch.no_grad():
        logits, cache = model.run_with_cache(clean_tokens, names_filter=lambda name: name in hooks)
        clean = _answer_probs(logits, last, answer).cpu()
        corrupt = _forward(model, corruption, torch.arange(corruption.tokens.shape[0]), last, answer, batch)
        restored = {}
        positions = torch.arange(int(last.max()) + 1)
        for i, site in enumerate(sites):
            rows = torch.arange(corruption.tokens.shape[0]).repeat(len(positions))  # (position, sample, prompt)
            at = positions.repeat_interleave(corruption.tokens.shape[0])
            probs = _forward(model, corruption, rows, last, answer, batch, site=site, at=at, clean=cache[site.hook])
            restored[site] = probs.view(len(positions), corruption.samples, batch).mean(1)
            if on_site is not None:
                on_site(i + 1, len(sites))
    return Trace(clean=clean, corrupt=corrupt.view(corruption.samples, batch).mean(0), restored=restored)


def _forward(
    model,
    corruption: Corruption,
    rows: Int[Tensor, " n"],
    last: Tensor,
    answer: Tensor,
    batch: int,
    *,
    site: Site | None = None,
    at: Int[Tensor, " n"] | None = None,
    clean: Tensor | None = None,
) -> Float[Tensor, " n"]:
    """The clean answer's probability on corrupted rows `rows`, each with `site` restored at position `at[i]`;
    in chunks that keep the logits within LOGIT_BUDGET."""
    device = last.device
    tokens = corruption.tokens
    budget = LOGIT_BUDGET * (16 if device.type == "cuda" else 1)
    chunk = max(1, budget // (tokens.shape[1] * model.cfg.d_vocab))
    out = []
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        prompt = (part % batch).to(device)
        hooks = []
        if corruption.embed_noise is not None:
            noise = corruption.embed_noise[part].to(device)
            hooks.append(("hook_embed", lambda act, hook, noise=noise: act + noise.to(act.dtype)))
        if site is not None:
            positions = at[start : start + chunk].to(device)
            hooks.append((site.hook, _restorer(site, clean, prompt, positions)))
        logits = model.run_with_hooks(tokens[part].to(device), fwd_hooks=hooks)
        out.append(_answer_probs(logits, last[prompt], answer[prompt]).cpu())
    return torch.cat(out)


def _restorer(site: Site, clean: Tensor, prompt: Tensor, positions: Tensor):
    """A hook that puts the clean activation of each row's prompt back at that row's position (one head's only,
    for a head site)."""
    rows = torch.arange(len(prompt), device=prompt.device)

    def restore(act: Tensor, hook) -> Tensor:
        act = act.clone()
        if site.head is None:
            act[rows, positions] = clean[prompt, positions].to(act.dtype)
        else:
            act[rows, positions, site.head] = clean[prompt, positions, site.head].to(act.dtype)
        return act

    return restore


# -- maps by kind of position (ROME's figures average over prompts this way) ----------------------------------

CATEGORIES = (
    "before the subject",
    "first subject token",
    "middle subject tokens",
    "last subject token",
    "first token after",
    "further tokens",
    "last token",
)


def position_categories(
    subject_start: Int[Tensor, " batch"], subject_end: Int[Tensor, " batch"], last: Int[Tensor, " batch"], pos: int
) -> Int[Tensor, "batch pos"]:
    """Each position's index in CATEGORIES, -1 for BOS and padding. A one-token subject's token is its last
    token; a token that is both the first after the subject and the prompt's last is the last token."""
    p = torch.arange(pos)[None, :]
    start, end, last = subject_start[:, None], subject_end[:, None], last[:, None]
    category = torch.full((len(subject_start), pos), -1)
    rules = [
        ((p >= 1) & (p < start), 0),
        ((p > start) & (p < end - 1), 2),
        (p == start, 1),
        (p == end - 1, 3),
        ((p > end) & (p < last), 5),
        (p == end, 4),
        (p == last, 6),
    ]
    for where, index in rules:  # later rules win
        category[where] = index
    return category


def recovered_by_category(
    result: Trace, categories: Int[Tensor, "batch pos"], site: Site
) -> Float[Tensor, " category"]:
    """For each category: the clean answer's probability that restoring `site` there brings back, as a fraction of
    what the corruption took, pooled over the prompts and positions of the category (a ratio of sums, so prompts
    the corruption barely touched weigh little). NaN for a category no prompt has."""
    restored = result.restored[site].T  # [batch, pos]
    category = categories[:, : restored.shape[1]]
    gained = restored - result.corrupt[:, None]
    lost = (result.clean - result.corrupt)[:, None].expand_as(gained)
    out = torch.full((len(CATEGORIES),), float("nan"))
    for k in range(len(CATEGORIES)):
        where = category == k
        if where.any():
            out[k] = gained[where].sum() / lost[where].sum()
    return out
