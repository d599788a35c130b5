"""Formatting shared by every report section: the figure dicts, and rounding for display.

The report dict (and so its JSON and CSV) keeps full double precision: every
number passes through _r (estimates, intervals, SEs, df) or _p (p-values),
which only refuse non-finite values and turn -0.0 into 0.0. Rounding is for
people: for_display returns a copy rounded by ROUNDING, which the HTML page,
`analyze --format html` and the figures use. _proportion, _kappa_figure and
_single turn a statistics result into the figure dict (method, unit, n,
estimate, ...) that the sections share.
"""

from __future__ import annotations

import math
from typing import Any

from scipy import stats as sps

from ..statistics.stats import Kappa, Proportion

DECIMALS = 4
ROUNDING = "estimates, intervals, SEs and df to 4 decimals; p-values to 4 significant digits"
PRECISION = "full double precision in JSON and CSV; pages and print round " + ROUNDING.replace("; ", ", ")
# Relative tolerance below which a standard error is treated as zero: float noise
# (e.g. a covariance of 2e-18 from sums of equal numbers) must not turn an
# undefined interval into a zero-width one.
RELATIVE_TOLERANCE = 1e-8
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


def negligible(se: float | None, scale: float = 1.0) -> bool:
    """Whether a standard error is zero up to float noise, relative to the scale
    of its estimate (at least 1): never compared with `> 0`."""
    return se is None or not math.isfinite(se) or se <= RELATIVE_TOLERANCE * max(abs(scale), 1.0)


def _single(estimate: float, se: float, df: float | None, ci: tuple[float, float], null: float,
            bounds: tuple[float, float] | None = (0.0, 1.0)) -> dict:
    """Estimate, SE, df, interval and the test of `null`; df None or infinite means z.

    bounds: the interval is truncated to these (a proportion or an AUC lies in
    [0, 1]); the figure says so in `truncated` when it was."""
    if negligible(se, estimate):
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
    truncated = False
    if bounds is not None and (ci[0] < bounds[0] or ci[1] > bounds[1]):
        ci, truncated = (max(ci[0], bounds[0]), min(ci[1], bounds[1])), True
        note = "; ".join(filter(None, [note, f"interval truncated to [{bounds[0]:g}, {bounds[1]:g}]"]))
    return {"estimate": _r(estimate), "se": _r(se), "df": _r(df) if finite else None, "ci": _interval(ci),
            "statistic": _r(statistic), "p": _p(float(p)), "note": note, "truncated": truncated}


def _r(value: float | None) -> float | None:
    """The figure at full precision; + 0.0 turns -0.0 into 0.0 so no "-0.0" is printed."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise ValueError(f"non-finite figure {value!r} reached the report")
    return float(value) + 0.0


def _p(value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value):
        raise ValueError(f"non-finite p-value {value!r} reached the report")
    return float(value) + 0.0


def round_figure(value: float) -> float:
    return round(value, DECIMALS) + 0.0


def round_p(value: float) -> float:
    return float(f"{value:.4g}")


def is_p_value(key: str | None) -> bool:
    return key is not None and (key == "p" or key.startswith("p_") or key.endswith("_p"))


def for_display(value: Any, key: str | None = None) -> Any:
    """A copy of a report (or any part of one) with every float rounded as
    ROUNDING says: p-values (keys p, p_*, *_p) to 4 significant digits, every
    other float to DECIMALS. Whole numbers (counts) are left alone."""
    if isinstance(value, dict):
        return {k: for_display(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [for_display(v, key) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        return round_p(value) if is_p_value(key) else round_figure(value)
    return value


def _interval(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [_r(ci[0]), _r(ci[1])]
