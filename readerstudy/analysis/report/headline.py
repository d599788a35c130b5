"""The headline: the multi-reader figures a paper cites, first on the report.

Readers and cases both random (Obuchowski-Rockette, Hillis df): accuracy,
kappa of answer against truth and, in mixed designs, the AUC, each with its
95% interval, and the equivalence verdict from the multi-reader 90% interval.
Pooled-answer figures (answers treated as independent) understate the
variation between readers and are secondary: the size of their tests is
wrong when readers differ (tests/test_headline.py measures both).

Kappa: in a paired design kappa = 2·accuracy − 1 exactly (balanced sides),
so its interval is the accuracy interval mapped the same way; in a mixed
design each reader's Cohen's kappa is the figure of merit of the same OR
analysis, with jackknife (leave-one-case-out) kappas for the covariances.
Intervals are truncated to the figure's range ([0, 1], kappa [−1, 1]) and
say so.
"""

from __future__ import annotations

import numpy as np

from ..statistics.kappa import jackknife_kappa
from ..statistics.mrmc import or_analysis
from .format import _single
from .matrix import _crossed, _Matrix

HEADLINE_METHOD = (
    "Obuchowski-Rockette, random readers and random cases (Hillis df, jackknife covariances over cases): "
    "the figures generalise to other readers and other images"
)
KAPPA_PAIRED = "Cohen's kappa = 2·accuracy − 1 (paired design): the accuracy figure and interval mapped"
KAPPA_MIXED = ("mean of the readers' Cohen's kappas (answer vs truth), Obuchowski-Rockette random readers and "
               "cases, jackknife covariances over cases, Hillis df, t 95% interval")


def _headline(study: dict, matrix: _Matrix, design: str) -> dict:
    pooled = study["groups"][0]
    accuracy = pooled.get("mrmc_accuracy") or {}
    out = {
        "method": HEADLINE_METHOD,
        "rule": study["completeness"]["rule_text"],
        "n_readers": accuracy.get("n_readers"),
        "n_cases": accuracy.get("n"),
        "accuracy": accuracy,
        "verdict": accuracy.get("verdict", "not defined"),
        "kappa": _kappa(matrix, design, accuracy),
        "auc": pooled.get("auc") if design == "mixed" else None,
        "interim": study["completeness"]["interim"],
    }
    return out


def _kappa(matrix: _Matrix, design: str, accuracy: dict) -> dict:
    figure = {"unit": "reader x case", "n": accuracy.get("n"), "n_readers": accuracy.get("n_readers")}
    empty = {"estimate": None, "se": None, "df": None, "ci": None, "statistic": None, "p": None}
    if design == "paired":
        if accuracy.get("estimate") is None:
            return {"method": KAPPA_PAIRED, **figure, **empty, "note": accuracy.get("note")}
        ci = accuracy["ci"]
        return {"method": KAPPA_PAIRED, **figure, "estimate": 2 * accuracy["estimate"] - 1,
                "se": None if accuracy["se"] is None else 2 * accuracy["se"], "df": accuracy["df"],
                "ci": None if ci is None else [2 * ci[0] - 1, 2 * ci[1] - 1],
                "statistic": accuracy["statistic"], "p": accuracy["p"], "note": accuracy.get("note")}
    if matrix.unbalanced_note:
        return {"method": KAPPA_MIXED, **figure, **empty, "note": matrix.unbalanced_note}
    answers, keep = _crossed(matrix, matrix.readers, matrix.category, -1)
    truth = matrix.truth[keep]
    n = int(keep.sum())
    figure["n"] = n
    if len(matrix.readers) < 2 or n < 3:
        return {"method": KAPPA_MIXED, **figure, **empty,
                "note": "not defined: needs at least two readers and three cases read by every reader"}
    fom, pseudo = jackknife_kappa(answers.astype(int), np.broadcast_to(truth.astype(int), answers.shape), 2)
    if np.isnan(fom).any() or np.isnan(pseudo).any():
        return {"method": KAPPA_MIXED, **figure, **empty,
                "note": "not defined: some reader's kappa (or a leave-one-case-out kappa) is undefined, "
                        "e.g. every answer in one category"}
    result = or_analysis(fom[None], pseudo[None], readers=matrix.readers)
    single = result.random_readers_random_cases.treatments[0]
    return {"method": KAPPA_MIXED, **figure,
            **_single(single.estimate, single.se, single.df, single.ci, 0.0, bounds=(-1.0, 1.0))}
