"""Q-, K- and V-composition between heads in different layers (Elhage et al. 2021), against three baselines.

For an earlier head A and a later head B, the composition score is
||W_OV^A · M_B||_F / (||W_OV^A||_F · ||M_B||_F), where M_B is B's W_QK
(Q-composition: read through B's query side), its transpose (K-composition:
through its key side) or B's W_OV (V-composition). It measures how much of
what A writes lands in the subspace B reads.

Random matrices of these shapes already score well above zero, and trained
heads score higher than random ones across the board (their spectra are less
flat), so a score means little alone. Each pair is compared with:

- the random model: the same score over every pair of a randomly initialised
  model of the same shape (mean and sd). Lenient: a trained model often has
  every pair above it.
- its own layer pair: the trained model's other pairs between the same two
  layers, this pair left out (median and median absolute deviation, so that
  the circuit's other pairs do not hide it). Asks "does this pair stand out
  among heads that had the same training?".
- permutation: the same two heads with the residual-stream dimensions A
  writes to shuffled (`N_PERMUTATIONS` draws), which keeps both heads' norms and
  spectra and breaks only their alignment; reported as a one-sided p-value.

A composition is "above chance" when it beats the random model by
`CHANCE_SIGMAS` sd *and* stands `OWN_SIGMAS` sd above its own layer pair; the
summaries say which baselines each count uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from experiments.engine.analysis import robust_spread
from experiments.engine.models import NativeConfig, build_native

MODES = ("Q", "K", "V")
CHANCE_SIGMAS = 3.0
OWN_SIGMAS = 2.0
N_PERMUTATIONS = 1000
RULE = (
    f"above chance = more than {CHANCE_SIGMAS:g} sd above a random model's pairs and more than {OWN_SIGMAS:g} sd "
    f"above the trained model's other pairs between the same layers; p = permutation test "
    f"({N_PERMUTATIONS} shuffles of the writer's residual dimensions)"
)


@dataclass(frozen=True)
class Factors:
    """Each head's matrices, [layer, head, d_model, d_head] (W_O transposed to that shape too)."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O_T: Tensor

    @classmethod
    def of(cls, model) -> Factors:
        def get(name: str) -> Tensor:
            return getattr(model, name).detach().float().cpu()

        return cls(get("W_Q"), get("W_K"), get("W_V"), get("W_O").transpose(-2, -1))

    def reader(self, mode: str) -> tuple[Tensor, Tensor]:
        """(X, Y) with the reader matrix M_B = X Y^T: its input side X meets what the writer writes."""
        return {"Q": (self.W_Q, self.W_K), "K": (self.W_K, self.W_Q), "V": (self.W_V, self.W_O_T)}[mode]


@dataclass(frozen=True)
class Composition:
    scores: dict[str, Float[Tensor, "layer head layer head"]]  # [l1, h1, l2, h2], zero unless l1 < l2
    baseline_mean: dict[str, float]
    baseline_std: dict[str, float]
    own_z: dict[str, Float[Tensor, "layer head layer head"]]  # against the same layers' other pairs
    factors: Factors | None = None

    def random_z(self, mode: str) -> Tensor:
        return (self.scores[mode] - self.baseline_mean[mode]) / max(self.baseline_std[mode], 1e-12)

    def above_random(self, mode: str) -> Tensor:
        """[l1, h1, l2, h2] booleans: beats the random model alone (the lenient rule)."""
        return later_layer_mask(self.scores[mode]) & (self.random_z(mode) > CHANCE_SIGMAS)

    def above_chance(self, mode: str) -> Tensor:
        """[l1, h1, l2, h2] booleans: beats the random model and the pair's own layers (see the module doc)."""
        return self.above_random(mode) & (self.own_z[mode] > OWN_SIGMAS)

    def n_above_random(self, mode: str) -> int:
        """The lenient count: pairs above the random model alone."""
        return int(self.above_random(mode).sum())

    def strongest(self, k: int = 10, *, seed: int = 0) -> list[dict]:
        """The k pairs of any mode that stand out most from their own layers, each against every baseline."""
        rows = []
        for mode, scores in self.scores.items():
            random_z, above = self.random_z(mode), self.above_chance(mode)
            for l1, h1, l2, h2 in later_layer_mask(scores).nonzero().tolist():
                rows.append({
                    "mode": mode,
                    "writer": [l1, h1],
                    "reader": [l2, h2],
                    "score": round(float(scores[l1, h1, l2, h2]), 4),
                    "sigmas_above_random_model": round(float(random_z[l1, h1, l2, h2]), 2),
                    "sigmas_above_own_layers": round(float(self.own_z[mode][l1, h1, l2, h2]), 2),
                    "above_chance": bool(above[l1, h1, l2, h2]),
                })  # fmt: skip
        rows.sort(key=lambda r: r["sigmas_above_own_layers"], reverse=True)
        top = rows[:k]
        if self.factors is not None:
            generator = torch.Generator().manual_seed(seed)
            for row in top:
                row["permutation_p"] = permutation_p(
                    self.factors, row["mode"], tuple(row["writer"]), tuple(row["reader"]), generator=generator
                )
        return top


def later_layer_mask(scores: Tensor) -> Tensor:
    """[l1, h1, l2, h2] True where l1 < l2: the only pairs that can compose."""
    n_layers, n_heads = scores.shape[0], scores.shape[1]
    layers = torch.arange(n_layers)
    earlier = layers[:, None] < layers[None, :]  # [l1, l2]
    return earlier[:, None, :, None].expand(n_layers, n_heads, n_layers, n_heads)


def _pair_values(scores: Tensor) -> Tensor:
    return scores[later_layer_mask(scores)]


def own_layer_z(scores: Tensor) -> Tensor:
    """Each pair's robust z-score against the other pairs between the same two layers, itself left out:
    (score - their median) / (1.4826 x their median absolute deviation). Robust, because a circuit often
    has several pairs of the same kind (four induction heads reading one previous-token head), and those
    would otherwise inflate the spread they are measured against."""
    n_layers = scores.shape[0]
    z = torch.zeros_like(scores)
    for l1 in range(n_layers):
        for l2 in range(l1 + 1, n_layers):
            block = scores[l1, :, l2, :].flatten()
            if block.numel() < 3:
                continue
            others = torch.stack([torch.cat([block[:i], block[i + 1 :]]) for i in range(block.numel())])
            centre = others.median(dim=1).values
            spread = robust_spread(others, dim=1)
            z[l1, :, l2, :] = ((block - centre) / spread.clamp_min(1e-12)).view(scores.shape[1], scores.shape[3])
    return z


def pair_scores(factors: Factors, mode: str, writer: tuple[int, int], reader: tuple[int, int], perms: Tensor) -> Tensor:
    """The pair's composition score with the writer's residual dimensions reordered by each row of `perms`.

    Works on the factors: with W_OV^A = V O and M_B = X Y^T, ||V O P X Y^T||_F^2 = tr(C^T G C H) for
    C = O P X, G = V^T V, H = Y^T Y, all d_head x d_head. The identity permutation gives the plain score.
    """
    v, o = factors.W_V[writer], factors.W_O_T[writer].T  # [d_model, d_head], [d_head, d_model]
    x_all, y_all = factors.reader(mode)
    x, y = x_all[reader], y_all[reader]
    g, h = v.T @ v, y.T @ y
    writer_norm = torch.trace(g @ (o @ o.T)).sqrt()
    reader_norm = torch.trace((x.T @ x) @ h).sqrt()
    c = o[:, perms].permute(1, 0, 2) @ x  # [n, d_head, d_head]: O P X, P reordering O's columns
    squared = (c.transpose(-2, -1) @ g @ c * h.T).sum(dim=(-2, -1))
    return squared.clamp_min(0).sqrt() / (writer_norm * reader_norm)


def permutation_p(
    factors: Factors, mode: str, writer: tuple[int, int], reader: tuple[int, int], *, generator: torch.Generator,
    n: int = N_PERMUTATIONS,
) -> float:  # fmt: skip
    """One-sided p-value of a pair's score against `n` shuffles of the residual dimensions the writer writes to."""
    d_model = factors.W_V.shape[2]
    observed = pair_scores(factors, mode, writer, reader, torch.arange(d_model)[None])[0]
    perms = torch.stack([torch.randperm(d_model, generator=generator) for _ in range(n)])
    shuffled = pair_scores(factors, mode, writer, reader, perms)
    return round(float((1 + (shuffled >= observed).sum()) / (n + 1)), 4)


def raw_scores(model) -> dict[str, Tensor]:
    with torch.no_grad():
        return {mode: model.all_composition_scores(mode).detach().float().cpu() for mode in MODES}


def baseline_model(model, *, seed: int):
    """A randomly initialised TL-native model with the same attention shapes (a small vocabulary suffices)."""
    cfg = model.cfg
    shape = NativeConfig(
        n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_model=cfg.d_model, d_head=cfg.d_head, n_ctx=8, d_vocab=8
    )
    return build_native(shape, seed=seed)


def composition(model, *, baseline_seed: int) -> Composition:
    scores = raw_scores(model)
    own = {m: own_layer_z(scores[m]) for m in MODES}
    if model.cfg.n_layers < 2:
        return Composition(scores, dict.fromkeys(MODES, 0.0), dict.fromkeys(MODES, 0.0), own)
    baseline = raw_scores(baseline_model(model, seed=baseline_seed))
    means = {m: float(_pair_values(baseline[m]).mean()) for m in MODES}
    stds = {m: float(_pair_values(baseline[m]).std()) for m in MODES}
    return Composition(scores, means, stds, own, factors=Factors.of(model))
