"""Paired statistics of the behavioural evaluations: checked against hand-computed values, brute-force
enumeration of the exact tests, large-sample approximations and simulated coverage."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest

from experiments.engine.errors import EngineError
from experiments.engine.evals.stats import (
    binomial_test,
    brier_score,
    clopper_pearson,
    expected_calibration_error,
    mcnemar,
    newcombe_interval,
    paired_bootstrap,
    paired_test,
    rate_effect,
    sign_flip_test,
    wilson_interval,
)


def paired(both: int, a_only: int, b_only: int, neither: int) -> tuple[list[bool], list[bool]]:
    a = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return a, b


def test_wilson_interval_matches_hand_computed_values():
    z = 1.959963984540054
    # 0/10: (0, z^2 / (n + z^2)); 10/10 mirrors it; 5/10 is symmetric about 1/2.
    assert wilson_interval(0, 10) == (0.0, pytest.approx(z * z / (10 + z * z), abs=1e-12))
    assert wilson_interval(10, 10) == (pytest.approx(10 / (10 + z * z), abs=1e-12), 1.0)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2365931, abs=1e-6) and high == pytest.approx(1 - low, abs=1e-12)
    # Known value: 81 of 263 -> 0.2553 to 0.3662 (a common worked example of the score interval).
    assert wilson_interval(81, 263) == (pytest.approx(0.25529, abs=1e-4), pytest.approx(0.36621, abs=1e-4))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    wide, narrow = wilson_interval(30, 100, confidence=0.99), wilson_interval(30, 100, confidence=0.9)
    assert wide[0] < narrow[0] < 0.3 < narrow[1] < wide[1]


def brute_force_two_sided(k: int, n: int, p0: float) -> float:
    pmf = [math.comb(n, i) * p0**i * (1 - p0) ** (n - i) for i in range(n + 1)]
    return min(1.0, sum(q for q in pmf if q <= pmf[k] * (1 + 1e-7)))


@pytest.mark.parametrize("n,p0", [(7, 0.5), (12, 0.3), (20, 0.9), (1, 0.5)])
def test_binomial_test_equals_brute_force_enumeration(n, p0):
    for k in range(n + 1):
        assert binomial_test(k, n, p0) == pytest.approx(brute_force_two_sided(k, n, p0), rel=1e-9)


def test_binomial_test_known_values():
    assert binomial_test(0, 10, 0.5) == pytest.approx(2 / 1024)
    assert binomial_test(5, 10, 0.5) == pytest.approx(1.0)
    assert binomial_test(9, 10, 0.5) == pytest.approx(22 / 1024)
    assert binomial_test(0, 0, 0.5) == 1.0
    # Large n must not overflow: 600 of 1000 at 0.5 is far in the tail.
    assert 0 < binomial_test(600, 1000, 0.5) < 1e-9


def test_mcnemar_p_value_is_the_exact_binomial_test_on_discordant_pairs():
    result = mcnemar(*paired(both=20, a_only=9, b_only=1, neither=10))
    assert result.discordant == (9, 1)
    assert result.p_value == pytest.approx(22 / 1024)  # P(X <= 1 or X >= 9), X ~ Bin(10, 1/2)
    assert result.effect == pytest.approx(8 / 40)
    assert result.n == 40 and result.test == "mcnemar"


def test_newcombe_interval_reproduces_a_published_worked_example():
    # Complete response before and after consolidation therapy (Cavo et al. 2012), the paired 2x2 example of
    # Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables" (2017), chapter 8: 59 both,
    # 6 before only, 16 after only, 80 neither; Newcombe's square-and-add interval -0.1186 to -0.0046.
    low, high = newcombe_interval(59, 6, 16, 80)
    assert low == pytest.approx(-0.1186, abs=5e-5) and high == pytest.approx(-0.0046, abs=5e-5)
    result = mcnemar(*paired(both=59, a_only=6, b_only=16, neither=80))
    assert result.effect == pytest.approx(-10 / 161)
    # Newcombe's interval excludes zero, but the exact test (p = 0.0525) does not reject: the reported interval,
    # the hull with the exact conditional one, includes zero, so a criterion on its bound agrees with the test.
    assert result.ci_low <= low and result.ci_high >= 0
    assert result.p_value == pytest.approx(0.0525, abs=5e-5)


def test_a_weak_positive_association_does_not_narrow_the_interval():
    # both * neither - a_only * b_only = 2 <= N/2 = 2.5: Newcombe counts phi as 0, as for independent proportions.
    low, high = newcombe_interval(1, 2, 0, 2)
    p1, p2 = 3 / 5, 1 / 5
    (l1, u1), (l2, u2) = wilson_interval(3, 5), wilson_interval(1, 5)
    assert low == pytest.approx(p1 - p2 - math.hypot(p1 - l1, u2 - p2))
    assert high == pytest.approx(p1 - p2 + math.hypot(u1 - p1, p2 - l2))


def test_mcnemar_is_symmetric():
    a, b = paired(both=14, a_only=11, b_only=3, neither=22)
    forward, backward = mcnemar(a, b), mcnemar(b, a)
    assert backward.p_value == pytest.approx(forward.p_value)
    assert backward.effect == pytest.approx(-forward.effect)
    assert backward.ci_low == pytest.approx(-forward.ci_high) and backward.ci_high == pytest.approx(-forward.ci_low)
    assert backward.discordant == (3, 11)


def test_mcnemar_without_discordant_pairs_has_p_one_and_an_interval_around_zero():
    result = mcnemar(*paired(both=30, a_only=0, b_only=0, neither=20))
    assert result.p_value == 1.0 and result.effect == 0.0
    assert result.ci_low < 0 < result.ci_high
    constant = mcnemar([True] * 50, [True] * 50)  # phi's denominator is 0 here
    assert constant.p_value == 1.0 and constant.ci_low < 0 < constant.ci_high


def test_newcombe_interval_approaches_the_wald_interval_for_many_pairs():
    both, a_only, b_only, neither = 4000, 1500, 900, 3600
    n = both + a_only + b_only + neither
    low, high = newcombe_interval(both, a_only, b_only, neither)
    d = (a_only - b_only) / n
    se = math.sqrt(((a_only + b_only) / n - d * d) / n)  # the paired-difference standard error
    assert low == pytest.approx(d - 1.959964 * se, abs=2e-3)
    assert high == pytest.approx(d + 1.959964 * se, abs=2e-3)
    assert mcnemar(*paired(both, a_only, b_only, neither)).ci_low == pytest.approx(low, abs=5e-3)


def test_newcombe_interval_covers_the_true_paired_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    # Cell probabilities (both, a only, b only, neither): the true difference is 0.25 - 0.10.
    cells = np.array([0.3, 0.25, 0.10, 0.35])
    covered = 0
    for _ in range(400):
        counts = rng.multinomial(60, cells)
        result = mcnemar(*paired(*(int(c) for c in counts)))
        covered += result.ci_low <= 0.15 <= result.ci_high
    assert 0.91 <= covered / 400 <= 0.99


def test_mcnemar_interval_stays_within_bounds_and_holds_the_estimate():
    for cells in product([0, 1, 5], repeat=4):
        if sum(cells) == 0:
            continue
        result = mcnemar(*paired(*cells))
        assert -1 <= result.ci_low <= result.effect <= result.ci_high <= 1


def test_mcnemar_refuses_non_boolean_or_unpaired_outcomes():
    with pytest.raises(EngineError, match="yes/no"):
        mcnemar([0.5, 1.0], [1.0, 0.0])
    with pytest.raises(EngineError, match="equal lengths"):
        mcnemar([True], [True, False])
    with pytest.raises(EngineError, match="at least one"):
        mcnemar([], [])


def test_paired_bootstrap_is_reproducible_with_its_seed():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.2, 1, 80), rng.normal(0, 1, 80)
    first, again = paired_bootstrap(a, b, seed=3), paired_bootstrap(a, b, seed=3)
    assert first == again
    other = paired_bootstrap(a, b, seed=4)
    assert other.ci_low != first.ci_low and other.effect == first.effect
    assert first.effect == pytest.approx(float(np.mean(a - b)))
    assert first.ci_low < first.effect < first.ci_high and first.discordant is None


def test_paired_bootstrap_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    covered = 0
    for seed in range(200):
        shared = rng.normal(0, 1, 100)  # the item effect both conditions share: what pairing removes
        a = shared + 0.3 + rng.normal(0, 0.5, 100)
        b = shared + rng.normal(0, 0.5, 100)
        result = paired_bootstrap(a, b, seed=seed, n_resamples=1000)
        covered += result.ci_low <= 0.3 <= result.ci_high
    assert 0.90 <= covered / 200 <= 0.99


def test_paired_bootstrap_p_value_is_small_for_a_clear_effect_and_large_for_none():
    rng = np.random.default_rng(5)
    shared = rng.normal(0, 1, 200)
    clear = paired_bootstrap(shared + 0.5 + rng.normal(0, 0.3, 200), shared, seed=0, n_resamples=2000)
    assert clear.p_value == pytest.approx(1 / 10_001)  # no random sign pattern comes near: the smallest p
    noise = rng.normal(0, 1, 200)
    null = paired_bootstrap(shared + noise, shared + noise[::-1], seed=0)
    assert null.effect == pytest.approx(0, abs=1e-12) and null.p_value == 1.0


def test_paired_bootstrap_p_value_agrees_with_a_normal_approximation():
    rng = np.random.default_rng(9)
    d = rng.normal(0.1, 1, 400)  # p near 0.05, where 10,000 sign flips pin it to a few percent
    result = paired_bootstrap(d, np.zeros(400), seed=1, n_resamples=20_000)
    z = abs(d.mean()) / (d.std() / math.sqrt(400))
    expected = math.erfc(z / math.sqrt(2))
    assert result.p_value == pytest.approx(expected, rel=0.25)


def test_paired_test_dispatches_by_name():
    a, b = paired(both=10, a_only=6, b_only=1, neither=3)
    assert paired_test(a, b, test="mcnemar", seed=0) == mcnemar(a, b)
    assert paired_test(a, b, test="bootstrap", seed=2) == paired_bootstrap(a, b, seed=2)
    with pytest.raises(EngineError, match="yes/no"):
        paired_test([0.2, 0.4], [0.1, 0.3], test="mcnemar", seed=0)


def test_sentences_state_test_size_effect_interval_and_p():
    result = mcnemar(*paired(both=20, a_only=9, b_only=1, neither=10))
    text = result.sentence("the friendly persona's accuracy minus the baseline's", items="statements")
    assert text.startswith("McNemar's exact test on 40 paired statements: the friendly persona's accuracy minus")
    assert "0.2 (95% CI" in text and text.endswith("p = 0.021.")
    boot = paired_bootstrap([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], seed=0)
    assert boot.sentence("the mean log-odds shift").startswith("A paired bootstrap on 3 paired items: ")
    rate = rate_effect([True] * 30 + [False] * 70, null_rate=0.5)
    assert rate.sentence("Refusal rate") == (
        "Refusal rate 0.3 of 100 (95% CI 0.212 to 0.4); exact binomial test against 0.5: p < 0.0001."
    )


def test_clopper_pearson_matches_known_values():
    assert clopper_pearson(5, 10) == pytest.approx((0.18709, 0.81291), abs=1e-5)
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 0.30850), abs=1e-5)
    assert clopper_pearson(1, 20) == pytest.approx((0.0012651, 0.24873), abs=1e-5)
    assert clopper_pearson(10, 10) == pytest.approx((0.69150, 1.0), abs=1e-5)


@pytest.mark.parametrize("n", [8, 40, 124])
def test_an_interval_excludes_zero_only_when_the_test_rejects(n):
    # "Supported" must mean the pre-registered test passed: a criterion reads the interval's bound.
    for a_only in range(0, min(n, 20) + 1):
        for b_only in range(0, min(n - a_only, 20) + 1):
            result = mcnemar(*paired(both=0, a_only=a_only, b_only=b_only, neither=n - a_only - b_only))
            if result.ci_low > 0 or result.ci_high < 0:
                assert result.p_value < 0.05, (a_only, b_only)
    for successes in range(n + 1):
        rate = rate_effect([True] * successes + [False] * (n - successes), null_rate=0.5)
        if rate.ci_low > 0.5 or rate.ci_high < 0.5:
            assert rate.p_value < 0.05, successes


def test_a_bootstrap_on_a_handful_of_items_claims_nothing_the_sign_flip_test_does_not():
    # Three identical differences: every resample has mean 1, but only 2 of 8 sign patterns are as extreme.
    result = paired_bootstrap([1.0] * 3, [0.0] * 3, seed=0)
    assert result.p_value == pytest.approx(0.25)
    assert result.ci_low <= 0 <= result.ci_high
    assert sign_flip_test(np.array([1.0, -1.0, 2.0]), seed=0) == pytest.approx(6 / 8)  # |2| seen in 6 of 8


def test_rate_effect_uses_clopper_pearson_and_the_exact_binomial_test():
    outcomes = [True] * 7 + [False] * 13
    result = rate_effect(outcomes, null_rate=0.5, confidence=0.9)
    assert result.rate == pytest.approx(0.35) and result.n == 20
    assert (result.ci_low, result.ci_high) == clopper_pearson(7, 20, confidence=0.9)
    assert result.p_value == pytest.approx(brute_force_two_sided(7, 20, 0.5))


def test_calibration_error_and_brier_score_by_hand():
    probs = [0.05, 0.15, 0.95, 0.95, 1.0]
    outcomes = [False, True, True, False, True]
    # Bins: [0, .1) holds 0.05 (outcome 0): |0.05 - 0|; [.1, .2) holds 0.15 (1): 0.85;
    # [.9, 1] holds 0.95, 0.95, 1.0 (outcomes 1, 0, 1): |0.9667 - 0.6667| = 0.3.
    expected = (0.05 + 0.85 + 3 * 0.3) / 5
    assert expected_calibration_error(probs, outcomes) == pytest.approx(expected)
    assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0
    assert brier_score(probs, outcomes) == pytest.approx((0.05**2 + 0.85**2 + 0.05**2 + 0.95**2 + 0) / 5)
    with pytest.raises(EngineError, match="between 0 and 1"):
        brier_score([1.2], [True])
