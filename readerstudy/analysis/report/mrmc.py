"""The report's Obuchowski-Rockette figures over readers and cases (mrmc.py does the analysis).

For a group of readers (pooled or one specialty): the single-treatment
accuracy with its t-based equivalence test, and in mixed designs the AUC.
For the study (all readers, studies[].mrmc): accuracy and AUC under the
three variants (random or fixed readers and cases), every synthetic image
one treatment.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats as sps

from ..statistics.mrmc import ORResult, obuchowski_rockette, obuchowski_rockette_proportion
from .format import _interval, _p, _single
from .matrix import _crossed, _Matrix

MRMC_AUC_METHOD = (
    "Obuchowski-Rockette single-treatment analysis, random readers and random cases: "
    "mean trapezoidal AUC of the ordinal score, jackknife covariances, Hillis df, t 95% interval; "
    "t test of AUC = 0.5"
)
MRMC_ACCURACY_METHOD = (
    "Obuchowski-Rockette single-treatment analysis, random readers and random cases: "
    "mean of the readers' proportions correct, jackknife covariances over cases, Hillis df, t 95% interval; "
    "t test of accuracy = 0.5; TOST equivalence: the 90% t interval inside 0.5 ± margin"
)
MRMC_VARIANTS = {
    "random_readers_random_cases": "random readers and random cases: Hillis df, t 95% interval",
    "fixed_readers_random_cases": "fixed readers, random cases: z 95% interval",
    "random_readers_fixed_cases": "random readers, fixed cases: readers - 1 df, t 95% interval",
}
MRMC_FOM = {"accuracy": "proportion correct per reader", "auc": "trapezoidal AUC of the ordinal score per reader"}
ONE_SOURCE = "all synthetic images"
COMPARISON_NOTE = (
    "the answers name no synthetic source (generator), so sources are not compared; "
    "with several, each becomes a treatment of the same analysis"
)
ONE_SOURCE_NOTE = "every synthetic image named comes from one source ({}), so there is nothing to compare"
SEVERAL_SOURCES_NOTE = (
    "the synthetic images come from {} sources ({}); the figures here pool them; "
    "each source alone and the comparison between them are under sources"
)


def _mrmc_auc(matrix: _Matrix, readers: list[str]) -> dict:
    scores, keep = _crossed(matrix, readers, matrix.score, np.nan)
    figure = {"method": MRMC_AUC_METHOD, "unit": "reader x case", "n": int(keep.sum()), "n_readers": len(readers)}
    empty = {"estimate": None, "se": None, "df": None, "ci": None, "statistic": None, "p": None}
    if len(readers) < 2:
        return {**figure, **empty, "note": "not defined: needs at least two readers"}
    case_truth = matrix.truth[keep].astype(int)
    if min(case_truth.sum(), len(case_truth) - case_truth.sum()) < 2:
        return {**figure, **empty, "note": "not defined: needs two synthetic and two real cases rated by every reader"}
    single = obuchowski_rockette(scores[None], case_truth, readers=readers).random_readers_random_cases.treatments[0]
    return {**figure, **_single(single.estimate, single.se, single.df, single.ci, 0.5)}


def _accuracy_or(matrix: _Matrix, readers: Sequence[str]) -> tuple[ORResult | None, int, str | None]:
    correct, keep = _crossed(matrix, readers, matrix.correct, -1)
    n = int(keep.sum())
    if len(readers) < 2:
        return None, n, "not defined: needs at least two readers"
    if n < 2:
        return None, n, "not defined: needs at least two cases read by every reader"
    return obuchowski_rockette_proportion(correct[None], readers=readers, treatments=[ONE_SOURCE]), n, None


def _group_mrmc_accuracy(matrix: _Matrix, readers: list[str], margin: float) -> dict:
    result, n, note = _accuracy_or(matrix, readers)
    figure = {"method": MRMC_ACCURACY_METHOD, "unit": "reader x case", "n": n, "n_readers": len(readers),
              "margin": margin}
    if result is None:
        return {**figure, "estimate": None, "se": None, "df": None, "ci": None, "statistic": None, "p": None,
                "p_equivalence": None, "ci90": None, "verdict": "not defined", "note": note}
    single = result.random_readers_random_cases.treatments[0]
    return {**figure, **_single(single.estimate, single.se, single.df, single.ci, 0.5),
            **_t_equivalence(single.estimate, single.se, single.df, margin)}


def _t_equivalence(estimate: float, se: float, df: float, margin: float, alpha: float = 0.05) -> dict:
    """TOST with a t (or, for unbounded df, normal) reference: equivalent when the
    1 - 2·alpha interval lies inside 0.5 ± margin. simulate_power uses the same rule."""
    low, high = 0.5 - margin, 0.5 + margin
    if not se > 0:
        return {"p_equivalence": None, "ci90": None, "verdict": "not defined"}
    if math.isfinite(df):
        sf, ppf = (lambda x: sps.t.sf(x, df)), (lambda q: sps.t.ppf(q, df))
    else:
        sf, ppf = sps.norm.sf, sps.norm.ppf
    p = max(float(sf((estimate - low) / se)), float(sf((high - estimate) / se)))
    half = float(ppf(1 - alpha)) * se
    ci = (estimate - half, estimate + half)
    if p < alpha:
        verdict = "equivalent"
    elif ci[0] > high or ci[1] < low:
        verdict = "not equivalent"
    else:
        verdict = "inconclusive"
    return {"p_equivalence": _p(p), "ci90": _interval(ci), "verdict": verdict}


def _mrmc(matrix: _Matrix, design: str, names: Sequence[str]) -> dict:
    readers = matrix.readers
    accuracy, n, note = _accuracy_or(matrix, readers)
    if len(names) >= 2:
        comparison_note = SEVERAL_SOURCES_NOTE.format(len(names), ", ".join(names))
    elif names:
        comparison_note = ONE_SOURCE_NOTE.format(names[0])
    else:
        comparison_note = COMPARISON_NOTE
    out = {
        "treatments": [ONE_SOURCE],
        "comparison": None,
        "comparison_note": comparison_note,
        "accuracy": _variants("accuracy", accuracy, n, len(readers), note),
        "auc": None,
    }
    if design == "mixed":
        scores, keep = _crossed(matrix, readers, matrix.score, np.nan)
        truth = matrix.truth[keep].astype(int)
        n = int(keep.sum())
        if len(readers) < 2:
            out["auc"] = _variants("auc", None, n, len(readers), "not defined: needs at least two readers")
        elif min(truth.sum(), n - truth.sum()) < 2:
            out["auc"] = _variants("auc", None, n, len(readers),
                                   "not defined: needs two synthetic and two real cases rated by every reader")
        else:
            result = obuchowski_rockette(scores[None], truth, readers=readers, treatments=[ONE_SOURCE])
            out["auc"] = _variants("auc", result, n, len(readers), None)
    return out


def _variants(kind: str, result: ORResult | None, n: int, n_readers: int, note: str | None) -> dict:
    out: dict[str, Any] = {"figure_of_merit": MRMC_FOM[kind], "n": n, "n_readers": n_readers, "note": note}
    for name, description in MRMC_VARIANTS.items():
        figure = {"method": f"Obuchowski-Rockette, {MRMC_FOM[kind]}, jackknife covariances over cases; "
                            f"{description}; test of 0.5",
                  "unit": "reader x case", "n": n, "n_readers": n_readers}
        if result is None:
            out[name] = {**figure, "estimate": None, "se": None, "df": None, "ci": None, "statistic": None,
                         "p": None, "note": note}
            continue
        single = getattr(result, name).treatments[0]
        figure.update(_single(single.estimate, single.se, single.df, single.ci, 0.5))
        out[name] = figure
    return out
