"""The report's sources section: synthetic sources (generators) compared.

Only for studies whose synthetic cases name two or more sources. Per source:
the answers pooled and a single-treatment Obuchowski-Rockette figure of its own
cases; between sources: the Obuchowski-Rockette comparison with the sources as
treatments and cases nested in them (mrmc.ragged_obuchowski_rockette*).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..statistics.mrmc import (
    obuchowski_rockette,
    obuchowski_rockette_proportion,
    ragged_obuchowski_rockette,
    ragged_obuchowski_rockette_proportion,
)
from .format import POOLED_CAVEAT, _interval, _p, _proportion, _r, _single, negligible
from .matrix import _Matrix
from ..statistics.stats import binomial_test, proportion

SOURCE_BASIS = (
    "the tidy column source: the generator that made the case's synthetic image; "
    "a case belongs to one source"
)
SOURCE_DESIGN = {
    "paired": (
        "cases are nested in sources (each case's synthetic image comes from one source), not crossed with them: "
        "a source's figure uses only its own cases, so the jackknife covariance between two sources is zero by "
        "construction (Cov1 = Cov3 = 0) and the comparison rests on each source's own case variance"
    ),
    "mixed": (
        "synthetic cases are nested in sources and the real cases are shared: a source's sensitivity uses only its "
        "own synthetic cases (covariance between sources zero by construction), its AUC ranks its own synthetic "
        "cases against all real cases, so the shared real cases carry the covariance between sources' AUCs"
    ),
}
SOURCE_POOLED = {
    "accuracy": "proportion correct on the cases of this source; Clopper-Pearson and Wilson 95% intervals; exact "
                "two-sided binomial test of accuracy = 0.5" + POOLED_CAVEAT,
    "sensitivity": "share of this source's synthetic images answered synthetic; Clopper-Pearson and Wilson 95% "
                   "intervals" + POOLED_CAVEAT,
}
SOURCE_FOM = {
    "accuracy": "proportion correct per reader on the cases of the source",
    "sensitivity": "sensitivity per reader (share of the source's synthetic images answered synthetic)",
    "auc": "trapezoidal AUC per reader of the ordinal score, the source's synthetic images (positive) against "
           "all real images",
}
SOURCE_SINGLE_METHOD = (
    "Obuchowski-Rockette single-treatment analysis of this source alone (its own cases: {cases}), random readers "
    "and random cases: reader mean of the {fom}, jackknife covariances over its cases, Hillis df, t 95% interval{test}"
)
SOURCE_COMPARISON_METHOD = (
    "Obuchowski-Rockette comparison of sources as treatments, random readers and random cases: {fom}; cases nested "
    "in sources, so each source's figure uses its own cases ({cases}) and the jackknife leaves out each case of the "
    "union in turn (a case outside a source's set leaves its figure unchanged), covariances from these "
    "leave-one-out values over the union; F test of equal figures with Hillis denominator df; differences with "
    "t 95% intervals on the same df"
)
SOURCE_CASES = {
    "accuracy": "the cases of the source",
    "sensitivity": "the synthetic cases of the source",
    "auc": "the synthetic cases of the source and every real case",
}
SENSITIVITY_NO_TEST = "no test against 0.5: chance sensitivity is 1 - specificity, not 0.5; compare sources instead"


def _sources(matrix: _Matrix, design: str, names: list[str]) -> dict:
    """Per source figures and the OR comparison between sources (module docstring)."""
    readers = matrix.readers
    complete = (matrix.correct >= 0).all(axis=0) if readers else np.zeros(len(matrix.cases), dtype=bool)
    synthetic = matrix.truth == 1 if design == "mixed" else np.ones(len(matrix.cases), dtype=bool)
    real = matrix.truth == 0
    unnamed = int((synthetic & (matrix.source == "")).sum())
    kinds = ["accuracy"] if design == "paired" else ["sensitivity", "auc"]
    rated = ~np.isnan(matrix.score).any(axis=0) if design == "mixed" and readers else np.zeros(len(matrix.cases),
                                                                                                   dtype=bool)

    def own(kind: str, name: str) -> np.ndarray:
        """The cases of this source's figure of merit that every reader answered (AUC: rated)."""
        if kind == "auc":
            return rated & (real | (matrix.source == name))
        return complete & (matrix.source == name)

    per_source = []
    for name in names:
        of = matrix.source == name
        answered = matrix.correct[:, of] >= 0
        correct = int(matrix.correct[:, of][answered].sum())
        pooled_kind = kinds[0]
        result = proportion(correct, int(answered.sum()))
        entry: dict[str, Any] = {
            "source": name,
            "n_cases": int(of.sum()),
            "n_answers": int(answered.sum()),
            pooled_kind: _proportion(result, SOURCE_POOLED[pooled_kind]),
        }
        if design == "paired":
            entry[pooled_kind]["binomial_p"] = _p(binomial_test(correct, int(answered.sum())).p)
        for kind in kinds:
            entry[f"mrmc_{kind}"] = _source_single(matrix, kind, own(kind, name))
        per_source.append(entry)
    comparisons = {kind: _source_comparison(matrix, kind, names, [own(kind, name) for name in names])
                   for kind in kinds}
    notes = []
    if unnamed:
        notes.append(f"{unnamed} synthetic cases name no source: left out of the figures by source")
    return {
        "names": names,
        "basis": SOURCE_BASIS,
        "design": SOURCE_DESIGN[design],
        "n_readers": len(readers),
        "n_unnamed": unnamed,
        "per_source": per_source,
        "comparisons": comparisons,
        "note": "; ".join(notes) or None,
    }


def _source_single(matrix: _Matrix, kind: str, cases: np.ndarray) -> dict:
    readers = matrix.readers
    test = "; t test of AUC = 0.5" if kind == "auc" else "" if kind == "sensitivity" else \
        "; t test of accuracy = 0.5"
    figure = {"method": SOURCE_SINGLE_METHOD.format(cases=SOURCE_CASES[kind], fom=SOURCE_FOM[kind], test=test),
              "unit": "reader x case", "n": int(cases.sum()), "n_readers": len(readers)}
    empty = {"estimate": None, "se": None, "df": None, "ci": None, "statistic": None, "p": None}
    note = _source_undefined(matrix, kind, [cases])
    if note:
        return {**figure, **empty, "note": note}
    if kind == "auc":
        result = obuchowski_rockette(matrix.score[:, cases][None], matrix.truth[cases].astype(int), readers=readers)
    else:
        result = obuchowski_rockette_proportion(matrix.correct[:, cases][None], readers=readers)
    single = result.random_readers_random_cases.treatments[0]
    out = {**figure, **_single(single.estimate, single.se, single.df, single.ci, 0.5)}
    if kind == "sensitivity":
        out.update({"statistic": None, "p": None, "note": "; ".join(filter(None, [out["note"], SENSITIVITY_NO_TEST]))})
    return out


def _source_undefined(matrix: _Matrix, kind: str, sets: Sequence[np.ndarray]) -> str | None:
    if len(matrix.readers) < 2:
        return "not defined: needs at least two readers"
    for cases in sets:
        if kind == "auc":
            truth = matrix.truth[cases]
            if min((truth == 1).sum(), (truth == 0).sum()) < 2:
                return "not defined: needs two synthetic and two real cases rated by every reader, per source"
        elif cases.sum() < 2:
            return "not defined: needs at least two cases read by every reader, per source"
    return None


def _source_comparison(matrix: _Matrix, kind: str, names: list[str], sets: list[np.ndarray]) -> dict:
    union = np.any(sets, axis=0)
    figure = {"method": SOURCE_COMPARISON_METHOD.format(fom=SOURCE_FOM[kind], cases=SOURCE_CASES[kind]),
              "unit": "reader x case", "n": int(union.sum()), "n_readers": len(matrix.readers)}
    out: dict[str, Any] = {"figure_of_merit": SOURCE_FOM[kind], **figure,
                           "n_per_source": {name: int(cases.sum()) for name, cases in zip(names, sets)},
                           "treatments": list(names), "test": None, "differences": [], "covariances": None}
    note = _source_undefined(matrix, kind, sets)
    if note:
        return {**out, "note": note}
    values = matrix.score if kind == "auc" else matrix.correct.astype(float)
    member = np.array(sets)[:, union]  # (sources, union cases)
    cube = np.where(member[:, None, :], values[None, :, union], np.nan)
    if kind == "auc":
        result = ragged_obuchowski_rockette(cube, matrix.truth[union].astype(int), treatments=names,
                                            readers=matrix.readers)
    else:
        result = ragged_obuchowski_rockette_proportion(cube, treatments=names, readers=matrix.readers)
    analysis = result.random_readers_random_cases
    test = analysis.test
    notes = []
    if test.df2 is not None and math.isfinite(test.df2) and math.isfinite(test.statistic):
        out["test"] = {"statistic": _r(test.statistic), "df1": test.df1, "df2": _r(test.df2), "p": _p(test.p)}
    else:
        notes.append("F test not defined: no variation between readers and no case covariance")
    for difference in analysis.differences:
        entry = {"label": difference.label, **figure, "estimate": _r(difference.estimate)}
        if not negligible(difference.se) and difference.df is not None and math.isfinite(difference.df):
            entry.update({"se": _r(difference.se), "df": _r(difference.df), "ci": _interval(difference.ci),
                          "statistic": _r(difference.statistic), "p": _p(difference.p), "note": None})
        else:
            entry.update({"se": _r(difference.se), "df": None, "ci": None, "statistic": None, "p": None,
                          "note": "no interval: no variation between readers or cases"})
        out["differences"].append(entry)
    out["covariances"] = {"var_error": _r(result.var_error), "cov1": _r(result.cov1), "cov2": _r(result.cov2),
                          "cov3": _r(result.cov3), "ms_t": _r(result.ms_t), "ms_tr": _r(result.ms_tr)}
    out["note"] = "; ".join(notes) or None
    return out
