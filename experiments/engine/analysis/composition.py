"""Q-, K- and V-composition between heads in different layers (Elhage et al. 2021).

For an earlier head A and a later head B, the composition score is
||M_B · W_OV^A||_F / (||M_B||_F · ||W_OV^A||_F), where M_B is B's W_QK
(Q-composition: read through B's query side; K-composition: through its key
side) or B's W_OV (V-composition). It measures how much of what A writes lands
in the subspace B reads. Random matrices of these shapes already score above
zero, so every score is shown beside the same score of a randomly initialised
model of the same shape: a composition is "above chance" when it exceeds that
baseline's mean + 3 standard deviations (over all head pairs of the baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from experiments.engine.models import NativeConfig, build_native

MODES = ("Q", "K", "V")
CHANCE_SIGMAS = 3.0


@dataclass(frozen=True)
class Composition:
    scores: dict[str, Float[Tensor, "layer head layer head"]]  # [l1, h1, l2, h2], zero unless l1 < l2
    baseline_mean: dict[str, float]
    baseline_std: dict[str, float]

    def threshold(self, mode: str) -> float:
        return self.baseline_mean[mode] + CHANCE_SIGMAS * self.baseline_std[mode]

    def strongest(self, k: int = 10) -> list[dict]:
        """The k strongest compositions of any mode, with how far above chance each is."""
        rows = []
        for mode, scores in self.scores.items():
            n_layers = scores.shape[0]
            for l1 in range(n_layers):
                for l2 in range(l1 + 1, n_layers):
                    for h1 in range(scores.shape[1]):
                        for h2 in range(scores.shape[3]):
                            value = float(scores[l1, h1, l2, h2])
                            rows.append({
                                "mode": mode,
                                "writer": [l1, h1],
                                "reader": [l2, h2],
                                "score": value,
                                "baseline_mean": self.baseline_mean[mode],
                                "sigmas_above_baseline": (value - self.baseline_mean[mode])
                                / max(self.baseline_std[mode], 1e-12),
                                "above_chance": value > self.threshold(mode),
                            })  # fmt: skip
        return sorted(rows, key=lambda r: r["sigmas_above_baseline"], reverse=True)[:k]


def _pair_values(scores: Tensor) -> Tensor:
    n_layers = scores.shape[0]
    return torch.cat([scores[l1, :, l2, :].flatten() for l1 in range(n_layers) for l2 in range(l1 + 1, n_layers)])


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
    baseline = raw_scores(baseline_model(model, seed=baseline_seed))
    if model.cfg.n_layers < 2:
        return Composition(scores, dict.fromkeys(MODES, 0.0), dict.fromkeys(MODES, 0.0))
    means = {m: float(_pair_values(baseline[m]).mean()) for m in MODES}
    stds = {m: float(_pair_values(baseline[m]).std()) for m in MODES}
    return Composition(scores, means, stds)
