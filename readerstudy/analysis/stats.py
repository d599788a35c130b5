"""Proportions and agreement for reader studies.

Every function returns a result even for degenerate input (no answers, every
answer in one category): the undefined figures are None and `note` says why.
Intervals are 95% unless stated; the TOST interval is the matching 90% one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats
from statsmodels.stats import inter_rater

LEVEL = 0.95
Z = float(stats.norm.ppf(0.5 + LEVEL / 2))

NO_ANSWERS = "not defined: no answers"
ONE_CATEGORY = "not defined: every answer in one category"


@dataclass(frozen=True)
class Proportion:
    """successes / n with Clopper–Pearson (exact) and Wilson score intervals."""

    successes: int
    n: int
    estimate: float | None
    ci_clopper_pearson: tuple[float, float] | None
    ci_wilson: tuple[float, float] | None
    note: str | None = None


def proportion(successes: int, n: int, *, empty_note: str = NO_ANSWERS) -> Proportion:
    _check_counts(successes, n)
    if n == 0:
        return Proportion(0, 0, None, None, None, empty_note)
    return Proportion(successes, n, successes / n, clopper_pearson(successes, n), wilson(successes, n))


def clopper_pearson(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact interval from beta quantiles (closed form; scipy's binomtest finds
    the same limits by root search, many times slower)."""
    tail = (1 - level) / 2
    low = 0.0 if successes == 0 else float(special.betaincinv(successes, n - successes + 1, tail))
    high = 1.0 if successes == n else float(special.betaincinv(successes + 1, n - successes, 1 - tail))
    return low, high


def wilson(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval without continuity correction."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    centre = (successes + z**2 / 2) / (n + z**2)
    half = z / (n + z**2) * math.sqrt(successes * (n - successes) / n + z**2 / 4)
    return max(0.0, centre - half), min(1.0, centre + half)  # clamp rounding error at k = 0 or n


@dataclass(frozen=True)
class BinomialTest:
    """Exact two-sided binomial test of H0: proportion = null."""

    successes: int
    n: int
    null: float
    p: float | None
    note: str | None = None


def binomial_test(successes: int, n: int, *, null: float = 0.5) -> BinomialTest:
    _check_counts(successes, n)
    if n == 0:
        return BinomialTest(0, 0, null, None, NO_ANSWERS)
    return BinomialTest(successes, n, null, float(stats.binomtest(successes, n, null).pvalue))


@dataclass(frozen=True)
class Equivalence:
    """TOST of |proportion - center| < margin with exact one-sided binomial tests.

    verdict is "equivalent" (both one-sided nulls rejected), "not equivalent"
    (the 90% interval lies wholly outside center ± margin), "inconclusive",
    or "not defined" (no answers).
    """

    successes: int
    n: int
    center: float
    margin: float
    p_lower: float | None  # H0: proportion <= center - margin
    p_upper: float | None  # H0: proportion >= center + margin
    p: float | None  # the TOST p-value, max(p_lower, p_upper)
    ci: tuple[float, float] | None  # Clopper–Pearson 1 - 2*alpha interval
    verdict: str
    note: str | None = None


def tost_equivalence(
    successes: int, n: int, *, margin: float = 0.10, center: float = 0.5, alpha: float = 0.05
) -> Equivalence:
    _check_counts(successes, n)
    low, high = center - margin, center + margin
    if not (margin > 0 and 0 < low and high < 1):
        raise ValueError(f"center ± margin must lie inside (0, 1), got {center} ± {margin}")
    if n == 0:
        return Equivalence(0, 0, center, margin, None, None, None, None, "not defined", NO_ANSWERS)
    p_lower = float(stats.binom.sf(successes - 1, n, low))  # P(X >= successes | low)
    p_upper = float(stats.binom.cdf(successes, n, high))  # P(X <= successes | high)
    ci = clopper_pearson(successes, n, 1 - 2 * alpha)
    if max(p_lower, p_upper) < alpha:
        verdict = "equivalent"
    elif ci[0] > high or ci[1] < low:
        verdict = "not equivalent"
    else:
        verdict = "inconclusive"
    return Equivalence(successes, n, center, margin, p_lower, p_upper, max(p_lower, p_upper), ci, verdict)


@dataclass(frozen=True)
class SensitivitySpecificity:
    """Detection of the positive class: sensitivity = P(answer positive | positive)."""

    sensitivity: Proportion
    specificity: Proportion


def sensitivity_specificity(
    truth: Sequence[str], answers: Sequence[str], *, positive: str = "synthetic", negative: str = "real"
) -> SensitivitySpecificity:
    truth_arr, answer_arr = _labels(truth, answers, (negative, positive))
    pos = truth_arr == positive
    neg = truth_arr == negative
    hits = int((answer_arr[pos] == positive).sum())
    rejections = int((answer_arr[neg] == negative).sum())
    return SensitivitySpecificity(
        proportion(hits, int(pos.sum()), empty_note=f"not defined: no {positive} cases"),
        proportion(rejections, int(neg.sum()), empty_note=f"not defined: no {negative} cases"),
    )


@dataclass(frozen=True)
class Kappa:
    """A kappa with its asymptotic standard error and Wald 95% interval."""

    n: int
    estimate: float | None
    se: float | None
    ci: tuple[float, float] | None
    note: str | None = None


def contingency_table(a: Sequence[str], b: Sequence[str], categories: Sequence[str]) -> np.ndarray:
    """Counts with a's categories in rows and b's in columns, in the given order,
    so that a category nobody used still has its row and column."""
    a_arr, b_arr = _labels(a, b, categories)
    index = {category: i for i, category in enumerate(categories)}
    k = len(categories)
    flat = np.array([index[x] * k + index[y] for x, y in zip(a_arr, b_arr)], dtype=int)
    return np.bincount(flat, minlength=k * k).reshape(k, k)


def cohens_kappa(a: Sequence[str], b: Sequence[str], categories: Sequence[str]) -> Kappa:
    """Cohen's kappa (statsmodels) between two ratings of the same items, e.g.
    answers vs truth."""
    return _kappa(contingency_table(a, b, categories), weighted=False)


def quadratic_weighted_kappa(a: Sequence[str], b: Sequence[str], categories: Sequence[str]) -> Kappa:
    """Fleiss–Cohen (quadratic) weighted kappa; categories are ordered, equally spaced."""
    return _kappa(contingency_table(a, b, categories), weighted=True)


def _kappa(table: np.ndarray, *, weighted: bool) -> Kappa:
    n = int(table.sum())
    if n == 0:
        return Kappa(0, None, None, None, NO_ANSWERS)
    # Chance agreement is 1, and kappa 0/0, only when both ratings put every
    # item in the same single category.
    if np.any((table.sum(axis=0) == n) & (table.sum(axis=1) == n)):
        return Kappa(n, None, None, None, ONE_CATEGORY)
    # statsmodels also computes a z test against kappa = 0, which divides by
    # zero when one rating has a single category; only kappa and its SE are used.
    with np.errstate(divide="ignore", invalid="ignore"):
        result = inter_rater.cohens_kappa(table, wt="quadratic" if weighted else None)
    estimate = float(result["kappa"])
    var = float(result["var_kappa"])
    if not (math.isfinite(var) and var >= 0):
        return Kappa(n, estimate, None, None, "standard error not defined for this table")
    se = math.sqrt(var)
    return Kappa(n, estimate, se, (estimate - Z * se, estimate + Z * se))


def pairwise_kappa(ratings: Mapping[str, Mapping[str, str]], categories: Sequence[str]) -> dict[tuple[str, str], Kappa]:
    """Cohen's kappa for every pair of raters (rater -> item -> category), each
    over the items both rated; keys are (a, b) with a < b."""
    result = {}
    for a, b in combinations(sorted(ratings), 2):
        shared = sorted(ratings[a].keys() & ratings[b].keys())
        result[a, b] = cohens_kappa([ratings[a][i] for i in shared], [ratings[b][i] for i in shared], categories)
    return result


@dataclass(frozen=True)
class FleissKappa:
    """Fleiss' kappa with a case-bootstrap percentile 95% interval.

    Resamples in which every rating falls in one category have no kappa; they
    are counted in n_boot_undefined and left out of the percentiles.
    """

    n_items: int
    n_raters: int
    estimate: float | None
    ci: tuple[float, float] | None
    n_boot: int
    n_boot_undefined: int
    seed: int
    note: str | None = None


def category_counts(ratings: Sequence[Sequence[str]], categories: Sequence[str]) -> np.ndarray:
    """Items x categories counts from an items x raters matrix of labels."""
    index = {category: i for i, category in enumerate(categories)}
    counts = np.zeros((len(ratings), len(categories)), dtype=int)
    for row, item in zip(counts, ratings):
        for label in item:
            if label not in index:
                raise ValueError(f"unknown category {label!r}; expected one of {', '.join(categories)}")
            row[index[label]] += 1
    return counts


def fleiss_kappa(counts: ArrayLike, *, n_boot: int = 2000, seed: int = 0) -> FleissKappa:
    """Fleiss' kappa (statsmodels) of an items x categories count table in which
    every item has the same number of ratings."""
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2:
        raise ValueError("counts must be an items x categories table")
    if n_boot < 0:
        raise ValueError(f"n_boot must be 0 or more, got {n_boot}")
    n_items = table.shape[0]
    if n_items == 0:
        return FleissKappa(0, 0, None, None, n_boot, 0, seed, "not defined: no cases")
    per_item = table.sum(axis=1)
    n_raters = int(per_item[0])
    if not np.all(per_item == n_raters):
        raise ValueError("every item must have the same number of ratings")
    if n_raters < 2:
        return FleissKappa(n_items, n_raters, None, None, n_boot, 0, seed, "not defined: needs at least two readers")
    if np.any(table.sum(axis=0) == table.sum()):
        return FleissKappa(n_items, n_raters, None, None, n_boot, 0, seed, ONE_CATEGORY)
    estimate = float(inter_rater.fleiss_kappa(table))
    if n_boot == 0:
        return FleissKappa(n_items, n_raters, estimate, None, 0, 0, seed, "no bootstrap interval requested")

    # Kappa is a function of item sums: mean pairwise agreement per item and the
    # category totals. A resample only changes how often each item counts, so
    # every resample is a weight vector and the sums are one matrix product.
    agreement = ((table**2).sum(axis=1) - n_raters) / (n_raters * (n_raters - 1))
    rng = np.random.default_rng(seed)
    kappas = np.empty(n_boot)
    chunk = max(1, 2_000_000 // n_items)  # bounds memory at ~16 MB of weights
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        draws = rng.integers(0, n_items, size=(size, n_items))
        offsets = np.arange(size)[:, None] * n_items
        weights = np.bincount((draws + offsets).ravel(), minlength=size * n_items).reshape(size, n_items)
        observed = weights @ agreement / n_items
        shares = weights @ table / (n_items * n_raters)
        expected = (shares**2).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            kappas[start : start + size] = np.where(
                expected < 1 - 1e-12, (observed - expected) / (1 - expected), np.nan
            )
    defined = kappas[~np.isnan(kappas)]
    undefined = n_boot - defined.size
    if defined.size == 0:
        return FleissKappa(n_items, n_raters, estimate, None, n_boot, undefined, seed, "no resample had a defined kappa")
    low, high = np.percentile(defined, [50 * (1 - LEVEL), 50 * (1 + LEVEL)])
    note = f"{undefined} of {n_boot} resamples had every answer in one category" if undefined else None
    return FleissKappa(n_items, n_raters, estimate, (float(low), float(high)), n_boot, undefined, seed, note)


def _check_counts(successes: int, n: int) -> None:
    if not (0 <= successes <= n):
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")


def _labels(a: Sequence[str], b: Sequence[str], categories: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    a_arr = np.asarray(a, dtype=object)
    b_arr = np.asarray(b, dtype=object)
    if a_arr.shape != b_arr.shape or a_arr.ndim != 1:
        raise ValueError("the two ratings must be sequences of the same length")
    unknown = (set(a_arr) | set(b_arr)) - set(categories)
    if unknown:
        raise ValueError(f"unknown categories {sorted(unknown)}; expected {', '.join(categories)}")
    return a_arr, b_arr
