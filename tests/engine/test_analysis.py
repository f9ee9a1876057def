"""The measurements behind the interpretability kinds, on inputs whose answers are known by construction."""

from __future__ import annotations

import math

import pytest
import torch

from experiments.engine.analysis.composition import (
    Factors,
    composition,
    later_layer_mask,
    own_layer_z,
    pair_scores,
    permutation_p,
    raw_scores,
)
from experiments.engine.analysis.heads import copying_scores, fixed_offset_scores, look_back_scores
from experiments.engine.analysis.trajectory import ALPHA, MIN_SPEED_RATIO, stretches, trajectory
from experiments.engine.models import build_native
from experiments.engine.runtime import within
from experiments.engine.training import SMALL_ATTN_ONLY

HALF = 7
LENGTH = 1 + 2 * HALF


def attending(offset_of_query) -> torch.Tensor:
    """[layer=1, batch=1, head=1, q, k] patterns: each query puts all its attention on key offset_of_query(q)."""
    patterns = torch.zeros(1, 1, 1, LENGTH, LENGTH)
    for q in range(LENGTH):
        patterns[0, 0, 0, q, min(q, max(0, offset_of_query(q)))] = 1.0
    return patterns


def test_within_maps_a_child_into_its_parents_range():
    seen = []
    child = within(lambda f, m: seen.append((f, m)), 0.5, 0.75, "2-layer model: ")
    child(0.0, "start")
    child(0.5, "half")
    child(2.0, "past the end")
    assert [f for f, _ in seen] == [0.5, 0.625, 0.75]
    assert [m for _, m in seen] == ["2-layer model: start", "2-layer model: half", "2-layer model: past the end"]


def test_look_back_finds_the_offset_a_head_attends_at():
    scores, offsets = look_back_scores(attending(lambda q: q - 3))
    assert float(scores[0, 0]) == pytest.approx(1.0)
    assert int(offsets[0, 0]) == 3
    previous = fixed_offset_scores(attending(lambda q: q - 3), HALF)["previous_token"]
    assert float(previous[0, 0]) < 0.1  # the fixed-offset score misses it


TOKENS = torch.tensor([[0, *range(1, HALF + 1), *range(1, HALF + 1)]])  # BOS + r + r, r all distinct
READOUT = torch.eye(HALF + 1)  # d_model = vocabulary: a one-hot residual raises exactly its token


def sending(back: int) -> torch.Tensor:
    """[batch, head, k, d_model]: each key sends the token `back` places before it (0: its own)."""
    out = torch.zeros(1, 1, LENGTH, HALF + 1)
    for k in range(back + 1, LENGTH):
        out[0, 0, k, TOKENS[0, k - back]] = 1.0
    return out


def test_copying_sees_a_shifted_circuit_and_reports_where_it_reads():
    # Attends three after the current token's earlier twin; that key carries the token two before it, which is
    # the token after the twin: the answer.
    shifted = attending(lambda q: q - HALF + 3)[0]
    score, offset, layer_score = copying_scores(shifted, sending(2), TOKENS, READOUT)
    answered = [q for q in range(HALF + 1, LENGTH - 1) if 1 <= q - HALF + 3 <= HALF]  # key inside the copy
    assert float(score[0]) == pytest.approx(len(answered) / (LENGTH - 2 - HALF))
    assert int(offset[0]) == 3
    assert layer_score == pytest.approx(float(score[0]))
    # The same attention with values that send their own token names the wrong token.
    assert float(copying_scores(shifted, sending(0), TOKENS, READOUT)[0][0]) == 0.0


def test_textbook_induction_head_scores_on_both_measures():
    induction = attending(lambda q: q - HALF + 1 if q > HALF else 0)
    score, offset, _ = copying_scores(induction[0], sending(0), TOKENS, READOUT)
    assert float(score[0]) == pytest.approx(1.0)
    assert int(offset[0]) == 1
    assert float(fixed_offset_scores(induction, HALF)["induction"][0, 0]) == pytest.approx(1.0)


def test_own_layer_z_is_robust_and_leaves_the_pair_out():
    scores = torch.zeros(2, 3, 2, 3)
    # Three strong pairs (one writer read by three heads) among weak ones: each strong pair is measured against
    # the weak majority, not against a spread its two siblings inflate.
    block = torch.tensor([[1.0, 1.2, 0.8], [1.1, 0.9, 1.0], [9.0, 10.0, 11.0]])
    scores[0, :, 1, :] = block
    z = own_layer_z(scores)
    others = torch.cat([block.flatten()[:7], block.flatten()[8:]])  # the pair at (2, 1) left out
    median = others.median()
    mad = 1.4826 * (others - median).abs().median()
    assert float(z[0, 2, 1, 1]) == pytest.approx(float((10.0 - median) / mad), rel=1e-5)
    assert float(z[0, 2, 1, 1]) > 10 and abs(float(z[0, 0, 1, 0])) < 2
    assert float(z[1, 0, 0, 0]) == 0.0  # a later layer never writes to an earlier one


def test_pair_scores_without_a_shuffle_equal_transformer_lens_composition_scores():
    model = build_native(SMALL_ATTN_ONLY.model_copy(update={"n_layers": 3}), seed=3)
    factors, reference = Factors.of(model), raw_scores(model)
    for mode in ("Q", "K", "V"):
        for l1, h1, l2, h2 in later_layer_mask(reference[mode]).nonzero().tolist()[::7]:
            mine = pair_scores(factors, mode, (l1, h1), (l2, h2), torch.arange(64)[None])[0]
            assert float(mine) == pytest.approx(float(reference[mode][l1, h1, l2, h2]), abs=1e-5)


def test_permutation_test_tells_an_aligned_pair_from_a_random_one():
    model = build_native(SMALL_ATTN_ONLY, seed=5)
    factors = Factors.of(model)
    generator = torch.Generator().manual_seed(0)
    random_p = permutation_p(factors, "K", (0, 0), (1, 0), generator=generator)
    # Make head (1, 0) read its keys from exactly where head (0, 0) writes.
    aligned = Factors(factors.W_Q, factors.W_K.clone(), factors.W_V, factors.W_O_T)
    aligned.W_K[1, 0] = factors.W_O_T[0, 0]
    aligned_p = permutation_p(aligned, "K", (0, 0), (1, 0), generator=generator)
    assert aligned_p <= 0.002
    assert random_p > 0.01


def test_random_models_compositions_rarely_count_as_above_chance():
    model = build_native(SMALL_ATTN_ONLY.model_copy(update={"n_layers": 3}), seed=11)
    result = composition(model, baseline_seed=12)
    pairs = int(later_layer_mask(result.scores["K"]).sum())
    for mode in ("Q", "K", "V"):
        assert int(result.above_chance(mode).sum()) <= 0.05 * pairs


def smooth_trajectory(steps: list[int], burst_at: int | None = None, factor: float = 6.0) -> torch.Tensor:
    """Vectors moving along a smooth curve, slowing down over log-steps; optionally a burst of movement."""
    x = torch.tensor(steps, dtype=torch.float64).log()
    points = [torch.zeros(3, dtype=torch.float64)]
    generator = torch.Generator().manual_seed(0)
    for i in range(1, len(steps)):
        speed = 10 * math.exp(-0.2 * float(x[i])) * (1 + 0.05 * float(torch.randn(1, generator=generator)))
        if burst_at is not None and steps[i] == burst_at:
            speed *= factor
        direction = torch.tensor([math.cos(x[i]), math.sin(x[i]), 0.3], dtype=torch.float64)
        points.append(points[-1] + speed * float(x[i] - x[i - 1]) * direction)
    return torch.stack(points)


STEPS = sorted({round(10 * 300 ** (i / 29)) for i in range(30)})


def test_a_smooth_trajectory_has_no_change_point():
    result = trajectory(smooth_trajectory(STEPS), STEPS)
    assert result.change_points == []
    assert result.strongest is not None and result.strongest.speed_ratio < MIN_SPEED_RATIO


def test_a_burst_is_a_change_point_at_its_step_with_its_significance():
    burst = STEPS[18]
    result = trajectory(smooth_trajectory(STEPS, burst_at=burst), STEPS)
    assert [c.step for c in result.change_points] == [burst]
    top = result.change_points[0]
    assert top.p_value < ALPHA and top.speed_ratio > 4
    assert top.from_step == STEPS[17]


def test_too_few_checkpoints_are_not_tested():
    assert stretches(torch.randn(5, 4), [1, 2, 3, 4, 5]) == []


def test_a_burst_during_the_warm_up_is_not_tested():
    burst = STEPS[6]
    result = trajectory(smooth_trajectory(STEPS, burst_at=burst), STEPS, from_step=STEPS[10])
    assert result.change_points == []
    assert all(s.from_step >= STEPS[10] for s in stretches(smooth_trajectory(STEPS), STEPS, from_step=STEPS[10]))
