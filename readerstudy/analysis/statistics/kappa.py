"""Kappa for every kind of question: nominal and ordinal, two raters and many.

Two raters (Cohen 1960; weighted: Cohen 1968): kappa with the asymptotic
standard error of Fleiss, Cohen & Everitt (1969) for the interval and the
standard error under kappa = 0 for the z test, as SAS PROC FREQ (AGREE)
prints them. Weights: none (nominal), linear (Cicchetti-Allison, SAS's
default), quadratic (Fleiss-Cohen), or any agreement matrix (1 on the
diagonal, 0..1 elsewhere). Ordinal weights follow the categories' scores
(their numbers) or, without scores, equal spacing.

Many raters (Fleiss 1971): kappa for an items x categories count table with
the same number of ratings per item; its standard error under kappa = 0 from
Fleiss, Nee & Landis (1979), with z and p; and a jackknife (leave-one-item-
out) standard error for the estimate itself.

Degenerate input (no items, one category used, one item) gives None with a
reason; standard errors are compared with a relative tolerance, never `> 0`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))
TOLERANCE = 1e-8  # relative: an SE at or below TOLERANCE x max(|kappa|, 1) is zero (float noise)
WEIGHTS = ("none", "linear", "quadratic")


@dataclass(frozen=True)
class KappaTest:
    """A kappa with its SE and Wald interval, and the test of kappa = 0 (SE under H0, z, two-sided p)."""

    n: int
    estimate: float | None
    se: float | None
    ci: tuple[float, float] | None
    se0: float | None
    z: float | None
    p: float | None
    weights: str
    note: str | None = None


def agreement_weights(kind: str | ArrayLike, k: int, scores: Sequence[float] | None = None) -> np.ndarray:
    """The k x k agreement weights: "none", "linear", "quadratic", or a matrix given as is."""
    if not isinstance(kind, str):
        w = np.asarray(kind, dtype=float)
        if w.shape != (k, k) or not np.allclose(np.diag(w), 1) or (w < 0).any() or (w > 1).any():
            raise ValueError(f"custom weights must be a {k} x {k} matrix with 1 on the diagonal and values in 0..1")
        return w
    if kind == "none":
        return np.eye(k)
    values = np.arange(k, dtype=float) if scores is None else np.asarray(scores, dtype=float)
    if values.shape != (k,) or not np.all(np.diff(values) > 0):
        raise ValueError("scores must be increasing numbers, one per category")
    span = values[-1] - values[0] if k > 1 else 1.0
    distance = np.abs(values[:, None] - values[None, :]) / span
    if kind == "linear":
        return 1 - distance
    if kind == "quadratic":
        return 1 - distance**2
    raise ValueError(f"weights {kind!r} is not one of {', '.join(WEIGHTS)} or a matrix")


def cohen_kappa_test(table: ArrayLike, weights: str | ArrayLike = "none",
                     scores: Sequence[float] | None = None) -> KappaTest:
    """Cohen's (weighted) kappa of a k x k table (rater A in rows, B in columns)."""
    counts = np.asarray(table, dtype=float)
    k = counts.shape[0]
    if counts.ndim != 2 or counts.shape != (k, k):
        raise ValueError("the table must be square")
    label = weights if isinstance(weights, str) else "custom"
    n = int(counts.sum())
    if n == 0:
        return KappaTest(0, None, None, None, None, None, None, label, "not defined: no items")
    w = agreement_weights(weights, k, scores)
    p = counts / n
    row, col = p.sum(axis=1), p.sum(axis=0)
    observed = float((w * p).sum())
    expected = float((w * np.outer(row, col)).sum())
    if math.isclose(expected, 1.0, rel_tol=0, abs_tol=1e-12):
        return KappaTest(n, None, None, None, None, None, None, label,
                         "not defined: both raters used one single category (chance agreement is 1)")
    kappa = (observed - expected) / (1 - expected)
    w_row = w @ col  # w_i. = sum_j w_ij p_.j
    w_col = row @ w  # w_.j = sum_i p_i. w_ij
    # Fleiss, Cohen & Everitt (1969): asymptotic variance, and under kappa = 0.
    term = (w - (w_row[:, None] + w_col[None, :]) * (1 - kappa)) ** 2
    var = ((p * term).sum() - (kappa - expected * (1 - kappa)) ** 2) / (n * (1 - expected) ** 2)
    term0 = (w - (w_row[:, None] + w_col[None, :])) ** 2
    var0 = ((np.outer(row, col) * term0).sum() - expected**2) / (n * (1 - expected) ** 2)
    scale = max(abs(kappa), 1.0)
    se = math.sqrt(var) if var > (TOLERANCE * scale) ** 2 else None
    se0 = math.sqrt(var0) if var0 > (TOLERANCE * scale) ** 2 else None
    notes = []
    ci = None
    if se is None:
        notes.append("no interval: the standard error is zero (e.g. perfect agreement)")
    else:
        ci = (max(-1.0, kappa - Z95 * se), min(1.0, kappa + Z95 * se))
    z = p_value = None
    if se0 is None:
        notes.append("no test of kappa = 0: its standard error under the null is zero")
    else:
        z = kappa / se0
        p_value = float(2 * stats.norm.sf(abs(z)))
    if n == 1:
        notes.append("one item only")
    return KappaTest(n, float(kappa), se, ci, se0, z, p_value, label, "; ".join(notes) or None)


@dataclass(frozen=True)
class FleissTest:
    """Fleiss' kappa with its SE under kappa = 0 (Fleiss, Nee & Landis 1979), z and
    two-sided p, and a jackknife SE with its Wald interval."""

    n_items: int
    n_raters: int
    estimate: float | None
    se0: float | None
    z: float | None
    p: float | None
    se_jackknife: float | None
    ci_jackknife: tuple[float, float] | None
    category_kappas: tuple[float | None, ...]
    note: str | None = None


def _fleiss(counts: np.ndarray) -> tuple[float, np.ndarray]:
    """(kappa, per-category kappas) of an items x categories table; NaN where undefined."""
    n_items, _ = counts.shape
    m = counts.sum(axis=1)[0]
    p = counts.sum(axis=0) / (n_items * m)
    agree = ((counts * (counts - 1)).sum(axis=1) / (m * (m - 1))).mean()
    chance = (p**2).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (agree - chance) / (1 - chance) if chance < 1 else np.nan
        per_category = 1 - (counts * (m - counts)).sum(axis=0) / (n_items * m * (m - 1) * p * (1 - p))
    return float(kappa), per_category


def fleiss_kappa_test(counts: ArrayLike) -> FleissTest:
    """Fleiss' kappa of an items x categories count table (every item rated by the same number of raters)."""
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2:
        raise ValueError("counts must be an items x categories table")
    n_items, k = table.shape
    m = int(table.sum(axis=1)[0]) if n_items else 0
    if n_items and not np.all(table.sum(axis=1) == m):
        raise ValueError("every item must have the same number of ratings")

    def undefined(note: str) -> FleissTest:
        return FleissTest(n_items, m, None, None, None, None, None, None, (None,) * k, note)

    if n_items == 0:
        return undefined("not defined: no cases")
    if m < 2:
        return undefined("not defined: needs at least two raters per case")
    if n_items < 2:
        return undefined("not defined: one case only (chance agreement cannot be estimated from one case)")
    p = table.sum(axis=0) / (n_items * m)
    if np.isclose(p.max(), 1.0):
        return undefined("not defined: every rating in one category")
    kappa, per_category = _fleiss(table)
    q = 1 - p
    pq = (p * q).sum()
    var0 = 2 / (n_items * m * (m - 1)) * (pq**2 - (p * q * (q - p)).sum()) / pq**2
    scale = max(abs(kappa), 1.0)
    se0 = math.sqrt(var0) if var0 > (TOLERANCE * scale) ** 2 else None
    z = kappa / se0 if se0 is not None else None
    p_value = float(2 * stats.norm.sf(abs(z))) if z is not None else None
    # Jackknife over items: leave each out in turn.
    loo = np.array([_fleiss(np.delete(table, i, axis=0))[0] for i in range(n_items)])
    notes = []
    se_jack = ci = None
    if np.isnan(loo).any():
        notes.append("no jackknife interval: leaving out some case leaves every rating in one category")
    else:
        var_jack = (n_items - 1) / n_items * ((loo - loo.mean()) ** 2).sum()
        if var_jack > (TOLERANCE * scale) ** 2:
            se_jack = math.sqrt(var_jack)
            ci = (max(-1.0, kappa - Z95 * se_jack), min(1.0, kappa + Z95 * se_jack))
        else:
            notes.append("no interval: the jackknife standard error is zero (e.g. perfect agreement)")
    categories = tuple(None if not np.isfinite(v) else float(v) for v in per_category)
    return FleissTest(n_items, m, kappa, se0, z, p_value, se_jack, ci, categories, "; ".join(notes) or None)


def jackknife_kappa(a: ArrayLike, b: ArrayLike, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cohen's kappa per row of two (readers, cases) arrays of category indexes
    (0..k-1), and its leave-one-case-out values: (kappa (readers,), loo
    (readers, cases)); NaN where not defined. For the OR analysis of kappa."""
    from .stats import kappa_arrays  # the vectorised formulas

    a, b = np.asarray(a, dtype=int), np.asarray(b, dtype=int)
    r, c = a.shape
    onehot = np.zeros((r, c, k, k))
    onehot[np.arange(r)[:, None], np.arange(c)[None, :], a, b] = 1
    tables = onehot.sum(axis=1)
    fom, _ = kappa_arrays(tables)
    loo, _ = kappa_arrays(tables[:, None] - onehot)
    return np.asarray(fom, dtype=float), np.asarray(loo, dtype=float)
