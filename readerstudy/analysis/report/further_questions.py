"""The report's further_questions section: questions asked besides real or synthetic.

A choice question (e.g. a grade) gets its answer distribution and
quadratic-weighted kappas vs the reference label, between readers and
within a reader, split by image source (real, synthetic) in mixed designs,
with case-bootstrap intervals; a free-text question is only counted.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from typing import Any, Mapping, Sequence

import numpy as np

from .format import _interval, _kappa_figure, _p, _r
from ..statistics.kappa import KappaTest, cohen_kappa_test, fleiss_kappa_test
from ..statistics.stats import LEVEL, cohens_kappa, kappa_arrays, ordered_categories, quadratic_weighted_kappa
from ..tidy import AnswerRow

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
DIFFERENCE_UNDEFINED = "not defined: needs a defined kappa on both real and synthetic images"
SOURCES = ("real", "synthetic")

# Grading is split into real and synthetic images by the case's truth, not by which generator made it.
IMAGE_SOURCE_BASIS = "image source of the case: the truth of its real_or_synthetic answer"


def _further_questions(first: list[AnswerRow], pairs: list[tuple[AnswerRow, AnswerRow]], main: list[AnswerRow],
                       design: str, bootstrap: int, seed: int,
                       declared: Mapping[str, Sequence[str] | None],
                       scales: Mapping[str, str] | None = None,
                       custom_weights: Mapping[str, Sequence[Sequence[float]]] | None = None) -> list[dict]:
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
        _further(key, by_question[key], repeats[key], source, design, bootstrap, seed, declared,
                 (scales or {}).get(key), (custom_weights or {}).get(key))
        for key in sorted(by_question)
    ]


def _further(key: str, rows: list[AnswerRow], repeats: list[tuple[AnswerRow, AnswerRow]], source: dict[str, str],
             design: str, bootstrap: int, seed: int, declared: Mapping[str, Sequence[str] | None],
             scale: str | None = None, custom: Sequence[Sequence[float]] | None = None) -> dict:
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
    if kind == "choice" and scale is None:
        # Ordered only when the choices are numbers (grades); labels are nominal unless declared ordinal,
        # so the order a question lists its labels in cannot change its kappa.
        scale = "ordinal" if scores is not None else "nominal"
        scale_basis = "inferred: " + ("every choice is a number" if scale == "ordinal" else "the choices are labels")
    else:
        scale_basis = "declared"
    out["kind"] = kind
    if kind == "choice":
        out["scale"], out["scale_basis"] = scale, scale_basis
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
                "source_basis": IMAGE_SOURCE_BASIS if design == "mixed" else None})
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
        if scale == "nominal":
            method = method.replace("quadratic-weighted kappa", "unweighted kappa (nominal categories)")
        out[name] = _qwk_block(tables, strata, scores, method, unit, bootstrap, design, name == "between_readers", empty,
                               weighted=scale == "ordinal")
    out["kappa"] = kappa_tests(rows, categories, scores, scale, custom)
    if repeats and scale == "nominal":
        result = cohens_kappa([a.answer for a, _ in repeats], [b.answer for _, b in repeats], categories)
        out["intra_reader"] = _kappa_figure(result, QWK_INTRA_METHOD.replace("quadratic-weighted", "unweighted"),
                                            "case graded twice")
    elif repeats:
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
               pairs: bool, empty: str, weighted: bool = True) -> dict:
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
            kappa = float(kappa_arrays(point, weighted=weighted, scores=scores)[0])
            boot_kappa = kappa_arrays(boot, weighted=weighted, scores=scores)[0] if len(boot) else np.zeros(0)
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


KAPPA_TEST_METHOD = {
    "none": "Cohen's kappa, unweighted (nominal categories)",
    "linear": "Cohen's weighted kappa, linear (Cicchetti-Allison) weights",
    "quadratic": "Cohen's weighted kappa, quadratic (Fleiss-Cohen) weights",
    "custom": "Cohen's weighted kappa, the question's own agreement weights",
}
KAPPA_TEST_SUFFIX = ("; asymptotic SE (Fleiss, Cohen & Everitt 1969), Wald 95% interval; "
                     "test of kappa = 0 with the SE under the null, two-sided z")
FLEISS_TEST_METHOD = ("Fleiss' kappa (1971), unweighted, cases graded by every reader; SE under kappa = 0 from "
                      "Fleiss, Nee & Landis (1979), two-sided z test; jackknife SE over cases and Wald 95% interval; "
                      "per-category kappas")


def kappa_tests(rows: list[AnswerRow], categories: list[str], scores: Sequence[float] | None, scale: str,
                custom: Sequence[Sequence[float]] | None) -> dict:
    """Kappa with SE, interval and the test of kappa = 0, by the question's scale:
    nominal: unweighted; ordinal: linear and quadratic (and custom weights when
    given). vs_reference pools answers over readers; pairs is every pair of
    readers over the cases both graded; fleiss (nominal) is every reader
    together over the cases all of them graded."""
    k = len(categories)
    weight_names = ["none"] if scale == "nominal" else ["linear", "quadratic"]
    if custom is not None:
        weight_names.append("custom")
    index = {category: i for i, category in enumerate(categories)}

    def weights_of(name: str):
        return custom if name == "custom" else name

    def table(pairs: list[tuple[str, str]]) -> np.ndarray:
        counts = np.zeros((k, k))
        for a, b in pairs:
            counts[index[a], index[b]] += 1
        return counts

    def figure(result: KappaTest, method: str, unit: str) -> dict:
        return {"method": method + KAPPA_TEST_SUFFIX, "unit": unit, "n": result.n, "weights": result.weights,
                "estimate": _r(result.estimate), "se": _r(result.se), "ci": _interval(result.ci),
                "se0": _r(result.se0), "z": _r(result.z), "p": _p(result.p), "note": result.note}

    out: dict[str, Any] = {"scale": scale, "weights": weight_names, "categories": categories,
                           "vs_reference": {}, "pairs": [], "fleiss": None}
    if k < 2:
        out["note"] = "not defined: fewer than two categories"
        return out
    with_reference = [(row.answer, row.truth) for row in rows if row.truth != ""]
    for name in weight_names:
        result = cohen_kappa_test(table(with_reference), weights_of(name), scores)
        out["vs_reference"][name] = figure(result, KAPPA_TEST_METHOD[name] + " of answers vs the reference label, "
                                           "answers pooled over readers", "answer")
    by_reader: dict[str, dict[str, str]] = defaultdict(dict)
    for row in rows:
        by_reader[row.reader][row.case] = row.answer
    readers = sorted(by_reader)
    for i, a in enumerate(readers):
        for b in readers[i + 1:]:
            shared = sorted(by_reader[a].keys() & by_reader[b].keys())
            counts = table([(by_reader[a][c], by_reader[b][c]) for c in shared])
            out["pairs"].append({"a": a, "b": b, "kappas": {
                name: figure(cohen_kappa_test(counts, weights_of(name), scores),
                             KAPPA_TEST_METHOD[name] + " between two readers", "case")
                for name in weight_names}})
    if scale == "nominal":
        common = sorted(set.intersection(*(set(by_reader[r]) for r in readers))) if readers else []
        counts = np.zeros((len(common), k))
        for j, case in enumerate(common):
            for reader in readers:
                counts[j, index[by_reader[reader][case]]] += 1
        result = fleiss_kappa_test(counts)
        out["fleiss"] = {
            "method": FLEISS_TEST_METHOD, "unit": "case", "n": result.n_items, "n_readers": result.n_raters,
            "estimate": _r(result.estimate), "se0": _r(result.se0), "z": _r(result.z), "p": _p(result.p),
            "se": _r(result.se_jackknife), "ci": _interval(result.ci_jackknife),
            "categories": [{"category": c, "estimate": _r(v)} for c, v in zip(categories, result.category_kappas)],
            "note": result.note,
        }
    return out
