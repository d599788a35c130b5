"""Per-case results: which synthetic images fooled most readers, which real ones were called synthetic.

For every case (main question, first readings of the analysed readers): its
truth, source, how many readers answered wrongly and their share, overall
and per specialty, the mean confidence of the answers (mixed designs), the
median reading time, and an optional machine score (a classifier's score
for the case, from the machine reader where there is one). What "wrong"
means, per design:

    paired  the reader picked the real image as the synthetic one: the
            synthetic image fooled them
    mixed   synthetic case answered real (fooled), or real case answered
            synthetic (called synthetic)

The report keeps cases in case order; the page sorts them, and the gallery
shows the most convincing synthetic images first (highest share fooled).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Mapping

from ..tidy import SPECIALTIES, AnswerRow
from .format import _r

CASE_COLUMNS = ("study", "case", "truth", "source", "n_readers", "n_wrong", "share_wrong",
                *(f"{name}_{specialty}" for specialty in SPECIALTIES for name in ("n", "share_wrong")),
                "mean_confidence", "median_reading_ms", "machine_score",
                "rule", "interim", "study_state", "last_answer_at", "generated_at", "software")
WRONG_MEANING = {
    "paired": "share of readers who picked the real image as the synthetic one (fooled by the synthetic image)",
    "mixed": "share of readers who answered wrongly: synthetic called real (fooled), or real called synthetic",
}


def _cases(rows: list[AnswerRow], design: str, machine: Mapping[str, float] | None) -> dict:
    by_case: dict[str, list[AnswerRow]] = defaultdict(list)
    for row in rows:
        by_case[row.case].append(row)
    out = []
    for case in sorted(by_case, key=lambda c: (0, int(c), "") if c.isdigit() else (1, 0, c)):
        readings = by_case[case]
        wrong = sum(1 - row.correct for row in readings)
        truth = readings[0].truth if design == "mixed" else "pair"
        entry = {
            "case": case, "truth": truth, "source": readings[0].source or None,
            "n_readers": len(readings), "n_wrong": wrong, "share_wrong": _r(wrong / len(readings)),
            "specialties": {},
            "mean_confidence": None, "median_reading_ms": _r(float(statistics.median(r.reading_ms for r in readings))),
            "machine_score": None if not machine or case not in machine else _r(float(machine[case])),
        }
        for specialty in SPECIALTIES:
            own = [row for row in readings if row.specialty == specialty]
            if own:
                entry["specialties"][specialty] = {"n": len(own),
                                                   "share_wrong": _r(sum(1 - r.correct for r in own) / len(own))}
        confidences = [row.confidence for row in readings if row.confidence is not None]
        if confidences:
            entry["mean_confidence"] = _r(statistics.fmean(confidences))
        out.append(entry)
    synthetic = [c for c in out if design == "paired" or c["truth"] == "synthetic"]
    real = [c for c in out if design == "mixed" and c["truth"] == "real"]

    def ranked(items: list[dict]) -> list[str]:
        return [c["case"] for c in sorted(items, key=lambda c: (-c["share_wrong"], c["n_readers"] * -1,
                                                                 _order(c["case"])))]

    return {
        "method": "per case: " + WRONG_MEANING[design] + "; first readings of the analysed readers",
        "unit": "case",
        "n": len(out),
        "has_machine_score": any(c["machine_score"] is not None for c in out),
        "specialties": [sp for sp in SPECIALTIES if any(sp in c["specialties"] for c in out)],
        "cases": out,
        "most_convincing_synthetic": ranked(synthetic),
        "real_called_synthetic": ranked([c for c in real if c["n_wrong"]]),
    }


def _order(case: str) -> tuple:
    return (0, int(case), "") if case.isdigit() else (1, 0, case)


def case_rows(report: dict) -> list[dict]:
    """The per-case results of every study as flat rows (CASE_COLUMNS), for CSV, stamped like the report."""
    out = []
    stamp = report.get("stamp") or {}
    states = {s["study"]: s for s in stamp.get("studies", [])}
    for study in report["studies"]:
        state = states.get(study["study"], {})
        stamped = {"rule": study["completeness"]["rule"], "interim": study["completeness"]["interim"],
                   "study_state": state.get("state"), "last_answer_at": state.get("last_answer_at"),
                   "generated_at": stamp.get("generated_at"), "software": stamp.get("software")}
        for case in (study.get("cases") or {}).get("cases", []):
            row = {"study": study["study"], **{k: case[k] for k in ("case", "truth", "source", "n_readers",
                                                                     "n_wrong", "share_wrong", "mean_confidence",
                                                                     "median_reading_ms", "machine_score")}}
            for specialty in SPECIALTIES:
                own = case["specialties"].get(specialty)
                row[f"n_{specialty}"] = own["n"] if own else 0
                row[f"share_wrong_{specialty}"] = own["share_wrong"] if own else None
            out.append({**row, **stamped})
    return out
