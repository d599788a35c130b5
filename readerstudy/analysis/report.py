"""The study report: one JSON-serialisable, deterministic dict built from tidy rows.

The web page and `manage.py analyze` both print this dict as it is, so they
agree to the last digit. Rounding: estimates, intervals, standard errors and
degrees of freedom to 4 decimals; p-values to 4 significant digits (so small
p-values stay readable). Figures that are not defined are None, with a note.

Structure (every "figure" dict, i.e. every dict with an "estimate", carries
method, unit and n):

    format            "readerstudy-report/1"
    settings          {margin, bootstrap, seed, level, rounding, position_bins}
    studies           list, sorted by study name, of:
      study, design, question, categories, n_readers, n_cases, n_answers
                      (all for the first readings of the study's main question)
      n_repeat_readings  main-question rows that repeat a case for a reader
                      (used only by intra_reader; every other figure uses first readings)
      ordinal_score   mixed: how answer + confidence becomes the 1-10 score; paired: None
      groups          [group]: first all readers pooled, then each specialty
                      (radiologist, orthopaedic_surgeon, other, those present),
                      then each reader, sorted
      mrmc            Obuchowski-Rockette over all readers, see below
      agreement       Fleiss' kappa between readers:
                      method, unit ("case"), n (cases read by every reader),
                      n_readers, categories, category_basis, estimate, ci,
                      n_boot, n_boot_undefined, seed, note
      pairwise        Cohen's kappa for every pair of readers: method, unit,
                      categories, category_basis, readers, pairs [{a, b, method,
                      unit, n, estimate, se, ci, note}], matrix [{reader,
                      kappas: one per reader, None on the diagonal and where
                      not defined}], summary {method, unit, n (defined pairs),
                      estimate (mean), min, max, note}
      intra_reader    repeated readings: method, unit ("case read twice"), n,
                      n_readers, categories, category_basis, pooled {figure:
                      estimate, se, ci, agreement (share of identical answers)},
                      readers [{reader, specialty, figure as pooled}], note
      specialty_model correct ~ specialty, GEE logistic clustered by reader
                      (regression.py): method, unit, n, n_readers, reference,
                      included, excluded [{specialty, n_readers, reason}],
                      comparisons [{specialty, reference, method, unit, n,
                      n_readers, estimate (odds ratio), ci, log_odds, se,
                      statistic, df, p}], overall {statistic, df1, df2, p} or
                      None, working_correlation, note
      position        accuracy by reading position: bins [{first, last, method,
                      unit, n, correct, estimate, ci_wilson, note}] and trend
                      {method, unit, n, n_readers, estimate (odds ratio per 100
                      readings), ci, log_odds (per 100 readings), se,
                      statistic, df, p, note}
      sources         only when the study's synthetic cases name two or more
                      sources (the tidy column source); see "sources" below
      further_questions  one dict per further question (sorted by key):
                      question, kind ("choice" or "text"), n_answers,
                      n_readers, n_cases, n_repeat_readings, n_with_reference;
                      text: n_distinct and a note; choice: categories, scores
                      (numbers used for the quadratic weights, None = equal
                      spacing), category_basis, source_basis, distribution
                      [{source, n, answers, reference}] (counts per category),
                      vs_reference and between_readers {real, synthetic, all,
                      difference} (figures; None where not defined, e.g. no
                      image source in a paired design), intra_reader, note

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
      confusion       method, unit, n, rows ("truth"), columns ("answer"),
                      categories, counts (rows x columns)
      pooled and specialty only:
      mrmc_accuracy   Obuchowski–Rockette on per-reader proportion correct,
                      random readers and cases: method, unit, n (cases read by
                      every reader in the group), n_readers, estimate, se, df,
                      ci, statistic and p (test of 0.5), p_equivalence, ci90,
                      margin, verdict (as for equivalence), note
      mixed designs only:
      sensitivity     detecting synthetic: method, unit, n, correct, estimate,
                      ci_clopper_pearson, ci_wilson, note
      specificity     the same for real images
      auc             ordinal score vs truth (synthetic positive).
                      reader:  empirical AUC with DeLong SE: method, unit, n,
                               n_synthetic, n_real, estimate, se, note, and roc:
                               the empirical ROC points [[fpf, tpf], ...]
                      pooled and specialty: Obuchowski–Rockette single-treatment
                               estimate, random readers and cases: method, unit,
                               n (cases read by every reader in the group),
                               n_readers, estimate, se, df, ci, statistic and p
                               (test of AUC = 0.5), note

    mrmc (study level, all readers):
      treatments      the treatment labels (one: every synthetic image together)
      comparison      None; comparison_note says whether the rows name no
                      source, one, or several (then the comparison is in
                      studies[].sources)
      accuracy        figure_of_merit, n, n_readers, note, and one figure per
                      analysis: random_readers_random_cases (t, Hillis df),
                      fixed_readers_random_cases (z, df None),
                      random_readers_fixed_cases (t, readers - 1 df), each with
                      estimate, se, df, ci, statistic and p testing 0.5
      auc             mixed designs: the same for the reader-averaged AUC; None
                      for paired designs

    sources (two or more synthetic sources; sources are the treatments of an
    Obuchowski-Rockette analysis with cases nested in sources, see mrmc.py):
      names           the sources, sorted
      basis, design   what a source is; how cases relate to sources in this
                      design (paired: nested, so the covariance between sources
                      is zero by construction; mixed: synthetic cases nested,
                      real cases shared)
      n_readers, n_unnamed (synthetic cases naming no source: left out), note
      per_source      [{source, n_cases (of the source; mixed: its synthetic
                      cases), n_answers, and
                        paired: accuracy (proportion correct on the source's
                                cases, answers pooled: as group accuracy, with
                                binomial_p), mrmc_accuracy
                        mixed:  sensitivity (answers pooled), mrmc_sensitivity,
                                mrmc_auc (the source's synthetic cases against
                                every real case)
                      }]; mrmc_*: Obuchowski-Rockette single-treatment analysis
                      of the source's own cases alone, random readers and
                      cases: method, unit, n (the source's cases read by every
                      reader), n_readers, estimate, se, df, ci, statistic and p
                      (t test of 0.5; None for sensitivity, whose chance level
                      is not 0.5), note
      comparisons     paired {accuracy}; mixed {sensitivity, auc}: each
                      figure_of_merit, method, unit, n (cases in the union),
                      n_readers, n_per_source, treatments, test {statistic,
                      df1, df2 (Hillis), p} (F test of equal figures; None
                      when not defined), differences [{label ("a - b"), method,
                      unit, n, n_readers, estimate, se, df, ci, statistic, p,
                      note}], covariances {var_error, cov1, cov2, cov3, ms_t,
                      ms_tr}, note

Intervals are [low, high] lists at 95%, except ci90 (the TOST interval).
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats as sps

from .mrmc import (
    ORResult,
    delong_auc,
    obuchowski_rockette,
    obuchowski_rockette_proportion,
    ragged_obuchowski_rockette,
    ragged_obuchowski_rockette_proportion,
    roc_points,
)
from .regression import clustered_logit
from .stats import (
    LEVEL,
    Kappa,
    Proportion,
    binomial_test,
    cohens_kappa,
    fleiss_kappa,
    kappa_arrays,
    kappa_result,
    ordered_categories,
    proportion,
    quadratic_weighted_kappa,
    sensitivity_specificity,
    tost_equivalence,
)
from .tidy import CATEGORIES, QUESTION, SPECIALTIES, AnswerRow, check_rows, first_readings

FORMAT = "readerstudy-report/1"
DECIMALS = 4
ROUNDING = "estimates, intervals, SEs and df to 4 decimals; p-values to 4 significant digits"
POSITION_BINS = 5

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
KAPPA_METHOD = "Cohen's kappa of answers vs truth (statsmodels' formulas); asymptotic SE; Wald 95% interval"
CONFUSION_METHOD = "counts of answers (columns) by truth (rows)"
SENSITIVITY_METHOD = "share of synthetic images answered synthetic; Clopper-Pearson and Wilson 95% intervals"
SPECIFICITY_METHOD = "share of real images answered real; Clopper-Pearson and Wilson 95% intervals"
READER_AUC_METHOD = "empirical (trapezoidal) AUC of the ordinal score for detecting synthetic; DeLong SE"
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
FLEISS_METHOD = (
    "Fleiss' kappa (statsmodels) between readers over the cases every reader read; "
    "case-bootstrap percentile 95% interval"
)
PAIRWISE_METHOD = "Cohen's kappa between two readers over the cases both read; asymptotic SE; Wald 95% interval"
PAIRWISE_SUMMARY_METHOD = "mean, minimum and maximum of the defined pairwise Cohen's kappas"
INTRA_METHOD = (
    "Cohen's kappa between a reader's first and repeat reading of the same case; asymptotic SE; "
    "Wald 95% interval; agreement = share of identical answers"
)
INTRA_POOLED_CAVEAT = "; pairs pooled over readers"
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
QWK_REFERENCE_METHOD = (
    "quadratic-weighted kappa of answers vs the reference label, answers pooled over readers; "
    "case-bootstrap percentile 95% interval (cases resampled within image source)"
)
QWK_READERS_METHOD = (
    "quadratic-weighted kappa between readers, pooled over every pair of readers grading the same case "
    "(the weighted generalisation of Fleiss' kappa); case-bootstrap percentile 95% interval "
    "(cases resampled within image source)"
)
QWK_DIFFERENCE_METHOD = "difference synthetic - real of the kappas above; case-bootstrap percentile 95% interval"
QWK_INTRA_METHOD = (
    "quadratic-weighted kappa between first and repeat grading of the same case, pooled over readers; "
    "asymptotic SE; Wald 95% interval"
)
CATEGORY_BASIS = {
    "paired": "source of the image the reader chose: synthetic when correct, else real "
    "(left and right differ between readers, so sides are not compared)",
    "mixed": "the answer",
}
DIFFERENCE_UNDEFINED = "not defined: needs a defined kappa on both real and synthetic images"
SOURCE_BASIS = "image source of the case: the truth of its real_or_synthetic answer"
SOURCES = ("real", "synthetic")
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


def build_report(
    rows: Sequence[AnswerRow],
    *,
    margin: float = 0.10,
    bootstrap: int = 2000,
    seed: int = 0,
    questions: Mapping[str, Sequence[str] | None] | None = None,
) -> dict:
    """The report for every study in rows; see the module docstring for its structure.

    margin may be a Decimal (a model field); it is used and reported as a float.
    questions optionally declares further questions: key -> its choices in
    order (a choice question), or None (free text). Undeclared questions are
    choice questions when every answer and reference label is a number, and
    free text otherwise.
    """
    margin = float(margin)
    check_rows(rows)
    by_study: dict[str, list[AnswerRow]] = defaultdict(list)
    for row in rows:
        by_study[row.study].append(row)
    return {
        "format": FORMAT,
        "settings": {"margin": margin, "bootstrap": bootstrap, "seed": seed, "level": LEVEL, "rounding": ROUNDING,
                     "position_bins": POSITION_BINS},
        "studies": [
            _study(name, by_study[name], margin, bootstrap, seed, questions or {}) for name in sorted(by_study)
        ],
    }


class _Matrix:
    """The main-question first readings of a study as readers x cases arrays."""

    def __init__(self, rows: list[AnswerRow], design: str):
        self.readers = sorted({row.reader for row in rows})
        self.cases = sorted({row.case for row in rows})
        reader_index = {reader: i for i, reader in enumerate(self.readers)}
        case_index = {case: j for j, case in enumerate(self.cases)}
        shape = (len(self.readers), len(self.cases))
        self.correct = np.full(shape, -1, dtype=np.int8)
        self.category = np.full(shape, -1, dtype=np.int8)  # CATEGORY_BASIS: 0 real, 1 synthetic
        self.score = np.full(shape, np.nan)
        self.position = np.zeros(shape, dtype=np.int64)
        self.truth = np.full(len(self.cases), -1, dtype=np.int8)  # mixed: 1 synthetic
        self.source = np.full(len(self.cases), "", dtype=object)  # synthetic source ("" real or not named)
        for row in rows:
            i, j = reader_index[row.reader], case_index[row.case]
            self.correct[i, j] = row.correct
            self.position[i, j] = row.position
            synthetic = row.answer == "synthetic" if design == "mixed" else bool(row.correct)
            self.category[i, j] = int(synthetic)
            self.source[j] = row.source
            if design == "mixed":
                self.truth[j] = int(row.truth == "synthetic")
                if row.confidence is not None:
                    self.score[i, j] = ordinal_score(row)
        specialty = {row.reader: row.specialty for row in rows}
        self.specialty = np.array([specialty[reader] for reader in self.readers], dtype=object)

    def rows_of(self, readers: Sequence[str]) -> np.ndarray:
        index = {reader: i for i, reader in enumerate(self.readers)}
        return np.array([index[reader] for reader in readers], dtype=int)


def _study(name: str, all_rows: list[AnswerRow], margin: float, bootstrap: int, seed: int,
           questions: Mapping[str, Sequence[str] | None]) -> dict:
    design = all_rows[0].design
    first, pairs = first_readings(all_rows)
    rows = [row for row in first if row.is_main]
    main_pairs = [pair for pair in pairs if pair[0].is_main]
    matrix = _Matrix(rows, design)
    readers = matrix.readers
    by_reader: dict[str, list[AnswerRow]] = defaultdict(list)
    by_specialty: dict[str, list[AnswerRow]] = defaultdict(list)
    for row in rows:
        by_reader[row.reader].append(row)
        by_specialty[row.specialty].append(row)
    max_position = max((row.position for row in all_rows), default=0)
    names = sorted({source for source in matrix.source if source})
    out = {
        "study": name,
        "design": design,
        "question": QUESTION[design],
        "categories": list(CATEGORIES[design]),
        "n_readers": len(readers),
        "n_cases": len(matrix.cases),
        "n_answers": len(rows),
        "n_repeat_readings": len(main_pairs),
        "ordinal_score": ORDINAL_SCORE if design == "mixed" else None,
        "groups": [
            _group("pooled", "all readers", None, rows, design, margin, matrix),
            *(
                _group("specialty", specialty, specialty, by_specialty[specialty], design, margin, matrix)
                for specialty in SPECIALTIES
                if specialty in by_specialty
            ),
            *(
                _group("reader", reader, by_reader[reader][0].specialty, by_reader[reader], design, margin, matrix)
                for reader in readers
            ),
        ],
        "mrmc": _mrmc(matrix, design, names),
        "agreement": _agreement(matrix, design, bootstrap, seed),
        "pairwise": _pairwise(matrix, design),
        "intra_reader": _intra_reader(main_pairs, design),
        "specialty_model": _specialty_model(matrix),
        "position": _position(matrix, max_position),
        "further_questions": _further_questions(first, pairs, rows, design, bootstrap, seed, questions),
    }
    if len(names) >= 2:
        out["sources"] = _sources(matrix, design, names)
    return out


# --- groups -------------------------------------------------------------------------


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


def _crossed(matrix: _Matrix, readers: Sequence[str], values: np.ndarray, missing) -> tuple[np.ndarray, np.ndarray]:
    """values[readers] restricted to the cases every one of them has; returns (submatrix, case mask)."""
    sub = values[matrix.rows_of(readers)]
    have = ~np.isnan(sub) if missing is np.nan else sub != missing
    keep = have.all(axis=0) if len(readers) else np.zeros(sub.shape[1], dtype=bool)
    return sub[:, keep], keep


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


# --- MRMC over all readers ----------------------------------------------------------------


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
        df = single.df if single.df is not None else None
        figure.update(_single(single.estimate, single.se, df, single.ci, 0.5))
        out[name] = figure
    return out


# --- synthetic sources compared -----------------------------------------------------------


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
        if difference.se > 0 and difference.df is not None and math.isfinite(difference.df):
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


# --- agreement between and within readers -------------------------------------------------


def _agreement(matrix: _Matrix, design: str, bootstrap: int, seed: int) -> dict:
    complete = (matrix.category >= 0).all(axis=0) if matrix.readers else np.zeros(len(matrix.cases), dtype=bool)
    chosen = matrix.category[:, complete]
    categories = ("real", "synthetic")
    counts = np.stack([(chosen == 0).sum(axis=0), (chosen == 1).sum(axis=0)], axis=1) if chosen.size else \
        np.zeros((0, 2), dtype=int)
    kappa = fleiss_kappa(counts, n_boot=bootstrap, seed=seed)
    return {
        "method": FLEISS_METHOD,
        "unit": "case",
        "n": int(complete.sum()),
        "n_readers": len(matrix.readers),
        "categories": list(categories),
        "category_basis": CATEGORY_BASIS[design],
        "estimate": _r(kappa.estimate),
        "ci": _interval(kappa.ci),
        "n_boot": kappa.n_boot,
        "n_boot_undefined": kappa.n_boot_undefined,
        "seed": seed,
        "note": kappa.note,
    }


def _pairwise(matrix: _Matrix, design: str) -> dict:
    readers = matrix.readers
    r = len(readers)
    onehot = np.stack([matrix.category == 0, matrix.category == 1], axis=1).astype(float)  # (R, 2, C)
    flat = onehot.reshape(2 * r, len(matrix.cases))
    # tables[a, b, k, l]: cases that reader a put in category k and reader b in l (one matrix product)
    tables = (flat @ flat.T).reshape(r, 2, r, 2).transpose(0, 2, 1, 3)
    kappa, var = kappa_arrays(tables)
    pairs = []
    grid: list[list[float | None]] = [[None] * r for _ in range(r)]
    for a in range(r):
        for b in range(a + 1, r):
            result = kappa_result(int(tables[a, b].sum()), kappa[a, b], var[a, b])
            pairs.append({"a": readers[a], "b": readers[b], **_kappa_figure(result, PAIRWISE_METHOD, "case")})
            grid[a][b] = grid[b][a] = _r(result.estimate)
    defined = [pair["estimate"] for pair in pairs if pair["estimate"] is not None]
    summary = {
        "method": PAIRWISE_SUMMARY_METHOD, "unit": "reader pair", "n": len(defined),
        "estimate": _r(float(np.mean(defined))) if defined else None,
        "min": min(defined) if defined else None, "max": max(defined) if defined else None,
        "note": None if defined else ("not defined: needs at least two readers" if r < 2
                                      else "not defined for any pair of readers"),
    }
    return {
        "method": PAIRWISE_METHOD,
        "unit": "case",
        "categories": ["real", "synthetic"],
        "category_basis": CATEGORY_BASIS[design],
        "readers": readers,
        "pairs": pairs,
        "matrix": [{"reader": reader, "kappas": grid[i]} for i, reader in enumerate(readers)],
        "summary": summary,
    }


def _kappa_figure(result: Kappa, method: str, unit: str) -> dict:
    return {"method": method, "unit": unit, "n": result.n, "estimate": _r(result.estimate), "se": _r(result.se),
            "ci": _interval(result.ci), "note": result.note}


def _intra_reader(pairs: list[tuple[AnswerRow, AnswerRow]], design: str) -> dict:
    def category(row: AnswerRow) -> str:
        if design == "mixed":
            return row.answer
        return "synthetic" if row.correct else "real"

    categories = ("real", "synthetic")
    by_reader: dict[str, list[tuple[AnswerRow, AnswerRow]]] = defaultdict(list)
    for pair in pairs:
        by_reader[pair[0].reader].append(pair)

    def figure(group: list[tuple[AnswerRow, AnswerRow]], method: str) -> dict:
        first = [category(a) for a, _ in group]
        second = [category(b) for _, b in group]
        result = cohens_kappa(first, second, categories)
        same = sum(x == y for x, y in zip(first, second))
        return {**_kappa_figure(result, method, "case read twice"),
                "agreement": _r(same / len(group)) if group else None}

    return {
        "method": INTRA_METHOD,
        "unit": "case read twice",
        "n": len(pairs),
        "n_readers": len(by_reader),
        "categories": list(categories),
        "category_basis": CATEGORY_BASIS[design],
        "pooled": figure(pairs, INTRA_METHOD + INTRA_POOLED_CAVEAT),
        "readers": [
            {"reader": reader, "specialty": by_reader[reader][0][0].specialty,
             **figure(by_reader[reader], INTRA_METHOD)}
            for reader in sorted(by_reader)
        ],
        "note": None if pairs else "no repeated readings in these answers",
    }


# --- specialty and reading position ------------------------------------------------------


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


# --- further questions ------------------------------------------------------------------


def _further_questions(first: list[AnswerRow], pairs: list[tuple[AnswerRow, AnswerRow]], main: list[AnswerRow],
                       design: str, bootstrap: int, seed: int,
                       declared: Mapping[str, Sequence[str] | None]) -> list[dict]:
    by_question: dict[str, list[AnswerRow]] = defaultdict(list)
    for row in first:
        if not row.is_main:
            by_question[row.question].append(row)
    repeats: dict[str, list[tuple[AnswerRow, AnswerRow]]] = defaultdict(list)
    for pair in pairs:
        if not pair[0].is_main:
            repeats[pair[0].question].append(pair)
    source = {row.case: row.truth for row in main} if design == "mixed" else {}
    return [
        _further(key, by_question[key], repeats[key], source, design, bootstrap, seed, declared)
        for key in sorted(by_question)
    ]


def _further(key: str, rows: list[AnswerRow], repeats: list[tuple[AnswerRow, AnswerRow]], source: dict[str, str],
             design: str, bootstrap: int, seed: int, declared: Mapping[str, Sequence[str] | None]) -> dict:
    values = [row.answer for row in rows] + [row.truth for row in rows] + \
        [b.answer for _, b in repeats]
    out: dict[str, Any] = {
        "question": key,
        "n_answers": len(rows),
        "n_readers": len({row.reader for row in rows}),
        "n_cases": len({row.case for row in rows}),
        "n_repeat_readings": len(repeats),
        "n_with_reference": sum(1 for row in rows if row.truth != ""),
    }
    notes = []
    if key in declared and declared[key] is None:
        kind = "text"
    elif key in declared:
        kind = "choice"
        given = [str(choice) for choice in declared[key]]
        extra, _ = ordered_categories(v for v in values if v not in given)
        categories = given + extra
        if extra:
            notes.append(f"answers outside the declared choices, added at the end: {', '.join(extra)}")
        try:
            scores = [float(c) for c in categories]
            if not all(b > a for a, b in zip(scores, scores[1:])):
                scores = None
        except ValueError:
            scores = None
        basis = "the declared choices" + (" and further values seen" if extra else "")
    else:
        categories, scores = ordered_categories(values)
        kind = "choice" if scores is not None else "text"
        basis = "every answer and reference label seen, in numeric order"
    out["kind"] = kind
    if kind == "text":
        out["n_distinct"] = len({row.answer for row in rows if row.answer})
        out["note"] = "free text (or not every value a number): counted, not analysed"
        return out
    unanswered = sum(1 for row in rows if row.answer == "")
    if unanswered:
        notes.append(f"{unanswered} empty answers left out")
        rows = [row for row in rows if row.answer != ""]
        repeats = [(a, b) for a, b in repeats if a.answer != "" and b.answer != ""]
    if len(categories) < 2:
        notes.append("fewer than two categories: kappa not defined")
    out.update({"categories": categories, "scores": scores, "category_basis": basis,
                "source_basis": SOURCE_BASIS if design == "mixed" else None})
    index = {category: i for i, category in enumerate(categories)}
    k = len(categories)
    cases = sorted({row.case for row in rows})
    case_index = {case: j for j, case in enumerate(cases)}
    answers = np.zeros((len(cases), k))  # per case: answers by category
    versus = np.zeros((len(cases), k, k))  # per case: (answer, reference) counts
    reference_counts = np.zeros((len(cases), k))
    for row in rows:
        j = case_index[row.case]
        answers[j, index[row.answer]] += 1
        if row.truth != "":
            versus[j, index[row.answer], index[row.truth]] += 1
            reference_counts[j, index[row.truth]] += 1
    between = answers[:, :, None] * answers[:, None, :] - answers[:, :, None] * np.eye(k)  # ordered reader pairs
    case_source = np.array([source.get(case, "") for case in cases])
    if design == "mixed":
        unknown = int((case_source == "").sum())
        if unknown:
            notes.append(f"{unknown} cases without a real_or_synthetic answer left out of the split by source")
        strata = {name: np.flatnonzero(case_source == name) for name in SOURCES}
    else:
        notes.append("image source not defined in a paired design (both images are shown): figures for all cases only")
        strata = {"all": np.arange(len(cases))}
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(key.encode())]))
    draws = {name: _bootstrap_weights(rng, len(idx), bootstrap) for name, idx in strata.items()}

    def stratum_tables(per_case: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """name -> (point table, bootstrap tables)."""
        out_tables = {}
        for name, idx in strata.items():
            flat = per_case[idx].reshape(len(idx), k * k)
            out_tables[name] = (flat.sum(axis=0).reshape(k, k), (draws[name] @ flat).reshape(-1, k, k))
        return out_tables

    out["distribution"] = [
        {"source": name, "n": int(answers[idx].sum()), "answers": answers[idx].sum(axis=0).astype(int).tolist(),
         "reference": reference_counts[idx].sum(axis=0).astype(int).tolist()}
        for name, idx in strata.items()
    ]
    if design == "mixed":
        out["distribution"].append({"source": "all", "n": int(answers.sum()),
                                    "answers": answers.sum(axis=0).astype(int).tolist(),
                                    "reference": reference_counts.sum(axis=0).astype(int).tolist()})
    for name, per_case, method, unit in (
        ("vs_reference", versus, QWK_REFERENCE_METHOD, "answer"),
        ("between_readers", between, QWK_READERS_METHOD, "pair of readings of a case"),
    ):
        tables = stratum_tables(per_case)
        empty = "not defined: no answers with a reference label" if name == "vs_reference" else \
            "not defined: no case graded by two readers"
        out[name] = _qwk_block(tables, strata, scores, method, unit, bootstrap, design, name == "between_readers", empty)
    if repeats:
        result = quadratic_weighted_kappa([a.answer for a, _ in repeats], [b.answer for _, b in repeats],
                                          categories, scores)
        out["intra_reader"] = _kappa_figure(result, QWK_INTRA_METHOD, "case graded twice")
    else:
        out["intra_reader"] = {"method": QWK_INTRA_METHOD, "unit": "case graded twice", "n": 0, "estimate": None,
                               "se": None, "ci": None, "note": "no repeated readings"}
    out["note"] = "; ".join(notes) or None
    return out


def _bootstrap_weights(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) counts of how often each case is drawn in each resample."""
    if n == 0 or n_boot == 0:
        return np.zeros((n_boot, n))
    draws = rng.integers(0, n, size=(n_boot, n))
    offsets = np.arange(n_boot)[:, None] * n
    return np.bincount((draws + offsets).ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _qwk_block(tables: dict[str, tuple[np.ndarray, np.ndarray]], strata: dict[str, np.ndarray],
               scores: Sequence[float] | None, method: str, unit: str, n_boot: int, design: str,
               pairs: bool, empty: str) -> dict:
    """Kappa per source, for all cases, and the difference synthetic - real."""
    k = next(iter(tables.values()))[0].shape[0]
    if "all" not in tables:
        point = sum(t[0] for t in tables.values())
        boot = sum(t[1] for t in tables.values())
        tables = {**tables, "all": (point, boot)}
    estimates: dict[str, tuple[float, np.ndarray]] = {}
    block: dict[str, Any] = {}
    for name in ("real", "synthetic", "all"):
        if name not in tables:
            block[name] = None
            continue
        point, boot = tables[name]
        if k < 2:
            kappa, boot_kappa = np.nan, np.full(len(boot), np.nan)
        else:
            kappa = float(kappa_arrays(point, weighted=True, scores=scores)[0])
            boot_kappa = kappa_arrays(boot, weighted=True, scores=scores)[0] if len(boot) else np.zeros(0)
        estimates[name] = (kappa, boot_kappa)
        count = int(point.sum()) // (2 if pairs else 1)
        n_cases = len(strata[name]) if name in strata else sum(len(idx) for idx in strata.values())
        block[name] = _boot_figure(kappa, boot_kappa, method, unit, count, n_cases, n_boot, empty)
    if design == "mixed" and "real" in estimates and "synthetic" in estimates:
        (real, real_boot), (synthetic, synthetic_boot) = estimates["real"], estimates["synthetic"]
        difference = synthetic - real
        block["difference"] = _boot_figure(difference, synthetic_boot - real_boot, QWK_DIFFERENCE_METHOD, "case",
                                           len(strata["real"]) + len(strata["synthetic"]),
                                           len(strata["real"]) + len(strata["synthetic"]), n_boot,
                                           "not defined: no cases", DIFFERENCE_UNDEFINED)
    else:
        block["difference"] = None
    return block


def _boot_figure(estimate: float, boot: np.ndarray, method: str, unit: str, n: int, n_cases: int,
                 n_boot: int, empty: str, undefined: str = "not defined: every rating in one category") -> dict:
    figure = {"method": method, "unit": unit, "n": n, "n_cases": n_cases, "n_boot": n_boot}
    if math.isnan(estimate):
        note = empty if n == 0 else undefined
        return {**figure, "estimate": None, "ci": None, "n_boot_undefined": n_boot, "note": note}
    defined = boot[~np.isnan(boot)]
    undefined = n_boot - defined.size
    if n_boot == 0:
        return {**figure, "estimate": _r(estimate), "ci": None, "n_boot_undefined": 0,
                "note": "no bootstrap interval requested"}
    if defined.size == 0:
        return {**figure, "estimate": _r(estimate), "ci": None, "n_boot_undefined": undefined,
                "note": "no resample had a defined kappa"}
    low, high = np.percentile(defined, [50 * (1 - LEVEL), 50 * (1 + LEVEL)])
    note = f"{undefined} of {n_boot} resamples had no defined kappa" if undefined else None
    return {**figure, "estimate": _r(estimate), "ci": [_r(float(low)), _r(float(high))],
            "n_boot_undefined": undefined, "note": note}


# --- formatting -------------------------------------------------------------------------


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
    "mrmc_accuracy", "mrmc_accuracy_low", "mrmc_accuracy_high", "mrmc_accuracy_df", "mrmc_accuracy_p",
    "mrmc_equivalence",
    "kappa", "kappa_se", "kappa_low", "kappa_high",
    "sensitivity", "sensitivity_low", "sensitivity_high",
    "specificity", "specificity_low", "specificity_high",
    "auc", "auc_se", "auc_low", "auc_high",
)


def flat_rows(report: dict) -> list[dict[str, Any]]:
    """The pooled, specialty and reader groups as flat rows with FLAT_COLUMNS,
    e.g. for CSV. Proportion intervals are Clopper–Pearson unless named Wilson;
    mrmc_* (pooled and specialty rows) are the Obuchowski–Rockette figures."""
    out = []
    for study in report["studies"]:
        for group in study["groups"]:
            accuracy, kappa = group["accuracy"], group["kappa"]
            mrmc = group.get("mrmc_accuracy", {})
            row = {
                "study": study["study"], "design": study["design"], "level": group["level"],
                "label": group["label"], "specialty": group["specialty"],
                "n_readers": group["n_readers"], "n_answers": group["n_answers"],
                "accuracy": accuracy["estimate"],
                **_ends("accuracy_cp", accuracy["ci_clopper_pearson"]),
                **_ends("accuracy_wilson", accuracy["ci_wilson"]),
                "binomial_p": accuracy["binomial_p"],
                "tost_p": group["equivalence"]["p"], "tost_verdict": group["equivalence"]["verdict"],
                "mrmc_accuracy": mrmc.get("estimate"), **_ends("mrmc_accuracy", mrmc.get("ci")),
                "mrmc_accuracy_df": mrmc.get("df"), "mrmc_accuracy_p": mrmc.get("p"),
                "mrmc_equivalence": mrmc.get("verdict"),
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
