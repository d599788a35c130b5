"""Reading time: medians with distribution-free intervals, by source, reader and correctness.

reading_ms is the client-measured time a reader looked at a case (tab hidden
excluded). Times are skewed, so the summary is the median with the exact
order-statistic 95% interval (the binomial interval for the median, as
Conover describes), and the quartiles. Outliers are flagged, never dropped:
a reading is "far out" beyond Q3 + 3·IQR or below Q1 − 3·IQR of all the
study's readings (Tukey), listed with reader and case.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from scipy import stats

from ..tidy import AnswerRow
from .format import _r

METHOD = ("median reading time (ms) with the distribution-free 95% interval from order statistics "
          "(binomial, at least 95% coverage); quartiles; first readings, main question")
OUTLIER_RULE = "far out (Tukey): beyond Q3 + 3·IQR or below Q1 − 3·IQR of all the study's readings; flagged, not dropped"


def median_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """Order-statistic interval for the median: the widest-coverage-at-least-level
    pair (x(k), x(n-k+1)) from Binomial(n, 1/2); None when n is too small (n < 6)."""
    n = len(values)
    x = np.sort(values)
    # Largest k with P(k <= B <= n - k) >= level, B ~ Binomial(n, 1/2).
    best = None
    for k in range(1, n // 2 + 1):
        coverage = stats.binom.cdf(n - k, n, 0.5) - stats.binom.cdf(k - 1, n, 0.5)
        if coverage >= level:
            best = k
        else:
            break
    if best is None:
        return None
    return float(x[best - 1]), float(x[n - best])


def _summary(values: list[int], outliers: int) -> dict:
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return {"n": 0, "median": None, "ci": None, "q1": None, "q3": None, "n_outliers": 0,
                "note": "no readings"}
    ci = median_interval(array)
    q1, q3 = np.percentile(array, [25, 75])
    return {"n": int(array.size), "median": _r(float(np.median(array))),
            "ci": None if ci is None else [_r(ci[0]), _r(ci[1])], "q1": _r(float(q1)), "q3": _r(float(q3)),
            "n_outliers": outliers, "note": None if ci is not None else "no interval: fewer than 6 readings"}


def _reading_time(rows: list[AnswerRow], design: str) -> dict:
    times = np.asarray([row.reading_ms for row in rows], dtype=float)
    if times.size:
        q1, q3 = np.percentile(times, [25, 75])
        low, high = q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1)
    else:
        low = high = math.nan
    flagged = [row for row in rows if row.reading_ms < low or row.reading_ms > high]
    flagged_ids = {id(row) for row in flagged}

    def groups(key) -> list[dict]:
        buckets: dict[str, list[AnswerRow]] = defaultdict(list)
        for row in rows:
            buckets[key(row)].append(row)
        return [{"group": name, **_summary([r.reading_ms for r in buckets[name]],
                                           sum(id(r) in flagged_ids for r in buckets[name]))}
                for name in sorted(buckets)]

    if design == "mixed":
        by_source = groups(lambda row: row.truth if row.truth == "real" or not row.source
                           else f"synthetic: {row.source}")
        source_basis = "the case's truth (real or synthetic), synthetic cases split by generator where named"
    else:
        by_source = groups(lambda row: row.source or "all pairs")
        source_basis = "the generator of the pair's synthetic image, where named"
    return {
        "method": METHOD, "unit": "reading", "n": len(rows),
        "all": _summary([row.reading_ms for row in rows], len(flagged)),
        "by_source": by_source, "source_basis": source_basis,
        "by_reader": groups(lambda row: row.reader),
        "by_correctness": groups(lambda row: "correct" if row.correct else "wrong"),
        "outlier_rule": OUTLIER_RULE,
        "outlier_limits": None if not times.size else [_r(float(low)), _r(float(high))],
        "outliers": [{"reader": row.reader, "case": row.case, "reading_ms": row.reading_ms}
                     for row in sorted(flagged, key=lambda r: (r.reader, r.position))],
    }
