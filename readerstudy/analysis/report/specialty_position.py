"""The report's specialty_model and position sections: who reads better, and when.

specialty_model: does accuracy differ between specialties (GEE logistic
regression clustered by reader, regression.py); position: accuracy by
reading position, in bins and as a trend (the same regression on position).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..statistics.regression import clustered_logit
from .format import POOLED_CAVEAT, _interval, _p, _r
from .matrix import _Matrix
from ..statistics.stats import proportion
from ..tidy import SPECIALTIES

POSITION_BINS = 5
SPECIALTY_METHOD = (
    "GEE logistic regression of correct ~ specialty, exchangeable correlation within reader, "
    "robust covariance clustered by reader with CR1 scaling, t(readers - coefficients) 95% interval; "
    "odds ratio vs the reference specialty"
)
POSITION_BIN_METHOD = "proportion correct among first readings at these positions; Wilson 95% interval" + POOLED_CAVEAT
POSITION_TREND_METHOD = (
    "GEE logistic regression of correct ~ reading position, exchangeable correlation within reader, "
    "robust covariance clustered by reader with CR1 scaling, t(readers - 2) 95% interval; "
    "odds ratio per 100 readings (> 1: accuracy rises with position)"
)


def _specialty_model(matrix: _Matrix) -> dict:
    present = [s for s in SPECIALTIES if (matrix.specialty == s).any()]
    count = {s: int((matrix.specialty == s).sum()) for s in present}
    included = [s for s in present if count[s] >= 2]
    excluded = [{"specialty": s, "n_readers": count[s], "reason": "fewer than two readers"}
                for s in present if s not in included]
    answered = matrix.correct >= 0
    in_model = np.isin(matrix.specialty, included)
    out: dict[str, Any] = {
        "method": SPECIALTY_METHOD, "unit": "answer", "n": int(answered[in_model].sum()),
        "n_readers": int(in_model.sum()),
        "reference": included[0] if included else None, "included": included, "excluded": excluded,
        "comparisons": [], "overall": None, "working_correlation": None, "note": None,
    }
    if len(included) < 2:
        out["note"] = "not defined: needs two specialties with at least two readers each"
        return out
    others = included[1:]
    mask = answered & in_model[:, None]
    reader_of = np.broadcast_to(np.arange(len(matrix.readers))[:, None], mask.shape)[mask]
    y = matrix.correct[mask].astype(float)
    x = np.stack([(matrix.specialty[reader_of] == s) for s in others], axis=1).astype(float)
    fit = clustered_logit(y, x, others, reader_of)
    out["note"] = fit.note
    if not fit.coefficients:
        return out
    for specialty, coefficient in zip(others, fit.coefficients):
        members = np.isin(matrix.specialty, [specialty, included[0]])
        out["comparisons"].append({
            "specialty": specialty, "reference": included[0],
            "method": SPECIALTY_METHOD, "unit": "answer",
            "n": int(answered[members].sum()), "n_readers": int(members.sum()),
            "estimate": _r(coefficient.odds_ratio), "ci": _interval(coefficient.ci_odds_ratio),
            "log_odds": _r(coefficient.log_odds), "se": _r(coefficient.se), "statistic": _r(coefficient.statistic),
            "df": fit.df, "p": _p(coefficient.p),
        })
    if fit.wald is not None:
        out["overall"] = {"statistic": _r(fit.wald.statistic), "df1": fit.wald.df1, "df2": fit.wald.df2,
                          "p": _p(fit.wald.p)}
    out["working_correlation"] = _r(fit.correlation)
    return out


def _position(matrix: _Matrix, max_position: int) -> dict:
    answered = matrix.correct >= 0
    positions = matrix.position[answered]
    correct = matrix.correct[answered].astype(float)
    bins = []
    n_bins = min(POSITION_BINS, max_position)
    for b in range(n_bins):
        first = max_position * b // n_bins + 1
        last = max_position * (b + 1) // n_bins
        inside = (positions >= first) & (positions <= last)
        result = proportion(int(correct[inside].sum()), int(inside.sum()))
        bins.append({"first": first, "last": last, "method": POSITION_BIN_METHOD, "unit": "answer",
                     "n": result.n, "correct": result.successes, "estimate": _r(result.estimate),
                     "ci_wilson": _interval(result.ci_wilson), "note": result.note})
    trend = {"method": POSITION_TREND_METHOD, "unit": "answer", "n": int(answered.sum()),
             "n_readers": int(answered.any(axis=1).sum())}
    reader_of = np.broadcast_to(np.arange(len(matrix.readers))[:, None], answered.shape)[answered]
    fit = clustered_logit(correct, positions / 100, ["position / 100"], reader_of)
    if not fit.coefficients:
        trend.update({"estimate": None, "ci": None, "log_odds": None, "se": None, "statistic": None, "df": None,
                      "p": None, "note": fit.note})
    else:
        (slope,) = fit.coefficients
        trend.update({"estimate": _r(slope.odds_ratio), "ci": _interval(slope.ci_odds_ratio),
                      "log_odds": _r(slope.log_odds), "se": _r(slope.se), "statistic": _r(slope.statistic),
                      "df": fit.df, "p": _p(slope.p), "note": None})
    return {"bins": bins, "trend": trend}
