"""Proportions and agreement for reader studies.

Every function returns a result even for degenerate input (no answers, every
answer in one category): the undefined figures are None and `note` says why.
Intervals are 95% unless stated; the TOST interval is the matching 90% one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import combinations
from typing import Iterable, Mapping, Sequence

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
    """A kappa with its asymptotic standard error and Wald 95% interval (clipped to [-1, 1])."""

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


def quadratic_weighted_kappa(
    a: Sequence[str], b: Sequence[str], categories: Sequence[str], scores: Sequence[float] | None = None
) -> Kappa:
    """Fleiss–Cohen (quadratic) weighted kappa; categories are ordered. Their
    spacing is given by scores (ascending numbers, one per category, e.g. the
    grades 0..4 themselves) or, without scores, taken as equal."""
    return _kappa(contingency_table(a, b, categories), weighted=True, scores=scores)


def _kappa(table: np.ndarray, *, weighted: bool, scores: Sequence[float] | None = None) -> Kappa:
    # kappa_arrays has statsmodels' formulas (tests/test_stats.py checks them
    # against statsmodels.stats.inter_rater.cohens_kappa) at a fraction of its
    # cost per call, and no division-by-zero warnings on degenerate tables.
    kappa, var = kappa_arrays(table, weighted=weighted, scores=scores)
    return kappa_result(int(table.sum()), float(kappa), float(var))


def _scores(scores: Sequence[float] | None, k: int) -> np.ndarray:
    if scores is None:
        return np.arange(k, dtype=float)
    values = np.asarray(scores, dtype=float)
    if values.shape != (k,) or not np.all(np.diff(values) > 0):
        raise ValueError("scores must be increasing numbers, one per category")
    return values


def kappa_arrays(tables: ArrayLike, *, scores: Sequence[float] | None = None, weighted: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Cohen's kappa and its asymptotic variance for a stack of k x k tables
    (shape (..., k, k)) at once: statsmodels' formulas (Fleiss, Cohen & Everitt
    1969), vectorised for pairwise matrices and bootstraps.

    weighted: quadratic weights from scores (as in quadratic_weighted_kappa).
    Returns (kappa, variance) arrays of shape (...); kappa is NaN where it is
    not defined (no items, or both ratings in one single category), the
    variance NaN where kappa is or where the formula gives no valid variance.
    """
    table = np.asarray(tables, dtype=float)
    k = table.shape[-1]
    n = table.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        nn = n[..., None, None]
        probs = table / nn
        row = table.sum(axis=-1) / n[..., None]  # (..., k): first rating
        col = table.sum(axis=-2) / n[..., None]  # second rating
        one_category = np.any((row == 1) & (col == 1), axis=-1)
        if not weighted:
            agree = np.trace(probs, axis1=-2, axis2=-1)
            expected = (row * col).sum(axis=-1)
            kappa = (agree - expected) / (1 - expected)
            diag = np.diagonal(probs, axis1=-2, axis2=-1)
            term_a = (diag * (1 - (row + col) * (1 - kappa[..., None])) ** 2).sum(axis=-1)
            off = ~np.eye(k, dtype=bool)
            term_b = (probs * (col[..., :, None] + row[..., None, :]) ** 2 * off).sum(axis=(-2, -1))
            term_b = (1 - kappa) ** 2 * term_b
            term_c = (kappa - expected * (1 - kappa)) ** 2
            var = (term_a + term_b - term_c) / (1 - expected) ** 2 / n
        else:
            values = _scores(scores, k)
            disagree = (values[:, None] - values[None, :]) ** 2 / (values[-1] - values[0]) ** 2
            w = 1 - disagree
            prob_exp = row[..., :, None] * col[..., None, :]
            kappa = 1 - (disagree * probs).sum(axis=(-2, -1)) / (disagree * prob_exp).sum(axis=(-2, -1))
            w_row = (col[..., None, :] * w).sum(axis=-1)  # (..., k) over rows
            w_col = (row[..., :, None] * w).sum(axis=-2)  # (..., k) over columns
            agree_wexp = (w * prob_exp).sum(axis=(-2, -1))
            term_a = (probs * (w - (w_col[..., None, :] + w_row[..., :, None]) * (1 - kappa[..., None, None])) ** 2)
            var = (term_a.sum(axis=(-2, -1)) - (kappa - agree_wexp * (1 - kappa)) ** 2) / ((1 - agree_wexp) ** 2 * n)
    undefined = (n == 0) | one_category
    kappa = np.where(undefined, np.nan, kappa)
    var = np.where(undefined | ~np.isfinite(var) | (var < 0), np.nan, var)
    return kappa, var


def kappa_result(n: int, kappa: float, var: float) -> Kappa:
    """A Kappa (Wald 95% interval) from one element of kappa_arrays, with the notes _kappa gives."""
    if n == 0:
        return Kappa(0, None, None, None, NO_ANSWERS)
    if math.isnan(kappa):
        return Kappa(n, None, None, None, ONE_CATEGORY)
    if math.isnan(var):
        return Kappa(n, float(kappa), None, None, "standard error not defined for this table")
    se = math.sqrt(var)
    if se <= 1e-8 * max(abs(float(kappa)), 1.0):
        # A zero (or float-noise) SE, e.g. perfect agreement: no zero-width interval is printed.
        return Kappa(n, float(kappa), se, None, "no interval: the standard error is zero (e.g. perfect agreement)")
    # Kappa lies in [-1, 1]; the Wald interval is clipped to it.
    return Kappa(n, float(kappa), se, (max(-1.0, float(kappa) - Z * se), min(1.0, float(kappa) + Z * se)))


def ordered_categories(values: Iterable[str]) -> tuple[list[str], list[float] | None]:
    """The distinct non-empty values in natural order, with their numeric
    scores when every value is a number (then ordered by value, so "10" comes
    after "9" and the spacing of weights follows the numbers), else None."""
    distinct = {value for value in values if value != ""}
    if not distinct:
        return [], None
    try:
        numbers = {value: float(value) for value in distinct}
    except ValueError:
        numbers = None
    if numbers is not None and all(math.isfinite(v) for v in numbers.values()):
        ordered = sorted(distinct, key=lambda value: (numbers[value], value))
        scores = [numbers[value] for value in ordered]
        if len(set(scores)) == len(scores):  # "1" and "1.0" would share a score
            return ordered, scores
    return sorted(distinct, key=_natural_key), None


def _natural_key(text: str) -> list:
    parts = re.split(r"(\d+)", text)
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.casefold()) for part in parts if part]


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
    if n_items < 2:
        return FleissKappa(n_items, n_raters, None, None, n_boot, 0, seed,
                           "not defined: one case only (chance agreement cannot be estimated from one case)")
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
