"""The study report: one JSON-serialisable, deterministic dict built from tidy rows.

The web page and `manage.py analyze` both print this dict as it is, so they
agree to the last digit. Rounding: estimates, intervals, standard errors and
degrees of freedom to 4 decimals; p-values to 4 significant digits (so small
p-values stay readable). Figures that are not defined are None, with a note.

Structure (every "figure" dict carries method, unit and n):

    format            "readerstudy-report/1"
    settings          {margin, bootstrap, seed, level, rounding}
    studies           list, sorted by study name, of:
      study, design, question, categories, n_readers, n_cases, n_answers
                      (all for the study's main question)
      ordinal_score   mixed: how answer + confidence becomes the 1-10 score; paired: None
      further_questions  [{question, n_answers}]: other questions in the rows,
                      listed but not analysed by this version of the report
      groups          [group]: first all readers pooled, then each specialty
                      (radiologist, orthopaedic_surgeon, other, those present),
                      then each reader, sorted
      agreement       Fleiss' kappa between readers:
                      method, unit ("case"), n (cases read by every reader),
                      n_readers, categories, category_basis, estimate, ci,
                      n_boot, n_boot_undefined, seed, note

    group:
      level           "pooled" | "specialty" | "reader"
      label           "all readers" | the specialty | the reader
      specialty       the reader's specialty (None when pooled)
      n_readers, n_answers
      accuracy        method, unit ("answer"), n, correct, estimate,
                      ci_clopper_pearson, ci_wilson, binomial_p, note
      equivalence     TOST against 0.5 ± margin: method, unit, n, margin,
                      p_lower, p_upper, p, ci90, note and verdict: "equivalent",
                      "not equivalent" (90% interval wholly outside), "inconclusive"
                      or "not defined"
      kappa           Cohen's kappa of answers vs truth: method, unit, n,
                      estimate, se, ci, note; paired designs add from_accuracy
                      (2·accuracy − 1), synthetic_left (answers whose truth
                      was left), balanced and statement
      mixed designs only:
      sensitivity     detecting synthetic: method, unit, n, correct, estimate,
                      ci_clopper_pearson, ci_wilson, note
      specificity     the same for real images
      auc             ordinal score vs truth (synthetic positive).
                      reader:  empirical AUC with DeLong SE: method, unit, n,
                               n_synthetic, n_real, estimate, se, note
                      pooled and specialty: Obuchowski–Rockette single-treatment
                               estimate, random readers and cases: method, unit,
                               n (cases read by every reader in the group),
                               n_readers, estimate, se, df, ci, note

Intervals are [low, high] lists at 95%, except ci90 (the TOST interval).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from .mrmc import delong_auc, obuchowski_rockette
from .stats import (
    LEVEL,
    Proportion,
    binomial_test,
    category_counts,
    cohens_kappa,
    fleiss_kappa,
    proportion,
    sensitivity_specificity,
    tost_equivalence,
)
from .tidy import CATEGORIES, QUESTION, SPECIALTIES, AnswerRow, check_rows

FORMAT = "readerstudy-report/1"
DECIMALS = 4
ROUNDING = "estimates, intervals, SEs and df to 4 decimals; p-values to 4 significant digits"

ORDINAL_SCORE = (
    "answer synthetic with confidence c scores 5 + c (6-10); answer real with "
    "confidence c scores 6 - c (1-5); higher means more sure the image is synthetic"
)
POOLED_CAVEAT = "; answers pooled over readers and treated as independent, which understates between-reader variation"
ACCURACY_METHOD = (
    "proportion correct; Clopper-Pearson exact and Wilson score 95% intervals; "
    "exact two-sided binomial test of accuracy = 0.5"
)
EQUIVALENCE_METHOD = (
    "TOST equivalence to 0.5 within the margin: two exact one-sided binomial tests at 5%; "
    "equivalent when both reject, i.e. the 90% Clopper-Pearson interval lies inside 0.5 ± margin"
)
KAPPA_METHOD = "Cohen's kappa of answers vs truth (statsmodels); asymptotic SE; Wald 95% interval"
SENSITIVITY_METHOD = "share of synthetic images answered synthetic; Clopper-Pearson and Wilson 95% intervals"
SPECIFICITY_METHOD = "share of real images answered real; Clopper-Pearson and Wilson 95% intervals"
READER_AUC_METHOD = "empirical (trapezoidal) AUC of the ordinal score for detecting synthetic; DeLong SE"
MRMC_AUC_METHOD = (
    "Obuchowski-Rockette single-treatment analysis, random readers and random cases: "
    "mean trapezoidal AUC of the ordinal score, jackknife covariances, Hillis df, t 95% interval"
)
FLEISS_METHOD = (
    "Fleiss' kappa (statsmodels) between readers over the cases every reader read; "
    "case-bootstrap percentile 95% interval"
)
CATEGORY_BASIS = {
    "paired": "source of the image the reader chose: synthetic when correct, else real "
    "(left and right differ between readers, so sides are not compared)",
    "mixed": "the answer",
}


def build_report(rows: Sequence[AnswerRow], *, margin: float = 0.10, bootstrap: int = 2000, seed: int = 0) -> dict:
    """The report for every study in rows; see the module docstring for its structure.

    margin may be a Decimal (a model field); it is used and reported as a float.
    """
    margin = float(margin)
    check_rows(rows)
    by_study: dict[str, list[AnswerRow]] = defaultdict(list)
    for row in rows:
        by_study[row.study].append(row)
    return {
        "format": FORMAT,
        "settings": {"margin": margin, "bootstrap": bootstrap, "seed": seed, "level": LEVEL, "rounding": ROUNDING},
        "studies": [_study(name, by_study[name], margin, bootstrap, seed) for name in sorted(by_study)],
    }


def _study(name: str, all_rows: list[AnswerRow], margin: float, bootstrap: int, seed: int) -> dict:
    design = all_rows[0].design
    further: dict[str, int] = defaultdict(int)
    for row in all_rows:
        if not row.is_main:
            further[row.question] += 1
    rows = [row for row in all_rows if row.is_main]
    readers = sorted({row.reader for row in rows})
    by_reader: dict[str, list[AnswerRow]] = defaultdict(list)
    by_specialty: dict[str, list[AnswerRow]] = defaultdict(list)
    for row in rows:
        by_reader[row.reader].append(row)
        by_specialty[row.specialty].append(row)
    return {
        "study": name,
        "design": design,
        "question": QUESTION[design],
        "categories": list(CATEGORIES[design]),
        "n_readers": len(readers),
        "n_cases": len({row.case for row in rows}),
        "n_answers": len(rows),
        "ordinal_score": ORDINAL_SCORE if design == "mixed" else None,
        "further_questions": [{"question": key, "n_answers": further[key]} for key in sorted(further)],
        "groups": [
            _group("pooled", "all readers", None, rows, design, margin),
            *(
                _group("specialty", specialty, specialty, by_specialty[specialty], design, margin)
                for specialty in SPECIALTIES
                if specialty in by_specialty
            ),
            *(
                _group("reader", reader, by_reader[reader][0].specialty, by_reader[reader], design, margin)
                for reader in readers
            ),
        ],
        "agreement": _agreement(rows, design, bootstrap, seed),
    }


def _group(level: str, label: str, specialty: str | None, rows: list[AnswerRow], design: str, margin: float) -> dict:
    n = len(rows)
    correct = sum(row.correct for row in rows)
    caveat = POOLED_CAVEAT if level != "reader" else ""
    accuracy = proportion(correct, n)
    equivalence = tost_equivalence(correct, n, margin=margin)
    truth = [row.truth for row in rows]
    answers = [row.answer for row in rows]
    kappa = cohens_kappa(truth, answers, CATEGORIES[design])
    group = {
        "level": level,
        "label": label,
        "specialty": specialty,
        "n_readers": len({row.reader for row in rows}),
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
    }
    if design == "paired":
        group["kappa"].update(_paired_kappa(truth, accuracy))
    else:
        split = sensitivity_specificity(truth, answers)
        group["sensitivity"] = _proportion(split.sensitivity, SENSITIVITY_METHOD + caveat)
        group["specificity"] = _proportion(split.specificity, SPECIFICITY_METHOD + caveat)
        group["auc"] = _reader_auc(rows) if level == "reader" else _mrmc_auc(rows)
    return group


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


def ordinal_score(row: AnswerRow) -> int:
    """1 (sure real) .. 10 (sure synthetic); see ORDINAL_SCORE."""
    if row.confidence is None:
        raise ValueError("the ordinal score needs a confidence rating")
    return 5 + row.confidence if row.answer == "synthetic" else 6 - row.confidence


def _reader_auc(rows: list[AnswerRow]) -> dict:
    rated = [row for row in rows if row.confidence is not None]
    figure = {"method": READER_AUC_METHOD, "unit": "answer", "n": len(rated)}
    if not rated:
        return {**figure, "n_synthetic": 0, "n_real": 0, "estimate": None, "se": None,
                "note": "not computed: no confidence ratings"}
    estimate = delong_auc([ordinal_score(row) for row in rated], [int(row.truth == "synthetic") for row in rated])
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
    }


def _mrmc_auc(rows: list[AnswerRow]) -> dict:
    readers = sorted({row.reader for row in rows})
    scores: dict[str, dict[str, int]] = defaultdict(dict)
    truth: dict[str, int] = {}
    for row in rows:
        if row.confidence is not None:
            scores[row.reader][row.case] = ordinal_score(row)
            truth[row.case] = int(row.truth == "synthetic")
    rated = [set(scores.get(reader, {})) for reader in readers]
    cases = sorted(set.intersection(*rated)) if rated else []
    figure = {"method": MRMC_AUC_METHOD, "unit": "reader x case", "n": len(cases), "n_readers": len(readers)}
    empty = {"estimate": None, "se": None, "df": None, "ci": None}
    if len(readers) < 2:
        return {**figure, **empty, "note": "not defined: needs at least two readers"}
    case_truth = np.array([truth[case] for case in cases], dtype=int)
    if min(case_truth.sum(), len(cases) - case_truth.sum()) < 2:
        return {**figure, **empty, "note": "not defined: needs two synthetic and two real cases rated by every reader"}
    matrix = np.array([[scores[reader][case] for case in cases] for reader in readers], dtype=float)
    single = obuchowski_rockette(matrix[None], case_truth, readers=readers).random_readers_random_cases.treatments[0]
    if not math.isfinite(single.df):
        # Readers with identical AUCs and no positive case covariance leave no
        # sampling error in the denominator, so the df are unbounded.
        return {**figure, "estimate": _r(single.estimate), "se": _r(single.se), "df": None,
                "ci": _interval(single.ci), "note": "df unbounded: no between-reader variation; normal interval"}
    return {**figure, "estimate": _r(single.estimate), "se": _r(single.se), "df": _r(single.df),
            "ci": _interval(single.ci), "note": None}


def _agreement(rows: list[AnswerRow], design: str, bootstrap: int, seed: int) -> dict:
    readers = sorted({row.reader for row in rows})
    category: dict[tuple[str, str], str] = {}
    for row in rows:
        category[row.reader, row.case] = row.answer if design == "mixed" else ("synthetic" if row.correct else "real")
    read_by: dict[str, int] = defaultdict(int)
    for _, case in category:
        read_by[case] += 1
    cases = sorted(case for case, count in read_by.items() if count == len(readers))
    categories = ("real", "synthetic")
    counts = category_counts([[category[reader, case] for reader in readers] for case in cases], categories)
    kappa = fleiss_kappa(counts, n_boot=bootstrap, seed=seed)
    return {
        "method": FLEISS_METHOD,
        "unit": "case",
        "n": len(cases),
        "n_readers": len(readers),
        "categories": list(categories),
        "category_basis": CATEGORY_BASIS[design],
        "estimate": _r(kappa.estimate),
        "ci": _interval(kappa.ci),
        "n_boot": kappa.n_boot,
        "n_boot_undefined": kappa.n_boot_undefined,
        "seed": seed,
        "note": kappa.note,
    }


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


FLAT_COLUMNS = (
    "study", "design", "level", "label", "specialty", "n_readers", "n_answers",
    "accuracy", "accuracy_cp_low", "accuracy_cp_high", "accuracy_wilson_low", "accuracy_wilson_high",
    "binomial_p", "tost_p", "tost_verdict",
    "kappa", "kappa_se", "kappa_low", "kappa_high",
    "sensitivity", "sensitivity_low", "sensitivity_high",
    "specificity", "specificity_low", "specificity_high",
    "auc", "auc_se", "auc_low", "auc_high",
)


def flat_rows(report: dict) -> list[dict[str, Any]]:
    """The pooled, specialty and reader groups as flat rows with FLAT_COLUMNS,
    e.g. for CSV. Proportion intervals are Clopper–Pearson unless named Wilson."""
    out = []
    for study in report["studies"]:
        for group in study["groups"]:
            accuracy, kappa = group["accuracy"], group["kappa"]
            row = {
                "study": study["study"], "design": study["design"], "level": group["level"],
                "label": group["label"], "specialty": group["specialty"],
                "n_readers": group["n_readers"], "n_answers": group["n_answers"],
                "accuracy": accuracy["estimate"],
                **_ends("accuracy_cp", accuracy["ci_clopper_pearson"]),
                **_ends("accuracy_wilson", accuracy["ci_wilson"]),
                "binomial_p": accuracy["binomial_p"],
                "tost_p": group["equivalence"]["p"], "tost_verdict": group["equivalence"]["verdict"],
                "kappa": kappa["estimate"], "kappa_se": kappa["se"], **_ends("kappa", kappa["ci"]),
            }
            for name in ("sensitivity", "specificity"):
                figure = group.get(name, {})
                row[name] = figure.get("estimate")
                row.update(_ends(name, figure.get("ci_clopper_pearson")))
            auc = group.get("auc", {})
            row.update({"auc": auc.get("estimate"), "auc_se": auc.get("se"), **_ends("auc", auc.get("ci"))})
            out.append(row)
    return out


def _ends(prefix: str, ci: list[float] | None) -> dict[str, float | None]:
    low, high = ci if ci is not None else (None, None)
    return {f"{prefix}_low": low, f"{prefix}_high": high}
