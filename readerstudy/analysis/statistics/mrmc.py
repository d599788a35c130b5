"""Empirical ROC AUC and Obuchowski–Rockette multi-reader multi-case analysis.

The analysis follows the Iowa OR-DBM MRMC program (Hillis 2007; Hillis,
Obuchowski, Schartz & Berbaum 2005) with trapezoidal (Wilcoxon) AUC and
jackknife error covariances, and reproduces its output on the Van Dyke data
set to the printed precision (tests/test_mrmc.py):

* random readers and random cases: F test with Hillis' denominator degrees of
  freedom, t intervals for differences and for each treatment;
* fixed readers, random cases: chi-square and z intervals, also per reader;
* random readers, fixed cases: the conventional treatment x reader ANOVA.

Scores are "higher = more likely positive"; truth is 1 for positive cases.

The same analysis applies to any figure of merit with jackknife pseudovalues
over cases: obuchowski_rockette_proportion does it for the proportion of
correct answers per reader (e.g. a two-alternative forced-choice study, where
there is no score to rank). Both go through or_analysis, which takes the
(treatment, reader) figures of merit and their leave-one-case-out values, so
a comparison between treatments (e.g. synthetic sources) needs only the data
arranged with a treatment axis.

Cases nested in treatments (ragged_obuchowski_rockette and
ragged_obuchowski_rockette_proportion): when treatments are synthetic sources,
a case belongs to one source (paired design: its synthetic image comes from
one generator), or a set of cases is shared by every treatment (mixed design:
the real cases, against which every source's synthetic images are ranked).
Treatment t then has its own case set S_t, and its figure of merit uses only
S_t. The jackknife leaves out each case of the union U of the S_t in turn; a
case outside S_t leaves treatment t's figure unchanged. The covariances of
or_analysis then come from these leave-one-out values over U, with U's size
as the number of cases, so cases with a random source are the sampling unit.
Consequences: two treatments with disjoint case sets get zero jackknife
covariance for the proportion correct (exactly: outside its set a
treatment's leave-one-out value equals the mean of its values) and nearly zero
for an AUC; shared cases (the real cases of a mixed design) carry the
covariance between treatments. The variance of a treatment's own figure is
scaled by (|U| - 1)/|U| instead of (|S_t| - 1)/|S_t|, which for a proportion is
larger by the factor (|U| - 1)|S_t| / (|U| (|S_t| - 1)) = 1 + O(1/|S_t|)
(about +0.5% for 100 cases in a set of 200). With every case in every
treatment it is exactly the crossed analysis (tests/test_mrmc.py checks this
on the Van Dyke data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


@dataclass(frozen=True)
class AucEstimate:
    """Empirical AUC with DeLong's standard error; None values come with a note."""

    auc: float | None
    se: float | None
    n_positive: int
    n_negative: int
    note: str | None = None


def _split(scores: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth)
    if truth.ndim != 1 or scores.shape[-1] != truth.shape[0]:
        raise ValueError("scores must have the cases on the last axis, one truth value per case")
    if not np.isin(truth, (0, 1)).all():
        raise ValueError("truth must be 0 (negative) or 1 (positive)")
    return scores, truth == 1, truth == 0


def _placements(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong placement values: per positive, the share of negatives it outranks
    (ties count half); per negative, the share of positives that outrank it."""
    neg_sorted = np.sort(neg)
    pos_sorted = np.sort(pos)
    below = np.searchsorted(neg_sorted, pos, "left") + np.searchsorted(neg_sorted, pos, "right")
    v10 = below / (2 * neg.size)
    above = 2 * pos.size - np.searchsorted(pos_sorted, neg, "left") - np.searchsorted(pos_sorted, neg, "right")
    v01 = above / (2 * pos.size)
    return v10, v01


def empirical_auc(scores: ArrayLike, truth: ArrayLike) -> float:
    """Trapezoidal AUC (the Mann–Whitney statistic); needs a positive and a negative case."""
    scores, pos, neg = _split(scores, truth)
    if not pos.any() or not neg.any():
        raise ValueError("AUC needs at least one positive and one negative case")
    v10, _ = _placements(scores[pos], scores[neg])
    return float(v10.mean())


def delong_auc(scores: ArrayLike, truth: ArrayLike) -> AucEstimate:
    """Empirical AUC and DeLong, DeLong & Clarke-Pearson (1988) standard error."""
    scores, pos, neg = _split(scores, truth)
    m, n = int(pos.sum()), int(neg.sum())
    if m == 0 or n == 0:
        return AucEstimate(None, None, m, n, "not defined: needs at least one positive and one negative case")
    v10, v01 = _placements(scores[pos], scores[neg])
    auc = float(v10.mean())
    if m < 2 or n < 2:
        return AucEstimate(auc, None, m, n, "standard error not defined: fewer than two positive or negative cases")
    se = math.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n)
    return AucEstimate(auc, se, m, n)


def jackknife_auc(scores: ArrayLike, truth: ArrayLike) -> np.ndarray:
    """Leave-one-case-out AUCs; same shape as scores (cases on the last axis).

    Uses placement values, so the whole jackknife costs one sort per reading
    instead of one AUC per deleted case.
    """
    scores, pos, neg = _split(scores, truth)
    m, n = int(pos.sum()), int(neg.sum())
    if m < 2 or n < 2:
        raise ValueError("the jackknife needs at least two positive and two negative cases")
    flat = scores.reshape(-1, scores.shape[-1])
    out = np.empty_like(flat)
    for row, pseudo in zip(flat, out):
        v10, v01 = _placements(row[pos], row[neg])
        auc = v10.mean()
        pseudo[pos] = (m * auc - v10) / (m - 1)
        pseudo[neg] = (n * auc - v01) / (n - 1)
    return out.reshape(scores.shape)


@dataclass(frozen=True)
class GlobalTest:
    """Test of equal treatment AUCs: F (df2 set) or chi-square (df2 None)."""

    statistic: float
    df1: float
    df2: float | None
    p: float


@dataclass(frozen=True)
class Interval:
    """An AUC or AUC difference with its interval; df None means a z interval.

    statistic and p test "difference = 0" and are None for single AUCs.
    """

    label: str
    estimate: float
    se: float
    df: float | None
    ci: tuple[float, float]
    statistic: float | None = None
    p: float | None = None


@dataclass(frozen=True)
class Analysis:
    """One of the three OR analyses. test and differences need two treatments;
    readers (single-reader differences) is filled by the fixed-reader analysis only."""

    test: GlobalTest | None
    differences: tuple[Interval, ...]
    treatments: tuple[Interval, ...]
    readers: tuple[Interval, ...] = ()


@dataclass(frozen=True)
class ORResult:
    """Obuchowski–Rockette results; names follow the OR-DBM MRMC output.

    Figures that need two treatments (ms_t, ms_tr, cov1, cov3, var_r, var_tr,
    cov1_reader) are None with a single treatment. `auc` holds the figure of
    merit, whichever it is (name kept from the ROC analysis).
    """

    treatments: tuple[str, ...]
    readers: tuple[str, ...]
    n_positive: int | None  # None for a figure of merit without case truth (proportion correct)
    n_negative: int | None
    auc: np.ndarray  # (treatments, readers): the figure of merit (AUC or proportion correct)
    ms_t: float | None
    ms_r: float
    ms_tr: float | None
    ms_r_treatment: np.ndarray  # reader mean square within each treatment
    var_error: float
    cov1: float | None  # same reader, different treatments
    cov2: float  # different readers, same treatment
    cov3: float | None  # different readers, different treatments
    var_error_treatment: np.ndarray
    cov2_treatment: np.ndarray
    var_error_reader: np.ndarray
    cov1_reader: np.ndarray | None
    var_r: float | None
    var_tr: float | None
    random_readers_random_cases: Analysis
    fixed_readers_random_cases: Analysis
    random_readers_fixed_cases: Analysis

    @property
    def treatment_auc(self) -> np.ndarray:
        return self.auc.mean(axis=1)


def _t_interval(label: str, estimate: float, se: float, df: float, alpha: float, test: bool) -> Interval:
    estimate, se, df = float(estimate), float(se), float(df)
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    statistic = _ratio(estimate, se) if test else None
    p = float(2 * stats.t.sf(abs(statistic), df)) if test else None
    return Interval(label, estimate, se, df, (estimate - half, estimate + half), statistic, p)


def _z_interval(label: str, estimate: float, se: float, alpha: float, test: bool) -> Interval:
    estimate, se = float(estimate), float(se)
    half = float(stats.norm.ppf(1 - alpha / 2)) * se
    statistic = _ratio(estimate, se) if test else None
    p = float(2 * stats.norm.sf(abs(statistic))) if test else None
    return Interval(label, estimate, se, None, (estimate - half, estimate + half), statistic, p)


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; NaN (not an exception) when the denominator is 0,
    e.g. a test statistic when readers and cases show no variation at all."""
    return numerator / denominator if denominator > 0 else math.nan


def _satterthwaite(denominator: float, mean_square: float, df: float) -> float:
    """Hillis' ddf for a denominator MS + extra, where only MS carries sampling error."""
    return denominator**2 / (mean_square**2 / df) if mean_square > 0 else math.inf


def obuchowski_rockette(
    scores: ArrayLike,
    truth: ArrayLike,
    *,
    treatments: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> ORResult:
    """OR analysis of trapezoidal AUCs in a fully crossed study: scores[treatment, reader, case].

    Every reader reads every case in every treatment; at least two readers and
    two positive and two negative cases are needed.
    """
    # A crossed study is the nested one with every case in every treatment's set.
    return ragged_obuchowski_rockette(
        _crossed(scores, "scores"), truth, treatments=treatments, readers=readers, alpha=alpha
    )


def obuchowski_rockette_proportion(
    correct: ArrayLike,
    *,
    treatments: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> ORResult:
    """OR analysis of the proportion correct: correct[treatment, reader, case] is 0 or 1.

    The figure of merit is each reader's share of correct answers; its
    leave-one-case-out values are exact, so the jackknife covariances are the
    usual ones of means (the jackknife variance of a proportion is s^2 / c).
    Needs at least two readers and two cases, every reader reading every case.
    """
    return ragged_obuchowski_rockette_proportion(
        _crossed(correct, "correct"), treatments=treatments, readers=readers, alpha=alpha
    )


def _crossed(values: ArrayLike, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 3:
        raise ValueError(f"{name} must be a (treatments, readers, cases) array")
    if values.shape[1] < 2:
        raise ValueError("the OR analysis needs at least two readers")
    if np.isnan(values).any():
        raise ValueError("every reader must read every case in every treatment")
    return values


def or_analysis(
    fom: ArrayLike,
    pseudo: ArrayLike,
    *,
    treatments: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
    alpha: float = 0.05,
    n_positive: int | None = None,
    n_negative: int | None = None,
) -> ORResult:
    """The OR analysis from figures of merit fom[treatment, reader] and their
    leave-one-case-out values pseudo[treatment, reader, case]."""
    auc = np.asarray(fom, dtype=float)
    pseudo = np.asarray(pseudo, dtype=float)
    if auc.ndim != 2 or pseudo.ndim != 3 or pseudo.shape[:2] != auc.shape:
        raise ValueError("fom must be (treatments, readers) and pseudo (treatments, readers, cases)")
    t, r, c = pseudo.shape
    if r < 2:
        raise ValueError("the OR analysis needs at least two readers")
    treatments = tuple(treatments) if treatments is not None else tuple(str(i + 1) for i in range(t))
    readers = tuple(readers) if readers is not None else tuple(str(j + 1) for j in range(r))
    if len(treatments) != t or len(readers) != r:
        raise ValueError("labels must match the treatments and readers axes")

    # Jackknife covariance of every (treatment, reader) AUC pair.
    dev = (pseudo - pseudo.mean(axis=2, keepdims=True)).reshape(t * r, c)
    cov = (c - 1) / c * dev @ dev.T
    tr = np.repeat(np.arange(t), r)
    rd = np.tile(np.arange(r), t)
    same_t = tr[:, None] == tr[None, :]
    same_r = rd[:, None] == rd[None, :]
    diag = np.diag(cov)
    var_error = float(diag.mean())
    cov2 = float(cov[same_t & ~same_r].mean())
    var_error_treatment = diag.reshape(t, r).mean(axis=1)
    cov2_treatment = np.array([cov[(tr[:, None] == i) & same_t & ~same_r].mean() for i in range(t)])
    var_error_reader = diag.reshape(t, r).mean(axis=0)

    mean_t = auc.mean(axis=1)
    mean_r = auc.mean(axis=0)
    grand = auc.mean()
    ms_r = float(t * ((mean_r - grand) ** 2).sum() / (r - 1))
    ms_r_treatment = auc.var(axis=1, ddof=1)

    # Single-treatment intervals use only that treatment's AUCs and covariances.
    single_random, single_fixed_reader, single_fixed_case = [], [], []
    for i in range(t):
        extra = r * max(cov2_treatment[i], 0.0)
        df = _satterthwaite(ms_r_treatment[i] + extra, ms_r_treatment[i], r - 1)
        se = math.sqrt((ms_r_treatment[i] + extra) / r)
        single_random.append(_t_interval(treatments[i], mean_t[i], se, df, alpha, False))
        se = math.sqrt((var_error_treatment[i] + (r - 1) * max(cov2_treatment[i], 0.0)) / r)
        single_fixed_reader.append(_z_interval(treatments[i], mean_t[i], se, alpha, False))
        se = math.sqrt(ms_r_treatment[i] / r)
        single_fixed_case.append(_t_interval(treatments[i], mean_t[i], se, r - 1, alpha, False))
    common = dict(
        treatments=treatments, readers=readers, n_positive=n_positive, n_negative=n_negative, auc=auc,
        ms_r=ms_r, ms_r_treatment=ms_r_treatment, var_error=var_error, cov2=cov2,
        var_error_treatment=var_error_treatment, cov2_treatment=cov2_treatment, var_error_reader=var_error_reader,
    )
    if t == 1:
        return ORResult(
            **common, ms_t=None, ms_tr=None, cov1=None, cov3=None, cov1_reader=None, var_r=None, var_tr=None,
            random_readers_random_cases=Analysis(None, (), tuple(single_random)),
            fixed_readers_random_cases=Analysis(None, (), tuple(single_fixed_reader)),
            random_readers_fixed_cases=Analysis(None, (), tuple(single_fixed_case)),
        )

    cov1 = float(cov[~same_t & same_r].mean())
    cov3 = float(cov[~same_t & ~same_r].mean())
    cov1_reader = np.array([cov[(rd[:, None] == j) & ~same_t & same_r].mean() for j in range(r)])
    df_tr = (t - 1) * (r - 1)
    ms_t = float(r * ((mean_t - grand) ** 2).sum() / (t - 1))
    ms_tr = float(((auc - mean_t[:, None] - mean_r[None, :] + grand) ** 2).sum() / df_tr)
    # OR variance components from the expected mean squares (can be negative).
    var_r = (ms_r - ms_tr) / t - cov1 + cov3
    var_tr = ms_tr - var_error + cov1 + cov2 - cov3
    pairs = list(combinations(range(t), 2))

    def label(a: int, b: int) -> str:
        return f"{treatments[a]} - {treatments[b]}"

    def differences(se: float, df: float | None) -> tuple[Interval, ...]:
        """Every treatment pair with a common SE: t intervals, or z when df is None."""
        return tuple(
            _t_interval(label(a, b), mean_t[a] - mean_t[b], se, df, alpha, True) if df is not None
            else _z_interval(label(a, b), mean_t[a] - mean_t[b], se, alpha, True)
            for a, b in pairs
        )

    # Random readers, random cases: denominator MS(T*R) + r*max(Cov2 - Cov3, 0).
    den = ms_tr + r * max(cov2 - cov3, 0.0)
    ddf = _satterthwaite(den, ms_tr, df_tr)
    f = _ratio(ms_t, den)
    random_random = Analysis(
        GlobalTest(f, t - 1, ddf, float(stats.f.sf(f, t - 1, ddf))),
        differences(math.sqrt(2 / r * den), ddf),
        tuple(single_random),
    )

    # Fixed readers, random cases: chi-square with t - 1 df.
    den_fr = var_error - cov1 + (r - 1) * max(cov2 - cov3, 0.0)
    x2 = _ratio((t - 1) * ms_t, den_fr)
    fixed_reader = Analysis(
        GlobalTest(x2, t - 1, None, float(stats.chi2.sf(x2, t - 1))),
        differences(math.sqrt(2 / r * den_fr), None),
        tuple(single_fixed_reader),
        tuple(
            _z_interval(
                f"{readers[j]}: {label(a, b)}", auc[a, j] - auc[b, j],
                math.sqrt(2 * (var_error_reader[j] - cov1_reader[j])), alpha, True,
            )
            for j in range(r)
            for a, b in pairs
        ),
    )

    # Random readers, fixed cases: covariances vanish; a treatment x reader ANOVA.
    f_fc = _ratio(ms_t, ms_tr)
    fixed_case = Analysis(
        GlobalTest(f_fc, t - 1, df_tr, float(stats.f.sf(f_fc, t - 1, df_tr))),
        differences(math.sqrt(2 / r * ms_tr), df_tr),
        tuple(single_fixed_case),
    )
    return ORResult(
        **common, ms_t=ms_t, ms_tr=ms_tr, cov1=cov1, cov3=cov3, cov1_reader=cov1_reader, var_r=var_r, var_tr=var_tr,
        random_readers_random_cases=random_random,
        fixed_readers_random_cases=fixed_reader,
        random_readers_fixed_cases=fixed_case,
    )


def _ragged(values: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    """values[treatment, reader, case] with NaN where the case is not in the
    treatment's set; returns (values, membership[treatment, case])."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 3:
        raise ValueError(f"{name} must be a (treatments, readers, cases) array")
    if values.shape[1] < 2:
        raise ValueError("the OR analysis needs at least two readers")
    member = ~np.isnan(values)
    if (member != member[:, :1, :]).any():
        raise ValueError("within a treatment, every reader must read every case of its set (NaN for the same cases)")
    member = member[:, 0, :]
    if not member.any(axis=0).all():
        raise ValueError("every case must belong to at least one treatment")
    return values, member


def ragged_obuchowski_rockette(
    scores: ArrayLike,
    truth: ArrayLike,
    *,
    treatments: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> ORResult:
    """OR analysis of trapezoidal AUCs with cases nested in treatments (module
    docstring): scores[treatment, reader, case], NaN where the case is not in
    that treatment's set. Each treatment needs two positive and two negative
    cases; n_positive and n_negative count the union."""
    scores, member = _ragged(scores, "scores")
    truth_arr = np.asarray(truth)
    t, r, c = scores.shape
    auc = np.empty((t, r))
    pseudo = np.empty((t, r, c))
    for i in range(t):
        own = member[i]
        sub = scores[i][:, own]
        # Outside the set, leaving a case out changes nothing.
        auc[i] = [empirical_auc(sub[j], truth_arr[own]) for j in range(r)]
        pseudo[i] = auc[i][:, None]
        pseudo[i][:, own] = jackknife_auc(sub, truth_arr[own])
    return or_analysis(
        auc, pseudo, treatments=treatments, readers=readers, alpha=alpha,
        n_positive=int((truth_arr == 1).sum()), n_negative=int((truth_arr == 0).sum()),
    )


def ragged_obuchowski_rockette_proportion(
    correct: ArrayLike,
    *,
    treatments: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> ORResult:
    """OR analysis of the proportion correct with cases nested in treatments
    (module docstring): correct[treatment, reader, case] is 0 or 1, NaN where
    the case is not in that treatment's set. Each treatment needs two cases."""
    correct, member = _ragged(correct, "correct")
    if not np.isin(correct[~np.isnan(correct)], (0, 1)).all():
        raise ValueError("correct must be 0 or 1 (or NaN outside a treatment's cases)")
    size = member.sum(axis=1)
    if (size < 2).any():
        raise ValueError("the jackknife needs at least two cases in every treatment")
    filled = np.nan_to_num(correct)
    total = filled.sum(axis=2, keepdims=True)
    fom = total[:, :, 0] / size[:, None]
    inside = (total - filled) / (size[:, None, None] - 1)
    pseudo = np.where(member[:, None, :], inside, fom[:, :, None])
    return or_analysis(fom, pseudo, treatments=treatments, readers=readers, alpha=alpha)


def roc_points(scores: ArrayLike, truth: ArrayLike) -> list[tuple[float, float]]:
    """Empirical ROC operating points (false positive fraction, true positive
    fraction), from (0, 0) to (1, 1): one per distinct score, calling "positive"
    every case scored at or above it. The trapezoidal area under these points
    is empirical_auc. Empty when either class is missing."""
    scores, pos, neg = _split(scores, truth)
    if not pos.any() or not neg.any():
        return []
    points = [(0.0, 0.0)]
    for threshold in np.unique(scores)[::-1]:
        called = scores >= threshold
        points.append((float(called[neg].mean()), float(called[pos].mean())))
    return points
