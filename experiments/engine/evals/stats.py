"""Paired tests and intervals for behavioural evaluations: the same items scored under two conditions.

- `mcnemar`: McNemar's exact test on paired yes/no outcomes (a two-sided binomial test on the discordant
  pairs). Its interval for the difference of the paired proportions is the hull of Newcombe's hybrid score
  interval (Newcombe 1998, "Improved confidence intervals for the difference between binomial proportions based
  on paired data", Statistics in Medicine 17, method 10: built from the two Wilson intervals and the phi
  correlation, whose positive values are reduced by N/2 as Newcombe prescribes) and the exact conditional
  interval (Clopper-Pearson for the share of discordant pairs going one way, scaled by the discordant share).
  The conditional interval excludes zero exactly when the test rejects at the same level, so the hull does so
  only then: a criterion reading the interval's bound never claims more than the test.
- `paired_bootstrap`: a seeded bootstrap over items of the mean paired difference (percentile interval), tested
  by sign flips (the paired permutation test: exact over every sign pattern for up to 16 non-zero differences,
  else 10,000 seeded flips). When the test does not reject, the interval is widened to include zero, for the
  same reason.
- `wilson_interval`, `clopper_pearson`, `binomial_test`, `rate_effect`: one proportion against a null rate
  (`rate_effect` reports the exact Clopper-Pearson interval, which for a null rate of one half excludes it exactly
  when the exact test rejects).
- `expected_calibration_error`, `brier_score`: how well stated probabilities match outcomes.

Only numpy and the standard library (the normal quantile comes from `statistics.NormalDist`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from statistics import NormalDist
from typing import Literal

import numpy as np

from experiments.engine.errors import EngineError

# R's binom.test counts outcomes "no more likely than the observed one" with this relative slack, so that
# outcomes equally likely in exact arithmetic are not split by rounding.
_RELATIVE_TOLERANCE = 1 + 1e-7
# Bootstrap resamples are drawn in chunks of about this many item indices, to bound memory for large sets.
_BOOTSTRAP_CHUNK = 2_000_000


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise EngineError(f"confidence must lie strictly between 0 and 1, not {confidence}.")
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def _number(x: float) -> str:
    """Up to three decimals, trailing zeros dropped ("0.125", "0.06", "-0.2")."""
    text = f"{x:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _p_text(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}"


@dataclass(frozen=True)
class PairedEffect:
    """The difference between two conditions on the same items, with its interval and two-sided p-value."""

    test: Literal["mcnemar", "bootstrap"]
    n: int  # paired items
    effect: float  # mean(a) - mean(b)
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float  # two-sided
    discordant: tuple[int, int] | None  # McNemar: (a true & b false, a false & b true)

    def sentence(self, what: str, *, items: str = "items") -> str:
        """One sentence for a report, e.g. "McNemar's exact test on 200 paired statements: <what> 0.125
        (95% CI 0.06 to 0.19), p = 0.0003." (`items` names what was paired)."""
        name = "McNemar's exact test" if self.test == "mcnemar" else "A paired bootstrap"
        level = f"{self.confidence * 100:g}%"
        return (
            f"{name} on {self.n} paired {items}: {what} {_number(self.effect)} "
            f"({level} CI {_number(self.ci_low)} to {_number(self.ci_high)}), {_p_text(self.p_value)}."
        )


@dataclass(frozen=True)
class RateEffect:
    """One proportion (e.g. a refusal rate) with its exact interval and an exact test against a null rate."""

    rate: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float  # two-sided, against null_rate
    null_rate: float
    n: int

    def sentence(self, what: str) -> str:
        """E.g. "<what> 0.42 of 200 (95% CI 0.35 to 0.49); exact binomial test against 0.5: p = 0.03."."""
        level = f"{self.confidence * 100:g}%"
        return (
            f"{what} {_number(self.rate)} of {self.n} ({level} CI {_number(self.ci_low)} to "
            f"{_number(self.ci_high)}); exact binomial test against {_number(self.null_rate)}: {_p_text(self.p_value)}."
        )


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a proportion (Wilson 1927); (0, 1) when n is 0."""
    if not 0 <= successes <= n:
        raise EngineError(f"successes must lie between 0 and n ({n}), not {successes}.")
    z = _z(confidence)
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    low, high = (centre - spread) / denominator, (centre + spread) / denominator
    # The bounds are exactly 0 and 1 at the extremes; rounding could leave them a hair outside.
    return (0.0 if successes == 0 else max(0.0, low)), (1.0 if successes == n else min(1.0, high))


@cache
def _log_choose(n: int) -> np.ndarray:
    """log C(n, k) for k = 0..n (kept: an interval's bisection asks for the same n sixty times)."""
    return np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(n + 1)])


def _binomial_pmf(n: int, p: float) -> np.ndarray:
    """P(X = k) for k = 0..n, computed in log space so large n does not overflow."""
    k = np.arange(n + 1)
    log_choose = _log_choose(n)
    if p == 0.0 or p == 1.0:
        out = np.zeros(n + 1)
        out[0 if p == 0.0 else n] = 1.0
        return out
    return np.exp(log_choose + k * math.log(p) + (n - k) * math.log1p(-p))


def _tail_at_least(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return float(_binomial_pmf(n, p)[k:].sum())


def clopper_pearson(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval for a proportion: the rates p at which neither tail of the observed
    count is below (1 - confidence) / 2, found by bisection; (0, 1) when n is 0."""
    if not 0 <= successes <= n:
        raise EngineError(f"successes must lie between 0 and n ({n}), not {successes}.")
    half = (1 - confidence) / 2
    _z(confidence)
    if n == 0:
        return 0.0, 1.0

    def solve(increasing_tail, target: float) -> float:
        low, high = 0.0, 1.0
        for _ in range(60):  # 2**-60: far below any printed digit
            middle = (low + high) / 2
            if increasing_tail(middle) < target:
                low = middle
            else:
                high = middle
        return (low + high) / 2

    lower = 0.0 if successes == 0 else solve(lambda p: _tail_at_least(successes, n, p), half)
    # The upper bound: where P(X <= successes) = half, i.e. P(X >= successes + 1) = 1 - half (rising with p).
    upper = 1.0 if successes == n else solve(lambda p: _tail_at_least(successes + 1, n, p), 1 - half)
    return lower, upper


def binomial_test(successes: int, n: int, p0: float) -> float:
    """Exact two-sided binomial test: the probability under p0 of all outcomes no more likely than the observed."""
    if not 0 <= successes <= n:
        raise EngineError(f"successes must lie between 0 and n ({n}), not {successes}.")
    if not 0 <= p0 <= 1:
        raise EngineError(f"the null rate must lie between 0 and 1, not {p0}.")
    if n == 0:
        return 1.0
    pmf = _binomial_pmf(n, p0)
    observed = pmf[successes]
    return float(min(1.0, pmf[pmf <= observed * _RELATIVE_TOLERANCE].sum()))


def _booleans(values: Sequence[bool], name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise EngineError(f"{name} must be a flat sequence.")
    if array.size and not np.isin(array, (0, 1, True, False)).all():
        raise EngineError(f"McNemar's test needs yes/no outcomes; {name} holds other values.")
    return array.astype(bool)


def _paired_lengths(a: Sequence, b: Sequence) -> int:
    if len(a) != len(b):
        raise EngineError(f"Paired outcomes must have equal lengths, not {len(a)} and {len(b)}.")
    if len(a) == 0:
        raise EngineError("A paired test needs at least one item.")
    return len(a)


def newcombe_interval(
    both: int, a_only: int, b_only: int, neither: int, *, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) for the difference of two paired proportions, from the 2x2
    counts of paired yes/no outcomes."""
    n = both + a_only + b_only + neither
    p1, p2 = (both + a_only) / n, (both + b_only) / n
    l1, u1 = wilson_interval(both + a_only, n, confidence=confidence)
    l2, u2 = wilson_interval(both + b_only, n, confidence=confidence)
    margins = (both + a_only) * (neither + b_only) * (both + b_only) * (neither + a_only)
    cross = both * neither - a_only * b_only
    # Newcombe's phi: a positive association counts only beyond N/2 (a continuity allowance, which keeps a weak
    # positive correlation from narrowing the interval); a negative one counts in full; 0 with an empty margin.
    if cross > 0:
        cross = max(0.0, cross - n / 2)
    phi = cross / math.sqrt(margins) if margins > 0 else 0.0
    effect = p1 - p2
    # Newcombe's hybrid: the square-and-add of the two Wilson margins, corrected for their correlation phi.
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    epsilon = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, effect - delta), min(1.0, effect + epsilon)


def mcnemar(a: Sequence[bool], b: Sequence[bool], *, confidence: float = 0.95) -> PairedEffect:
    """McNemar's exact test of paired yes/no outcomes, and an interval for mean(a) - mean(b): the hull of
    Newcombe's method-10 interval and the exact conditional one, which excludes zero only when the test rejects."""
    n = _paired_lengths(a, b)
    x, y = _booleans(a, "a"), _booleans(b, "b")
    both = int((x & y).sum())
    a_only = int((x & ~y).sum())
    b_only = int((~x & y).sum())
    neither = n - both - a_only - b_only
    discordant = a_only + b_only
    # Under the null, each discordant pair is equally likely to go either way.
    p_value = 1.0 if discordant == 0 else binomial_test(a_only, discordant, 0.5)

    low, high = newcombe_interval(both, a_only, b_only, neither, confidence=confidence)
    # The exact conditional interval: given the discordant pairs, the share going a's way is binomial, and the
    # effect is (discordant / n) * (2 * share - 1).
    low_share, high_share = clopper_pearson(a_only, discordant, confidence=confidence)
    scale = discordant / n
    effect = (a_only - b_only) / n
    return PairedEffect(
        test="mcnemar",
        n=n,
        effect=effect,
        ci_low=max(-1.0, min(low, scale * (2 * low_share - 1))),
        ci_high=min(1.0, max(high, scale * (2 * high_share - 1))),
        confidence=confidence,
        p_value=p_value,
        discordant=(a_only, b_only),
    )


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, seed: int, n_resamples: int = 10_000, confidence: float = 0.95
) -> PairedEffect:
    """A bootstrap over items of mean(a - b): the percentile interval, and the two-sided p-value of the paired
    sign-flip test (`sign_flip_test`). The interval is widened to include zero when the test does not reject at
    1 - confidence, so that an interval excluding zero always means the test passed."""
    n = _paired_lengths(a, b)
    _z(confidence)
    if n_resamples < 1:
        raise EngineError("A bootstrap needs at least one resample.")
    diffs = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not np.isfinite(diffs).all():
        raise EngineError("Paired values must be finite numbers.")
    effect = float(diffs.mean())
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    rows = max(1, _BOOTSTRAP_CHUNK // n)
    for start in range(0, n_resamples, rows):
        stop = min(n_resamples, start + rows)
        picks = rng.integers(0, n, size=(stop - start, n))  # [resamples, items]: item indices drawn with replacement
        means[start:stop] = diffs[picks].mean(axis=1)
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    p_value = sign_flip_test(diffs, seed=seed)
    if p_value >= alpha:  # the test does not reject: the interval a criterion reads must not either
        low, high = min(low, 0.0), max(high, 0.0)
    return PairedEffect(
        test="bootstrap",
        n=n,
        effect=effect,
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        p_value=p_value,
        discordant=None,
    )


_EXACT_FLIPS = 16  # up to this many non-zero differences, every sign pattern is enumerated
_RANDOM_FLIPS = 10_000


def sign_flip_test(diffs: np.ndarray, *, seed: int) -> float:
    """Two-sided p-value of the paired permutation test: under no difference each item's difference is as likely
    to have either sign, so the share of sign patterns whose mean is at least as far from zero as the observed
    one. Exact over all patterns for few non-zero differences; else seeded random flips (+1 smoothed)."""
    nonzero = diffs[diffs != 0]
    if nonzero.size == 0:
        return 1.0
    observed = abs(nonzero.sum()) * (1 - 1e-12)  # equal sums are "as extreme", whatever the rounding
    if nonzero.size <= _EXACT_FLIPS:
        patterns = ((np.arange(2**nonzero.size)[:, None] >> np.arange(nonzero.size)) & 1) * 2 - 1
        return float((np.abs(patterns @ nonzero) >= observed).mean())
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(_RANDOM_FLIPS, nonzero.size))
    extreme = int((np.abs(signs @ nonzero) >= observed).sum())
    return (extreme + 1) / (_RANDOM_FLIPS + 1)


def paired_test(
    a: Sequence, b: Sequence, *, test: Literal["mcnemar", "bootstrap"], seed: int, confidence: float = 0.95
) -> PairedEffect:
    """`mcnemar` (yes/no outcomes) or `paired_bootstrap` (any numbers), by name."""
    if test == "mcnemar":
        return mcnemar(a, b, confidence=confidence)
    if test == "bootstrap":
        return paired_bootstrap(a, b, seed=seed, confidence=confidence)
    raise EngineError(f"Unknown paired test {test!r}; choose 'mcnemar' or 'bootstrap'.")


def rate_effect(outcomes: Sequence[bool], *, null_rate: float, confidence: float = 0.95) -> RateEffect:
    """The share of true outcomes, its exact (Clopper-Pearson) interval, and the exact binomial test against
    `null_rate`."""
    values = _booleans(outcomes, "outcomes")
    if values.size == 0:
        raise EngineError("A rate needs at least one outcome.")
    n, successes = int(values.size), int(values.sum())
    low, high = clopper_pearson(successes, n, confidence=confidence)
    return RateEffect(
        rate=successes / n,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        p_value=binomial_test(successes, n, null_rate),
        null_rate=null_rate,
        n=n,
    )


def _probabilities(probs: Sequence[float], outcomes: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = _booleans(outcomes, "outcomes").astype(np.float64)
    if p.shape != y.shape or p.ndim != 1 or p.size == 0:
        raise EngineError("Probabilities and outcomes must be equally long, non-empty flat sequences.")
    if not ((p >= 0) & (p <= 1)).all():
        raise EngineError("Probabilities must lie between 0 and 1.")
    return p, y


def expected_calibration_error(probs: Sequence[float], outcomes: Sequence[bool], *, n_bins: int = 10) -> float:
    """Expected calibration error over `n_bins` equal-width bins of [0, 1] (the last bin includes 1):
    the item-weighted mean of |mean stated probability - share of true outcomes| per bin."""
    if n_bins < 1:
        raise EngineError("n_bins must be at least 1.")
    p, y = _probabilities(probs, outcomes)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.sum() * abs(p[inside].mean() - y[inside].mean())
    return float(total / p.size)


def brier_score(probs: Sequence[float], outcomes: Sequence[bool]) -> float:
    """Mean squared difference between stated probabilities and the 0/1 outcomes (Brier 1950)."""
    p, y = _probabilities(probs, outcomes)
    return float(np.mean((p - y) ** 2))
