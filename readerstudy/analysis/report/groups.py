"""The report's groups (all readers, each specialty, each reader): answers pooled.

Per group: accuracy with the binomial test, TOST equivalence to 0.5, Cohen's
kappa vs truth and the confusion table; mixed designs add sensitivity,
specificity and the AUC (a reader's empirical AUC, or for pooled and specialty
groups the Obuchowski-Rockette AUC from report/mrmc.py, as is their mrmc_accuracy).
"""

from __future__ import annotations

from typing import Sequence

from ..statistics.mrmc import delong_auc, roc_points
from .format import POOLED_CAVEAT, _interval, _p, _proportion, _r
from .matrix import _Matrix, ordinal_score
from .mrmc import _group_mrmc_accuracy, _mrmc_auc
from ..statistics.stats import Proportion, binomial_test, cohens_kappa, proportion, sensitivity_specificity, tost_equivalence
from ..tidy import CATEGORIES, AnswerRow

ACCURACY_METHOD = (
    "proportion correct; Clopper-Pearson exact and Wilson score 95% intervals; "
    "exact two-sided binomial test of accuracy = 0.5"
)
EQUIVALENCE_METHOD = (
    "TOST equivalence to 0.5 within the margin: two exact one-sided binomial tests at 5%; "
    "equivalent when both reject, i.e. the 90% Clopper-Pearson interval lies inside 0.5 ± margin"
)
KAPPA_METHOD = "Cohen's kappa of answers vs truth (statsmodels' formulas); asymptotic SE; Wald 95% interval"
CONFUSION_METHOD = "counts of answers (columns) by truth (rows)"
SENSITIVITY_METHOD = "share of synthetic images answered synthetic; Clopper-Pearson and Wilson 95% intervals"
SPECIFICITY_METHOD = "share of real images answered real; Clopper-Pearson and Wilson 95% intervals"
READER_AUC_METHOD = "empirical (trapezoidal) AUC of the ordinal score for detecting synthetic; DeLong SE"


def _group(level: str, label: str, specialty: str | None, rows: list[AnswerRow], design: str, margin: float,
           matrix: _Matrix) -> dict:
    n = len(rows)
    correct = sum(row.correct for row in rows)
    caveat = POOLED_CAVEAT if level != "reader" else ""
    accuracy = proportion(correct, n)
    equivalence = tost_equivalence(correct, n, margin=margin)
    truth = [row.truth for row in rows]
    answers = [row.answer for row in rows]
    categories = CATEGORIES[design]
    kappa = cohens_kappa(truth, answers, categories)
    group_readers = sorted({row.reader for row in rows})
    group = {
        "level": level,
        "label": label,
        "specialty": specialty,
        "n_readers": len(group_readers),
        "n_answers": n,
        "accuracy": {
            **_proportion(accuracy, ACCURACY_METHOD + caveat),
            "binomial_p": _p(binomial_test(correct, n).p),
        },
        "equivalence": {
            "method": EQUIVALENCE_METHOD + caveat,
            "unit": "answer",
            "n": n,
            "margin": margin,
            "p_lower": _p(equivalence.p_lower),
            "p_upper": _p(equivalence.p_upper),
            "p": _p(equivalence.p),
            "ci90": _interval(equivalence.ci),
            "verdict": equivalence.verdict,
            "note": equivalence.note,
        },
        "kappa": {
            "method": KAPPA_METHOD + caveat,
            "unit": "answer",
            "n": n,
            "estimate": _r(kappa.estimate),
            "se": _r(kappa.se),
            "ci": _interval(kappa.ci),
            "note": kappa.note,
        },
        "confusion": _confusion(truth, answers, categories),
    }
    if level != "reader":
        group["mrmc_accuracy"] = _group_mrmc_accuracy(matrix, group_readers, margin)
    if design == "paired":
        group["kappa"].update(_paired_kappa(truth, accuracy))
    else:
        split = sensitivity_specificity(truth, answers)
        group["sensitivity"] = _proportion(split.sensitivity, SENSITIVITY_METHOD + caveat)
        group["specificity"] = _proportion(split.specificity, SPECIFICITY_METHOD + caveat)
        group["auc"] = _reader_auc(rows) if level == "reader" else _mrmc_auc(matrix, group_readers)
    return group


def _confusion(truth: list[str], answers: list[str], categories: Sequence[str]) -> dict:
    index = {category: i for i, category in enumerate(categories)}
    counts = [[0] * len(categories) for _ in categories]
    for t, a in zip(truth, answers):
        counts[index[t]][index[a]] += 1
    return {"method": CONFUSION_METHOD, "unit": "answer", "n": len(truth), "rows": "truth", "columns": "answer",
            "categories": list(categories), "counts": counts}


def _paired_kappa(truth: list[str], accuracy: Proportion) -> dict:
    n = len(truth)
    left = truth.count("left")
    return {
        "from_accuracy": _r(2 * accuracy.estimate - 1) if accuracy.estimate is not None else None,
        "synthetic_left": left,
        "balanced": 2 * left == n,
        "statement": (
            "With the synthetic image equally often left and right, chance agreement is 0.5 "
            "whatever the reader answers, so kappa vs truth equals 2·accuracy − 1; "
            f"here the synthetic image was left in {left} of {n} answers."
        ),
    }


def _reader_auc(rows: list[AnswerRow]) -> dict:
    rated = [row for row in rows if row.confidence is not None]
    figure = {"method": READER_AUC_METHOD, "unit": "answer", "n": len(rated)}
    if not rated:
        return {**figure, "n_synthetic": 0, "n_real": 0, "estimate": None, "se": None,
                "note": "not computed: no confidence ratings", "roc": []}
    scores = [ordinal_score(row) for row in rated]
    truth = [int(row.truth == "synthetic") for row in rated]
    estimate = delong_auc(scores, truth)
    notes = [estimate.note] if estimate.note else []
    if len(rated) < len(rows):
        notes.append(f"{len(rows) - len(rated)} answers without confidence left out")
    return {
        **figure,
        "n_synthetic": estimate.n_positive,
        "n_real": estimate.n_negative,
        "estimate": _r(estimate.auc),
        "se": _r(estimate.se),
        "note": "; ".join(notes) or None,
        "roc": [[_r(x), _r(y)] for x, y in roc_points(scores, truth)],
    }
