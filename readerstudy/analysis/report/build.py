"""The study report: one JSON-serialisable, deterministic dict built from tidy rows.

The web page and `manage.py analyze` both print this dict, so they agree to
the last digit. Precision: the dict (JSON, CSV) keeps full double precision;
pages and print show format.for_display(report): estimates, intervals,
standard errors and degrees of freedom to 4 decimals, p-values to 4
significant digits. Figures that are not defined are None, with a note.

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

Where the code is: this module builds the report (build_report) and its flat
rows (flat_rows); each section has its own module:

    groups                    groups (answers pooled)
    mrmc                      mrmc, and groups' mrmc_accuracy and auc
    agreement                 agreement, pairwise, intra_reader
    specialty_position        specialty_model, position
    sources                   sources
    further_questions         further_questions
    matrix                    the readers x cases arrays they share; ordinal_score
    format                    rounding and the figure dicts
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Collection, Iterable, Mapping, Sequence

from .agreement import _agreement, _intra_reader, _pairwise
from .cases import _cases
from .headline import _headline
from .reading_time import _reading_time
from .completeness import DEFAULT_RULE, Exclusion, Expected, apply_completeness, expected_for
from .format import PRECISION
from .further_questions import _further_questions
from .groups import _group
from .matrix import ORDINAL_SCORE, _Matrix
from .mrmc import _mrmc
from .sources import _sources
from .specialty_position import POSITION_BINS, _position, _specialty_model
from ..statistics.stats import LEVEL
from ..tidy import CATEGORIES, QUESTION, SPECIALTIES, AnswerRow, check_rows, first_readings

FORMAT = "readerstudy-report/1"


def build_report(
    rows: Sequence[AnswerRow],
    *,
    margin: float = 0.10,
    bootstrap: int = 2000,
    seed: int = 0,
    questions: Mapping[str, Sequence[str] | None] | None = None,
    rule: str = DEFAULT_RULE,
    exclusions: Iterable[Exclusion] = (),
    expected: Mapping[str, Expected] | None = None,
    open_studies: Collection[str] = (),
    stamp: Mapping[str, Any] | None = None,
    machine_scores: Mapping[str, Mapping[Any, float] | None] | None = None,
    scales: Mapping[str, str] | None = None,
    weights: Mapping[str, Sequence[Sequence[float]]] | None = None,
) -> dict:
    """The report for every study in rows; see the module docstring for its structure.

    rule, exclusions, expected and open_studies decide which readings the
    analyses use and whether the report is interim (completeness.py); stamp
    (stamps.py) says when, by which software and in which study state the
    report was made. machine_scores: study name -> {case number: score} (a
    machine reader's per-case score, shown in the per-case results when given).
    scales declares a choice question nominal or ordinal (key -> "nominal" |
    "ordinal"; undeclared: ordinal when every choice is a number); weights
    gives an ordinal question its own agreement-weight matrix (key -> k x k).

    margin may be a Decimal (a model field); it is used and reported as a float.
    questions optionally declares further questions: key -> its choices in
    order (a choice question), or None (free text). Undeclared questions are
    choice questions when every answer and reference label is a number, and
    free text otherwise.
    """
    margin = float(margin)
    check_rows(rows)
    exclusions = list(exclusions)
    by_study: dict[str, list[AnswerRow]] = defaultdict(list)
    for row in rows:
        by_study[row.study].append(row)
    studies = [
        _study(name, by_study[name], margin, bootstrap, seed, questions or {}, rule, exclusions,
               expected_for(expected, name), name in open_studies,
               {str(case): score for case, score in ((machine_scores or {}).get(name) or {}).items()},
               scales or {}, weights or {})
        for name in sorted(by_study)
    ]
    return {
        "format": FORMAT,
        "stamp": dict(stamp) if stamp is not None else None,
        "interim": any(study["completeness"]["interim"] for study in studies),
        "settings": {"margin": margin, "bootstrap": bootstrap, "seed": seed, "level": LEVEL, "rounding": PRECISION,
                     "position_bins": POSITION_BINS, "rule": rule},
        "studies": studies,
    }


def _study(name: str, given_rows: list[AnswerRow], margin: float, bootstrap: int, seed: int,
           questions: Mapping[str, Sequence[str] | None], rule: str, exclusions: list[Exclusion],
           expected: Expected | None, study_open: bool, machine: Mapping[str, float],
           scales: Mapping[str, str], custom_weights: Mapping[str, Sequence[Sequence[float]]]) -> dict:
    design = given_rows[0].design
    all_rows, completeness = apply_completeness(given_rows, QUESTION[design], rule=rule, exclusions=exclusions,
                                                expected=expected, study_open=study_open)
    first, pairs = first_readings(all_rows)
    rows = [row for row in first if row.is_main]
    main_pairs = [pair for pair in pairs if pair[0].is_main]
    matrix = _Matrix(rows, design)
    matrix.unbalanced_note = completeness["unbalanced_note"]
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
        "further_questions": _further_questions(first, pairs, rows, design, bootstrap, seed, questions, scales,
                                                custom_weights),
        "empty": not rows,
        "completeness": completeness,
    }
    if len(names) >= 2 and not matrix.unbalanced_note:
        out["sources"] = _sources(matrix, design, names)
    out["headline"] = _headline(out, matrix, design)
    out["cases"] = _cases(rows, design, machine)
    out["reading_time"] = _reading_time(rows, design)
    return out


FLAT_COLUMNS = (
    "study", "design", "level", "label", "specialty", "n_readers", "n_answers",
    "accuracy", "accuracy_cp_low", "accuracy_cp_high", "accuracy_wilson_low", "accuracy_wilson_high",
    "binomial_p", "tost_p", "tost_verdict",
    "mrmc_accuracy", "mrmc_accuracy_low", "mrmc_accuracy_high", "mrmc_accuracy_df", "mrmc_accuracy_p",
    "mrmc_equivalence",
    "kappa_answer_vs_truth", "kappa_answer_vs_truth_se", "kappa_answer_vs_truth_low", "kappa_answer_vs_truth_high",
    "mrmc_kappa_answer_vs_truth", "mrmc_kappa_answer_vs_truth_low", "mrmc_kappa_answer_vs_truth_high",
    "fleiss_kappa_between_readers", "fleiss_kappa_between_readers_low", "fleiss_kappa_between_readers_high",
    "mean_cohen_kappa_between_reader_pairs",
    "sensitivity", "sensitivity_low", "sensitivity_high",
    "specificity", "specificity_low", "specificity_high",
    "auc", "auc_se", "auc_low", "auc_high",
    "rule", "interim", "study_state", "last_answer_at", "generated_at", "software",
)


def flat_rows(report: dict) -> list[dict[str, Any]]:
    """The pooled, specialty and reader groups as flat rows with FLAT_COLUMNS,
    e.g. for CSV, at full precision. Proportion intervals are Clopper–Pearson
    unless named Wilson; mrmc_* (pooled and specialty rows) are the
    Obuchowski–Rockette figures (random readers and cases), the headline.
    Each kappa column says which kappa it is: kappa_answer_vs_truth (Cohen,
    answers pooled in the group), mrmc_kappa_answer_vs_truth (the headline's,
    pooled row only), fleiss_kappa_between_readers (unweighted, cases read by
    every reader, case-bootstrap interval; pooled row only) and
    mean_cohen_kappa_between_reader_pairs (pooled row only). Every row
    carries the stamp: the completeness rule, whether the report is interim,
    the study state, its last answer, when and by what software the report
    was made."""
    out = []
    stamp = report.get("stamp") or {}
    states = {s["study"]: s for s in stamp.get("studies", [])}
    for study in report["studies"]:
        headline = study.get("headline") or {}
        state = states.get(study["study"], {})
        for group in study["groups"]:
            accuracy, kappa = group["accuracy"], group["kappa"]
            mrmc = group.get("mrmc_accuracy", {})
            pooled = group["level"] == "pooled"
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
                "kappa_answer_vs_truth": kappa["estimate"], "kappa_answer_vs_truth_se": kappa["se"],
                **_ends("kappa_answer_vs_truth", kappa["ci"]),
                "mrmc_kappa_answer_vs_truth": None, "mrmc_kappa_answer_vs_truth_low": None,
                "mrmc_kappa_answer_vs_truth_high": None,
                "fleiss_kappa_between_readers": None, "fleiss_kappa_between_readers_low": None,
                "fleiss_kappa_between_readers_high": None, "mean_cohen_kappa_between_reader_pairs": None,
                "rule": study["completeness"]["rule"], "interim": study["completeness"]["interim"],
                "study_state": state.get("state"), "last_answer_at": state.get("last_answer_at"),
                "generated_at": stamp.get("generated_at"), "software": stamp.get("software"),
            }
            if pooled:
                figure = headline.get("kappa") or {}
                row.update({"mrmc_kappa_answer_vs_truth": figure.get("estimate"),
                            **_ends("mrmc_kappa_answer_vs_truth", figure.get("ci"))})
                agreement = study.get("agreement") or {}
                row.update({"fleiss_kappa_between_readers": agreement.get("estimate"),
                            **_ends("fleiss_kappa_between_readers", agreement.get("ci")),
                            "mean_cohen_kappa_between_reader_pairs":
                                (study.get("pairwise") or {}).get("summary", {}).get("estimate")})
            for name in ("sensitivity", "specificity"):
                figure = group.get(name, {})
                row[name] = figure.get("estimate")
                row.update(_ends(name, figure.get("ci_clopper_pearson")))
            auc = group.get("auc", {})
            row.update({"auc": auc.get("estimate"), "auc_se": auc.get("se"), **_ends("auc", auc.get("ci"))})
            out.append({column: row[column] for column in FLAT_COLUMNS})
    return out


def _ends(prefix: str, ci: list[float] | None) -> dict[str, float | None]:
    low, high = ci if ci is not None else (None, None)
    return {f"{prefix}_low": low, f"{prefix}_high": high}
