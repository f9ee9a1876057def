"""Does another model replicate a reference model's IOI circuit? A comparison of `IOIAnalysis` results that works
across models of different shapes (catalogue hypothesis #6; Wang et al. 2022 found the circuit in GPT-2 small).

Heads of two models with different numbers of layers and heads cannot be compared by index. Each of a model's
top-k heads by |patching effect| is described instead by

- its role: the first of `ROLE_ORDER` whose candidates (`IOIAnalysis.roles`) include it, else "other";
- its depth fraction: (layer + 0.5) / n_layers, in (0, 1): GPT-2 small's name mover 9.9 sits at 0.79, the last
  layer of a 3-layer model at 0.83;
- the sign of its patching effect: it carries the task (patched − clean < 0) or opposes it.

Two heads *match* when they have the same role and sign and their depth fractions differ by at most
`DEPTH_TOLERANCE` (0.25: less than one layer of a 3-layer model, three of a 12-layer one). The role-matched
overlap of a model with the reference is the size of a maximum one-to-one matching between the two top-k lists,
divided by the shorter list's length (k, unless a model has fewer heads): 1 when every top head of one model has
a counterpart of the same role at about the same depth in the other.

For each model other than the reference (the first model):

    score = has_name_movers × logit_difference_ratio × role_matched_overlap

- has_name_movers: 1 when the model has at least one name-mover candidate, else 0 (the circuit's core: heads
  at END that attend to IO and write it into the logits);
- logit_difference_ratio: its mean logit difference over the reference's, clipped to [0, 1] (0 when the
  reference's is not positive: there is nothing to replicate);
- role_matched_overlap: above, in [0, 1].

`replication_score` is the mean of the scores over the models other than the reference: in [0, 1], and it never
decreases when any model's logit difference or overlap rises or it gains name movers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from experiments.engine.analysis.ioi import IOIAnalysis

# The order in which a head that is a candidate for several roles is labelled: the IOI circuit's own roles,
# from the output back, before the generic head types.
ROLE_ORDER = ("name_mover", "negative_name_mover", "s_inhibition", "induction", "duplicate_token", "previous_token")
UNLABELLED = "other"
DEPTH_TOLERANCE = 0.25
RULE = (
    "score per model = has name movers (0 or 1) × its logit difference over the reference's (clipped to [0, 1]) × "
    "the role-matched overlap of the top-k heads by |patching effect| (a maximum one-to-one matching of heads with "
    f"the same role and sign of effect and depth fractions (layer + 0.5) / n_layers within {DEPTH_TOLERANCE}, over "
    "the shorter list); replication_score = the mean over the models other than the reference (the first)."
)


def depth_fraction(layer: int, n_layers: int) -> float:
    """Where a layer sits in its model, in (0, 1): the middle of its slice of the depth."""
    return (layer + 0.5) / n_layers


def head_role(analysis: IOIAnalysis, layer: int, head: int) -> str:
    """The head's role: the first of ROLE_ORDER it is a candidate for, else "other"."""
    for role in ROLE_ORDER:
        if (layer, head) in {tuple(h) for h in analysis.roles.get(role, ())}:
            return role
    return UNLABELLED


@dataclass(frozen=True)
class TopHead:
    layer: int
    head: int
    role: str
    depth: float  # depth_fraction of its layer
    effect: float  # patched − clean logit difference; negative: the head carries the task

    @property
    def carries(self) -> bool:
        return self.effect < 0

    def matches(self, other: TopHead) -> bool:
        return (
            self.role == other.role
            and self.carries == other.carries
            and abs(self.depth - other.depth) <= DEPTH_TOLERANCE
        )

    def as_dict(self) -> dict:
        return {"layer": self.layer, "head": self.head, "role": self.role, "depth": round(self.depth, 3),
                "effect": round(self.effect, 4)}  # fmt: skip


def top_heads(analysis: IOIAnalysis, k: int) -> list[TopHead]:
    """The model's k heads with the largest |patching effect|, described by role, depth and effect."""
    return [
        TopHead(layer, head, head_role(analysis, layer, head), depth_fraction(layer, analysis.n_layers),
                float(analysis.patching[layer, head]))
        for layer, head in analysis.top_heads(k)
    ]  # fmt: skip


def maximum_matching(left: Sequence[TopHead], right: Sequence[TopHead]) -> list[tuple[int, int]]:
    """A largest set of (i, j) pairs, each head used once, with left[i] matching right[j] (augmenting paths;
    the lists are at most top_k long)."""
    partner: dict[int, int] = {}  # right index -> left index

    def augment(i: int, seen: set[int]) -> bool:
        for j, candidate in enumerate(right):
            if j in seen or not left[i].matches(candidate):
                continue
            seen.add(j)
            if j not in partner or augment(partner[j], seen):
                partner[j] = i
                return True
        return False

    for i in range(len(left)):
        augment(i, set())
    return sorted((i, j) for j, i in partner.items())


def role_matched_overlap(reference: Sequence[TopHead], other: Sequence[TopHead]) -> tuple[float, list[tuple]]:
    """The share of the shorter top list matched one-to-one (see the module docstring), and the matched pairs."""
    pairs = maximum_matching(reference, other)
    shorter = min(len(reference), len(other))
    return (len(pairs) / shorter if shorter else 0.0), [(reference[i], other[j]) for i, j in pairs]


def has_name_movers(analysis: IOIAnalysis) -> bool:
    return bool(analysis.roles.get("name_mover"))


def logit_difference_ratio(reference: IOIAnalysis, other: IOIAnalysis) -> float:
    """The other model's mean logit difference over the reference's, clipped to [0, 1]; 0 when the reference's
    is not positive."""
    if reference.logit_diff <= 0:
        return 0.0
    return min(1.0, max(0.0, other.logit_diff / reference.logit_diff))


@dataclass(frozen=True)
class Replication:
    """How one model compares with the reference."""

    has_name_movers: bool
    logit_difference_ratio: float
    role_matched_overlap: float
    matched: list[tuple[TopHead, TopHead]]  # (reference head, this model's head)
    top: list[TopHead]  # this model's top heads

    @property
    def score(self) -> float:
        return float(self.has_name_movers) * self.logit_difference_ratio * self.role_matched_overlap


def compare(reference: IOIAnalysis, other: IOIAnalysis, k: int) -> Replication:
    """`other` against `reference`: the three factors of its score."""
    reference_top, top = top_heads(reference, k), top_heads(other, k)
    overlap, matched = role_matched_overlap(reference_top, top)
    return Replication(has_name_movers(other), logit_difference_ratio(reference, other), overlap, matched, top)


def replication_score(analyses: Sequence[IOIAnalysis], k: int) -> tuple[float, list[Replication]]:
    """The mean score of every model after the first against the first (the reference), and each comparison."""
    if len(analyses) < 2:
        raise ValueError("a replication needs a reference and at least one other model")
    comparisons = [compare(analyses[0], other, k) for other in analyses[1:]]
    return sum(c.score for c in comparisons) / len(comparisons), comparisons
