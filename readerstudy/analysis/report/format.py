"""Formatting shared by every report section: rounding and the figure dicts.

Every number the report prints passes through _r (estimates, intervals, SEs,
df) or _p (p-values), so the rounding rule (ROUNDING) lives in one place;
_proportion, _kappa_figure and _single turn a statistics result into the
figure dict (method, unit, n, estimate, ...) that the sections share.
"""

from __future__ import annotations

import math
from typing import Any

from scipy import stats as sps

from ..statistics.stats import Kappa, Proportion

DECIMALS = 4
ROUNDING = "estimates, intervals, SEs and df to 4 decimals; p-values to 4 significant digits"
POOLED_CAVEAT = "; answers pooled over readers and treated as independent, which understates between-reader variation"


def _proportion(result: Proportion, method: str) -> dict[str, Any]:
    return {
        "method": method,
        "unit": "answer",
        "n": result.n,
        "correct": result.successes,
        "estimate": _r(result.estimate),
        "ci_clopper_pearson": _interval(result.ci_clopper_pearson),
        "ci_wilson": _interval(result.ci_wilson),
        "note": result.note,
    }


def _kappa_figure(result: Kappa, method: str, unit: str) -> dict:
    return {"method": method, "unit": unit, "n": result.n, "estimate": _r(result.estimate), "se": _r(result.se),
            "ci": _interval(result.ci), "note": result.note}


def _single(estimate: float, se: float, df: float | None, ci: tuple[float, float], null: float) -> dict:
    """Estimate, SE, df, interval and the test of `null`; df None or infinite means z."""
    if not se > 0:
        return {"estimate": _r(estimate), "se": _r(se), "df": None, "ci": None, "statistic": None, "p": None,
                "note": "no interval: no variation between readers or cases"}
    finite = df is not None and math.isfinite(df)
    statistic = (estimate - null) / se
    p = 2 * (sps.t.sf(abs(statistic), df) if finite else sps.norm.sf(abs(statistic)))
    note = None
    if df is not None and not finite:
        # Readers with identical figures and no positive case covariance leave no
        # sampling error in the denominator, so the df are unbounded.
        note = "df unbounded: no between-reader variation; normal interval"
    return {"estimate": _r(estimate), "se": _r(se), "df": _r(df) if finite else None, "ci": _interval(ci),
            "statistic": _r(statistic), "p": _p(float(p)), "note": note}


def _r(value: float | None) -> float | None:
    """Round to DECIMALS; + 0.0 turns -0.0 into 0.0 so no "-0.0" is printed."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise ValueError(f"non-finite figure {value!r} reached the report")
    return round(float(value), DECIMALS) + 0.0


def _p(value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value):
        raise ValueError(f"non-finite p-value {value!r} reached the report")
    return float(f"{value:.4g}")


def _interval(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [_r(ci[0]), _r(ci[1])]
