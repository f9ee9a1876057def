"""PCA of a training trajectory and its kinks (Olsson et al. 2022, "In-context Learning and Induction Heads").

Each checkpoint is summarised by one vector (its per-token losses, or
log-probabilities, on a fixed set of tokens). PCA across checkpoints gives a
trajectory; a phase change shows as a sharp turn in it. A kink is a checkpoint
where the direction of travel turns by at least `min_angle` degrees between
two substantial segments (each at least `min_segment` of the longest segment,
so that jitter near convergence is not reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

MIN_ANGLE_DEGREES = 45.0
MIN_SEGMENT_FRACTION = 0.1
KINK_COMPONENTS = 3


@dataclass(frozen=True)
class Trajectory:
    coords: Float[Tensor, "checkpoint component"]
    explained: list[float]  # variance ratio of each component
    kinks: list[dict]  # [{"index", "step", "angle"}], sharpest first


def pca(vectors: Float[Tensor, "checkpoint feature"], n_components: int) -> tuple[Tensor, list[float]]:
    centered = vectors - vectors.mean(dim=0, keepdim=True)
    u, s, _ = torch.linalg.svd(centered.double(), full_matrices=False)
    k = min(n_components, s.shape[0])
    variance = s.pow(2)
    explained = (variance[:k] / variance.sum().clamp_min(1e-30)).tolist()
    return (u[:, :k] * s[:k]).float(), explained


def find_kinks(coords: Tensor, steps: list[int], *, min_angle: float = MIN_ANGLE_DEGREES) -> list[dict]:
    segments = coords[1:] - coords[:-1]
    lengths = segments.norm(dim=1)
    if len(lengths) < 2 or float(lengths.max()) == 0:
        return []
    floor = MIN_SEGMENT_FRACTION * float(lengths.max())
    kinks = []
    for i in range(1, len(segments)):
        a, b = segments[i - 1], segments[i]
        if lengths[i - 1] < floor or lengths[i] < floor:
            continue
        cos = float(torch.dot(a, b) / (lengths[i - 1] * lengths[i]))
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
        if angle >= min_angle:
            kinks.append({"index": i, "step": steps[i], "angle": round(angle, 1)})
    return sorted(kinks, key=lambda k: k["angle"], reverse=True)


def trajectory(vectors: Tensor, steps: list[int], *, min_angle: float = MIN_ANGLE_DEGREES) -> Trajectory:
    coords, explained = pca(vectors, n_components=max(2, KINK_COMPONENTS))
    kinks = find_kinks(coords[:, :KINK_COMPONENTS], steps, min_angle=min_angle)
    return Trajectory(coords=coords, explained=explained, kinks=kinks)
