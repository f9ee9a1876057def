"""A training trajectory across checkpoints: its PCA, and change points tested against its own noise.

Each checkpoint is summarised by one vector (its next-token log-probabilities,
or per-token losses, on a fixed set of tokens), as in Olsson et al. 2022
("In-context Learning and Induction Heads"). PCA across checkpoints draws the
trajectory. A phase change is a burst of movement: the model's outputs change
much faster, for a short stretch of training, than before and after.

The test works on the speed of the trajectory: the distance between
consecutive checkpoints' vectors per unit of log-step (checkpoints are
usually log-spaced). Smooth training gives a smooth speed curve in log-step,
so a quadratic in log-step, fitted robustly (points far off the fit are left
out and the fit repeated), is the trend. Each stretch's residual log-speed is
compared with the residuals' own spread (1.4826 x their median absolute
deviation): a one-sided normal p-value, multiplied by the number of stretches
tested (Bonferroni). A change point is a stretch that is both significant
(adjusted p < `ALPHA`) and large (at least `MIN_SPEED_RATIO` times the trend's
speed): significance alone would flag small wiggles of a very smooth curve, and
size alone would flag noise. Stretches that start during the learning-rate
warm-up are part of the trend but are not tested: there the schedule, not the
model, sets the speed (the training run records its warm-up in each checkpoint).
On 1-layer attention-only models, which have no phase change, the largest burst
after the warm-up was 1.3-1.5x the trend; where a 2-layer model formed its
induction circuit it was 2-5x (docs/science.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from experiments.engine.analysis import robust_spread

ALPHA = 0.05
MIN_SPEED_RATIO = 2.0
MIN_CHECKPOINTS = 8  # a quadratic trend needs a few more stretches than its three coefficients
OUTLIER_SIGMAS = 2.5
RULE = (
    f"change point = a stretch between checkpoints where the trajectory moves at least {MIN_SPEED_RATIO:g}x faster "
    f"than its smooth trend (a robust quadratic in log-step), with a Bonferroni-adjusted p < {ALPHA:g} against the "
    f"trajectory's own noise; stretches during the learning-rate warm-up are not tested"
)


@dataclass(frozen=True)
class Stretch:
    """The stretch of training between two consecutive checkpoints, tested as a change point."""

    from_step: int
    step: int  # the checkpoint that ends the stretch
    speed_ratio: float  # its speed over the trend's
    z: float
    p_value: float  # Bonferroni-adjusted
    significant: bool

    def as_dict(self) -> dict:
        return {
            "from_step": self.from_step,
            "step": self.step,
            "speed_ratio": round(self.speed_ratio, 3),
            "z": round(self.z, 2),
            "p_value": float(f"{self.p_value:.3g}"),
            "significant": self.significant,
        }


@dataclass(frozen=True)
class Trajectory:
    coords: Float[Tensor, "checkpoint component"]
    explained: list[float]  # variance ratio of each component
    strongest: Stretch | None  # the largest burst, significant or not (None: too few checkpoints to test)
    change_points: list[Stretch]  # the significant ones, largest first


def pca(vectors: Float[Tensor, "checkpoint feature"], n_components: int) -> tuple[Tensor, list[float]]:
    centered = vectors - vectors.mean(dim=0, keepdim=True)
    u, s, _ = torch.linalg.svd(centered.double(), full_matrices=False)
    k = min(n_components, s.shape[0])
    variance = s.pow(2)
    explained = (variance[:k] / variance.sum().clamp_min(1e-30)).tolist()
    return (u[:, :k] * s[:k]).float(), explained


def _robust_quadratic(x: Tensor, y: Tensor) -> tuple[Tensor, float]:
    """Residuals of y against a quadratic in x fitted without its outliers, and the inliers' robust spread."""
    design = torch.stack([torch.ones_like(x), x, x * x], dim=1)
    inliers = torch.ones_like(y, dtype=torch.bool)
    for _ in range(5):
        coef = torch.linalg.lstsq(design[inliers], y[inliers, None]).solution[:, 0]
        residual = y - design @ coef
        spread = float(robust_spread(residual[inliers]))
        updated = residual.abs() <= OUTLIER_SIGMAS * max(spread, 1e-12)
        if int(updated.sum()) < 4 or bool((updated == inliers).all()):
            break
        inliers = updated
    return residual, max(float(robust_spread(residual[inliers])), 1e-12)


def stretches(vectors: Float[Tensor, "checkpoint feature"], steps: list[int], *, from_step: int = 0) -> list[Stretch]:
    """The stretches between consecutive checkpoints that start at `from_step` or later, each tested as a change
    point against the trend of the whole trajectory (empty if there are too few checkpoints). Training's
    learning-rate warm-up sets the speed by schedule, so callers test from its end."""
    if len(steps) < MIN_CHECKPOINTS:
        return []
    x = torch.tensor(steps, dtype=torch.float64).log()
    moved = (vectors[1:] - vectors[:-1]).double().norm(dim=1)
    speed = moved / (x[1:] - x[:-1])
    middle = (x[1:] + x[:-1]) / 2
    residual, spread = _robust_quadratic(middle, speed.clamp_min(1e-30).log())
    tested = [j for j in range(len(residual)) if steps[j] >= from_step]
    found = []
    for j in tested:
        z = float(residual[j]) / spread
        p = min(1.0, len(tested) * 0.5 * math.erfc(z / math.sqrt(2)))
        ratio = math.exp(float(residual[j]))
        found.append(Stretch(steps[j], steps[j + 1], ratio, z, p, p < ALPHA and ratio >= MIN_SPEED_RATIO))
    return found


def trajectory(vectors: Tensor, steps: list[int], *, from_step: int = 0) -> Trajectory:
    coords, explained = pca(vectors, n_components=3)
    tested = stretches(vectors, steps, from_step=from_step)
    strongest = max(tested, key=lambda s: s.speed_ratio, default=None)
    significant = sorted((s for s in tested if s.significant), key=lambda s: s.speed_ratio, reverse=True)
    return Trajectory(coords=coords, explained=explained, strongest=strongest, change_points=significant)
