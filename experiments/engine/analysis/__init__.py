"""Interpretability measurements shared by the kinds: head scores, composition, ablation, trajectory change points."""

from torch import Tensor


def robust_spread(values: Tensor, dim: int = -1) -> Tensor:
    """1.4826 x the median absolute deviation along `dim`: the standard deviation for normal data, unmoved by a
    few outliers (a change point among checkpoints, a circuit's pairs among a layer's)."""
    centre = values.median(dim=dim, keepdim=True).values
    return 1.4826 * (values - centre).abs().median(dim=dim).values
