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
from .format import _interval, _p, _r, _single, negligible
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
    if getattr(matrix, "unbalanced_note", None):
        return {**figure, **empty, "note": matrix.unbalanced_note}
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
    if getattr(matrix, "unbalanced_note", None):
        return None, n, matrix.unbalanced_note
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
    if negligible(se, estimate):
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
        if getattr(matrix, "unbalanced_note", None):
            out["auc"] = _variants("auc", None, n, len(readers), matrix.unbalanced_note)
        elif len(readers) < 2:
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
    # The ANOVA and variance components (as OR-DBM prints them): for sizing a
    # new study from this one (the power page) and for checking by hand.
    out["or_tables"] = None if result is None else or_tables(result, n)
    return out


def or_tables(result: ORResult, n_cases: int) -> dict:
    """The OR analysis's ANOVA, variance components and covariances, as OR-DBM
    MRMC 2.51 prints them, at full precision (the JSON carries every printed
    figure). DBM components follow from the OR ones (Hillis et al. 2005):
    Var(C) = c·Cov3, Var(T×C) = c·(Cov2 − Cov3), Var(R×C) = c·(Cov1 − Cov3),
    Var(T×R×C) + Var(error) = c·(Var(error) − Cov1 − Cov2 + Cov3).
    With one treatment, Var(R) = MS(R) − Var(error) + Cov2 and the figures that
    need two treatments are None. Components are ANOVA estimates and can be
    negative."""
    t, r = result.auc.shape
    c = n_cases

    def num(value) -> float | None:
        return None if value is None else _r(float(value))

    def source(ms: float | None, df: int) -> dict | None:
        return None if ms is None else {"ss": num(ms * df), "df": df, "ms": num(ms)}

    var_error = result.var_error
    two = t >= 2
    var_r = result.var_r if two else result.ms_r - var_error + result.cov2
    correlation = (lambda cov: None if cov is None or var_error <= 0 else num(cov / var_error))
    out = {
        "n_cases": c,
        "anova": {
            "treatment": source(result.ms_t, t - 1) if two else None,
            "reader": source(result.ms_r, r - 1),
            "treatment_x_reader": source(result.ms_tr, (t - 1) * (r - 1)) if two else None,
            "reader_per_treatment": [{"treatment": name, "df": r - 1, "ms": num(ms)}
                                     for name, ms in zip(result.treatments, result.ms_r_treatment)],
        },
        "components": {
            "var_r": num(var_r), "var_tr": num(result.var_tr),
            "cov1": num(result.cov1), "cov2": num(result.cov2), "cov3": num(result.cov3), "var_error": num(var_error),
            "corr1": correlation(result.cov1), "corr2": correlation(result.cov2), "corr3": correlation(result.cov3),
            "note": "ANOVA estimates: they can be negative",
        },
        "dbm_components": None,
        "per_treatment": [{"treatment": name, "var_error": num(v), "cov2": num(cov2)}
                          for name, v, cov2 in zip(result.treatments, result.var_error_treatment,
                                                   result.cov2_treatment)],
        "per_reader": [
            {"reader": name, "var_error": num(v), "cov1": num(result.cov1_reader[j]) if two else None}
            for j, (name, v) in enumerate(zip(result.readers, result.var_error_reader))
        ],
        "error_term": None,
    }
    if two:
        out["dbm_components"] = {
            "var_r": num(var_r), "var_c": num(c * result.cov3), "var_tr": num(result.var_tr),
            "var_tc": num(c * (result.cov2 - result.cov3)), "var_rc": num(c * (result.cov1 - result.cov3)),
            "var_trc_error": num(c * (var_error - result.cov1 - result.cov2 + result.cov3)),
        }
        test = result.random_readers_random_cases.test
        out["error_term"] = {
            "value": num(result.ms_tr + r * max(result.cov2 - result.cov3, 0.0)),
            "df": num(test.df2) if test.df2 is not None and math.isfinite(test.df2) else None,
            "formula": "MS(T×R) + r·max(Cov2 − Cov3, 0)",
        }
    return out
