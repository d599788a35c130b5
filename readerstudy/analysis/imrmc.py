"""iMRMC's input format: export a mixed study for the FDA's iMRMC, and read
iMRMC files from other platforms for our Obuchowski–Rockette AUC analysis.

The format (iMRMC's "*.imrmc" input file, as its Java and R versions read it):

    free text lines (the first one is the title); among them the study size
        NR: <readers>   N0: <signal-absent cases>   N1: <signal-present cases>
        NM: <modalities>
    BEGIN DATA:
    readerID,caseID,modalityID,score      one line per reading
    -1,caseID,0,truth                     one line per case: truth 0 or 1

Truth rows have readerID -1 (or "truth", as iMRMC's R package writes them)
and score 0 (signal absent) or 1 (signal present); their modalityID is
ignored. Scores are any numbers, higher meaning more likely signal present.

Export (to_imrmc). Only a mixed design fits: iMRMC analyses ROC data, a score
for each image and the truth of that image. Signal present = the image is
synthetic (truth 1); the score is the report's 1-10 ordinal score (answer and
confidence, see report/matrix.py ORDINAL_SCORE); the modalityID is the study name with
characters other than letters, digits, "_" and "-" replaced by "_", as one
modality (every synthetic source together). When the synthetic cases name
two or more sources (the tidy column source), each source is a modality
instead (its name, characters replaced the same way): a synthetic case is
written under its own source's modality only, and every real case under
every modality with the reader's one score repeated, since each source's
images are ranked against all the real images; the truth rows (one per
case) are shared. iMRMC's format allows this: a reading is a (reader, case,
modality) triple, truth rows name a case whatever their modalityID, and
iMRMC documents that its U-statistic analysis "can treat arbitrary study
designs and studies with missing data, not just fully-crossed study designs"
(iMRMC R package description, version 2.x). A real case read in every
modality with one score is then a case shared by all sources, so iMRMC sees
the same case covariance between sources' AUCs as the report's analysis.
Synthetic cases naming no source are then left out (the header says how
many). Only first readings are
exported, like every main analysis; answers without a confidence rating have
no ordinal score and are left out (the header says how many). A paired
(two-alternative forced-choice) design is refused: its reader sees a real
and a synthetic image side by side, and there is no score per image, only
which side was chosen; its proportion correct is analysed in the report by
the Obuchowski–Rockette analysis of proportion correct (report
studies[].mrmc.accuracy), which needs no export.

Import (from_imrmc, mrmc_report). The file is checked (every line four fields,
numeric scores, one truth per case, no reading twice) and analysed by
mrmc.obuchowski_rockette over the cases every reader scored in every
modality: reader AUCs with DeLong SEs and ROC points, and the three OR
analyses with each modality's interval (tested against AUC 0.5) and, with two
modalities or more, their differences and the F (or chi-square) test.
When the modalities do not share their cases (some case is scored by every
reader in one modality but not in another, as in a multi-source export),
the analysis is mrmc.ragged_obuchowski_rockette instead: each modality's AUC
uses the cases every reader scored in it, the jackknife runs over their
union, and each modality's own interval comes from that modality alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import stats as sps

from .statistics.mrmc import delong_auc, obuchowski_rockette, ragged_obuchowski_rockette, roc_points
from .report.format import PRECISION, _p, _r, negligible
from .report.matrix import ORDINAL_SCORE, ordinal_score
from .report.mrmc import or_tables
from .tidy import AnswerRow, check_rows, first_readings

FORMAT = "readerstudy-mrmc-report/1"
BEGIN = "BEGIN DATA:"
TRUTH_READERS = ("-1", "truth")
READER_METHOD = "empirical (trapezoidal) AUC of the reader's scores; DeLong SE"
VARIANTS = {
    "random_readers_random_cases": "random readers and random cases: Hillis df, t 95% intervals",
    "fixed_readers_random_cases": "fixed readers, random cases: z 95% intervals, chi-square test",
    "random_readers_fixed_cases": "random readers, fixed cases: treatment x reader ANOVA, t 95% intervals",
}


class ImrmcFormatError(ValueError):
    """An iMRMC file or export that cannot be written or read; the message says where."""


@dataclass(frozen=True)
class ImrmcData:
    """The content of an iMRMC input file."""

    title: str
    header: tuple[str, ...]  # every line before BEGIN DATA:
    declared: dict[str, int]  # NR, N0, N1, NM as the header states them
    truth: dict[str, int]  # case -> 0 / 1
    scores: dict[tuple[str, str, str], float] = field(repr=False)  # (modality, reader, case) -> score

    @property
    def readers(self) -> list[str]:
        return _natural(sorted({reader for _, reader, _ in self.scores}))

    @property
    def modalities(self) -> list[str]:
        return _natural(sorted({modality for modality, _, _ in self.scores}))

    @property
    def cases(self) -> list[str]:
        return _natural(sorted(self.truth))


def _natural(values: list[str]) -> list[str]:
    return sorted(values, key=lambda v: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", v)
                                         if p])


# --- export ---------------------------------------------------------------------------


def to_imrmc(rows: Sequence[AnswerRow]) -> str:
    """One mixed study's answers as an iMRMC input file (see the module docstring)."""
    check_rows(rows)
    studies = sorted({row.study for row in rows})
    if len(studies) != 1:
        raise ImrmcFormatError(f"export one study at a time; these rows hold {len(studies)}")
    first, _ = first_readings(rows)
    main = [row for row in first if row.is_main]
    if not main:
        raise ImrmcFormatError("no answers to the study's own question to export")
    if main[0].design != "mixed":
        raise ImrmcFormatError(
            "iMRMC analyses ROC data: a score for each image and that image's truth. A paired study shows a real "
            "and a synthetic image together and records only which one the reader chose, so there is no score per "
            "image to export; its proportion correct is analysed by the report's Obuchowski-Rockette analysis "
            "of proportion correct (studies[].mrmc.accuracy) instead"
        )
    rated = [row for row in main if row.confidence is not None]
    if not rated:
        raise ImrmcFormatError("no answer has a confidence rating, so there is no ordinal score to export")
    for row in rated:
        for name in ("reader", "case"):
            value = getattr(row, name)
            if "," in value or value.strip() != value or value in TRUTH_READERS:
                raise ImrmcFormatError(f"{name} {value!r} cannot be written as an iMRMC ID (commas, spaces or -1)")
    modality = re.sub(r"[^A-Za-z0-9_-]", "_", studies[0]) or "study"
    names = sorted({row.source for row in rated if row.source})
    unnamed = 0
    if len(names) >= 2:
        modalities = {name: re.sub(r"[^A-Za-z0-9_-]", "_", name) for name in names}
        if len(set(modalities.values())) < len(names):
            raise ImrmcFormatError(f"source names {', '.join(names)} give the same iMRMC modality ID")
        unnamed_cases = {row.case for row in rated if row.truth == "synthetic" and not row.source}
        unnamed = len(unnamed_cases)
        rated = [row for row in rated if row.case not in unnamed_cases]
    truth = {row.case: int(row.truth == "synthetic") for row in rated}
    readers = sorted({row.reader for row in rated})
    if len(names) >= 2:
        readings = [(row.reader, row.case, modalities[row.source] if row.source else m, ordinal_score(row))
                    for row in rated for m in ([modalities[row.source]] if row.source else modalities.values())]
        modality_lines = [
            f"modalities: one per synthetic source ({', '.join(modalities.values())}); a synthetic case is read in "
            "its source's modality only; every real case in every modality (the same score repeated)",
            f"synthetic cases naming no source left out: {unnamed}",
        ]
        nm = len(names)
    else:
        readings = [(row.reader, row.case, modality, ordinal_score(row)) for row in rated]
        modality_lines = []
        nm = 1
    lines = [
        f"readerstudy export of study {studies[0]!r} (mixed design)",
        "truth: 1 = synthetic image (signal present), 0 = real image",
        f"score: ordinal score 1-10: {ORDINAL_SCORE}",
        "first readings only (repeat readings are left out)",
        f"answers without a confidence rating left out: {sum(1 for row in main if row.confidence is None)}",
        *modality_lines,
        "",
        f"NR: {len(readers)}",
        f"N0: {sum(1 for v in truth.values() if v == 0)}",
        f"N1: {sum(1 for v in truth.values() if v == 1)}",
        f"NM: {nm}",
        "",
        BEGIN,
    ]
    lines += [f"-1,{case},0,{truth[case]}" for case in sorted(truth)]
    lines += [f"{reader},{case},{m},{score}" for reader, case, m, score in sorted(readings, key=lambda r: r[:3])]
    return "\n".join(lines) + "\n"


def is_imrmc(text: str) -> bool:
    """Whether text looks like an iMRMC input file (it has a BEGIN DATA: line)."""
    return any(line.strip() == BEGIN for line in text.splitlines())


# --- import ---------------------------------------------------------------------------


def from_imrmc(text: str) -> ImrmcData:
    """Parse and check an iMRMC input file; ImrmcFormatError names the line."""
    lines = text.splitlines()
    try:
        begin = next(i for i, line in enumerate(lines) if line.strip() == BEGIN)
    except StopIteration:
        raise ImrmcFormatError(f"no '{BEGIN}' line: not an iMRMC input file") from None
    header = tuple(line.rstrip() for line in lines[:begin])
    declared = {}
    for number, line in enumerate(header, start=1):
        match = re.fullmatch(r"\s*(NR|N0|N1|NM)\s*:\s*(\S*)\s*", line)
        if match:
            try:
                declared[match.group(1)] = int(match.group(2))
            except ValueError:
                raise ImrmcFormatError(f"line {number}: {match.group(1)} is not a whole number") from None
    truth: dict[str, int] = {}
    scores: dict[tuple[str, str, str], float] = {}
    for number, line in enumerate(lines[begin + 1:], start=begin + 2):
        if not line.strip():
            continue
        fields = [part.strip() for part in line.split(",")]
        if len(fields) != 4:
            raise ImrmcFormatError(
                f"line {number}: expected readerID,caseID,modalityID,score; found {len(fields)} fields"
            )
        reader, case, modality, text_score = fields
        if not (reader and case and modality):
            raise ImrmcFormatError(f"line {number}: empty ID")
        try:
            score = float(text_score)
        except ValueError:
            raise ImrmcFormatError(f"line {number}: score {text_score!r} is not a number") from None
        if not math.isfinite(score):
            raise ImrmcFormatError(f"line {number}: score {text_score!r} is not finite")
        if reader in TRUTH_READERS:
            if score not in (0, 1):
                raise ImrmcFormatError(f"line {number}: truth of case {case!r} must be 0 or 1, got {text_score}")
            if truth.setdefault(case, int(score)) != int(score):
                raise ImrmcFormatError(f"line {number}: case {case!r} has two different truths")
            continue
        key = (modality, reader, case)
        if key in scores:
            raise ImrmcFormatError(
                f"line {number}: reader {reader!r} scores case {case!r} in modality {modality!r} twice"
            )
        scores[key] = score
    if not scores:
        raise ImrmcFormatError(f"no readings after '{BEGIN}'")
    missing = sorted({case for _, _, case in scores} - truth.keys())
    if missing:
        shown = ", ".join(repr(case) for case in missing[:5])
        more = " and more" if len(missing) > 5 else ""
        raise ImrmcFormatError(f"no truth row (readerID -1) for case {shown}{more}")
    title = next((line.strip() for line in header if line.strip()), "")
    return ImrmcData(title, header, declared, truth, scores)


def mrmc_report(data: ImrmcData, *, alpha: float = 0.05) -> dict:
    """The OR AUC analysis of an iMRMC file as a JSON-serialisable dict.

    Structure: format, source, title, settings {level, rounding}, modalities,
    design ("crossed": the analysed cases are scored by every reader in every
    modality; "ragged": modalities have their own cases, see the module
    docstring), modality_cases [{modality, n, n_positive, n_negative}] (cases
    scored by every reader in that modality),
    n_readers, n_cases (analysed: crossed, scored by every reader in every
    modality; ragged, scored by every reader in at least one modality),
    n_positive, n_negative, n_cases_in_file, n_cases_left_out, header_check
    (differences between the header's NR/N0/N1/NM and the data, or None),
    readers [one figure per reader and modality: reader, modality, method,
    unit, n, n_positive, n_negative, estimate (AUC), se, note, roc],
    analyses {random_readers_random_cases, fixed_readers_random_cases,
    random_readers_fixed_cases: {method, unit, n, n_readers, treatments
    [{modality, method, unit, n, estimate, se, df, ci, statistic, p}] (p tests
    AUC = 0.5), test {statistic, df1, df2, p} or None, differences [{label,
    method, unit, n, estimate, se, df, ci, statistic, p}]}} (None when the
    analysis is not defined; fixed_readers_random_cases adds readers: each
    reader's own difference), or_tables (report/mrmc.py or_tables: ANOVA,
    OR and DBM variance components, covariances, per-treatment and per-reader
    error variances, the error term), note. Full precision throughout.
    """
    modalities, readers, cases = data.modalities, data.readers, data.cases
    in_modality = {m: {case for case in cases if all((m, r, case) in data.scores for r in readers)} for m in modalities}
    complete = [case for case in cases if all(case in in_modality[m] for m in modalities)]
    union = [case for case in cases if any(case in in_modality[m] for m in modalities)]
    ragged = len(union) > len(complete)
    if ragged:
        complete = union
    truth = np.array([data.truth[case] for case in complete], dtype=int)
    checks = []
    actual = {"NR": len(readers), "N0": sum(1 for c in cases if data.truth[c] == 0),
              "N1": sum(1 for c in cases if data.truth[c] == 1), "NM": len(modalities)}
    for key, value in data.declared.items():
        if actual[key] != value:
            checks.append(f"header says {key}: {value}, the data have {actual[key]}")
    out = {
        "format": FORMAT,
        "source": "iMRMC input file",
        "title": data.title,
        "settings": {"level": 1 - alpha, "rounding": PRECISION},
        "modalities": modalities,
        "design": "ragged" if ragged else "crossed",
        "modality_cases": [
            {"modality": m, "n": len(in_modality[m]), "n_positive": sum(data.truth[c] for c in in_modality[m]),
             "n_negative": sum(1 - data.truth[c] for c in in_modality[m])}
            for m in modalities
        ],
        "n_readers": len(readers),
        "n_cases": len(complete),
        "n_positive": int(truth.sum()),
        "n_negative": int(len(truth) - truth.sum()),
        "n_cases_in_file": len(cases),
        "n_cases_left_out": len(cases) - len(complete),
        "header_check": "; ".join(checks) or None,
        "readers": [],
        "analyses": {name: None for name in VARIANTS},
        "note": None,
    }
    for modality in modalities:
        for reader in readers:
            own = [case for case in cases if (modality, reader, case) in data.scores]
            if not own:
                continue
            scores = [data.scores[modality, reader, case] for case in own]
            labels = [data.truth[case] for case in own]
            estimate = delong_auc(scores, labels)
            out["readers"].append({
                "reader": reader, "modality": modality, "method": READER_METHOD, "unit": "case", "n": len(own),
                "n_positive": estimate.n_positive, "n_negative": estimate.n_negative,
                "estimate": _r(estimate.auc), "se": _r(estimate.se), "note": estimate.note,
                "roc": [[_r(x), _r(y)] for x, y in roc_points(scores, labels)],
            })
    if len(readers) < 2:
        out["note"] = "not defined: the OR analysis needs at least two readers"
        return out
    if ragged and min(min(m["n_positive"], m["n_negative"]) for m in out["modality_cases"]) < 2:
        out["note"] = ("not defined: needs two signal-present and two signal-absent cases scored by every reader "
                       "in each modality")
        return out
    if min(out["n_positive"], out["n_negative"]) < 2:
        out["note"] = ("not defined: needs two signal-present and two signal-absent cases scored by every reader "
                       "in every modality")
        return out
    matrix = np.array([[[data.scores.get((m, r, c), np.nan) if c in in_modality[m] else np.nan for c in complete]
                         for r in readers] for m in modalities])
    if ragged:
        result = ragged_obuchowski_rockette(matrix, truth, treatments=modalities, readers=readers, alpha=alpha)
        # Each modality's own interval from that modality alone (as in a crossed analysis).
        alone = [obuchowski_rockette(matrix[i][None][:, :, ~np.isnan(matrix[i, 0])], truth[~np.isnan(matrix[i, 0])],
                                     treatments=[m], readers=readers, alpha=alpha)
                 for i, m in enumerate(modalities)]
    else:
        result = obuchowski_rockette(matrix, truth, treatments=modalities, readers=readers, alpha=alpha)
        alone = None
    n = len(complete)
    for name, description in VARIANTS.items():
        analysis = getattr(result, name)
        method = f"Obuchowski-Rockette, trapezoidal AUC, jackknife covariances over cases; {description}"
        if ragged:
            method += ("; modalities with their own cases: each AUC uses the cases every reader scored in that "
                       "modality, the jackknife runs over their union; each modality's interval from it alone")
        figure = {"method": method, "unit": "reader x case", "n": n, "n_readers": len(readers)}
        singles = analysis.treatments if alone is None else [getattr(a, name).treatments[0] for a in alone]
        out["analyses"][name] = {
            **figure,
            "treatments": [
                {"modality": single.label, **figure, **({"n": len(in_modality[single.label])} if ragged else {}),
                 **_vs_half(single)} for single in singles
            ],
            "test": None if analysis.test is None else {
                "statistic": _r(analysis.test.statistic), "df1": analysis.test.df1,
                "df2": _r(analysis.test.df2) if analysis.test.df2 is not None and math.isfinite(analysis.test.df2)
                else None,
                "p": _p(analysis.test.p),
            },
            "differences": [
                {"label": d.label, **figure, "estimate": _r(d.estimate), "se": _r(d.se), "df": _df(d.df),
                 "ci": [_r(d.ci[0]), _r(d.ci[1])], "statistic": _r(d.statistic), "p": _p(d.p)}
                for d in analysis.differences
            ],
        }
        if analysis.readers:  # fixed readers: each reader's own difference (OR-DBM's analysis 2d)
            out["analyses"][name]["readers"] = [
                {"label": d.label, "method": "single reader: difference of AUCs, z interval from that reader's "
                 "error variance and Cov1", "unit": "case", "n": n, "estimate": _r(d.estimate), "se": _r(d.se),
                 "ci": [_r(d.ci[0]), _r(d.ci[1])], "statistic": _r(d.statistic), "p": _p(d.p)}
                for d in analysis.readers
            ]
    out["or_tables"] = or_tables(result, n)
    if out["n_cases_left_out"]:
        where = "in any modality" if ragged else "in every modality"
        out["note"] = f"{out['n_cases_left_out']} cases not scored by every reader {where} left out"
    return out


def _vs_half(single) -> dict:
    """A modality's AUC interval with the test of AUC = 0.5 (t with its df, or z)."""
    if negligible(single.se, single.estimate):
        return {"estimate": _r(single.estimate), "se": _r(single.se), "df": None, "ci": None, "statistic": None,
                "p": None, "note": "no interval: no variation between readers or cases"}
    statistic = (single.estimate - 0.5) / single.se
    finite = single.df is not None and math.isfinite(single.df)
    p = 2 * (sps.t.sf(abs(statistic), single.df) if finite else sps.norm.sf(abs(statistic)))
    return {"estimate": _r(single.estimate), "se": _r(single.se), "df": _df(single.df),
            "ci": [_r(single.ci[0]), _r(single.ci[1])], "statistic": _r(statistic), "p": _p(float(p)), "note": None}


def _df(df: float | None) -> float | None:
    return _r(df) if df is not None and math.isfinite(df) else None




FLAT_COLUMNS = ("analysis", "row", "modality", "reader", "n", "estimate", "se", "df", "low", "high", "statistic", "p")


def flat_rows(report: dict) -> list[dict]:
    """The iMRMC report as flat rows (FLAT_COLUMNS), e.g. for CSV: per-reader
    AUCs, then each analysis's modality intervals, differences and test."""
    out = []
    for reader in report["readers"]:
        out.append({"analysis": "reader", "row": "auc", "modality": reader["modality"], "reader": reader["reader"],
                    "n": reader["n"], "estimate": reader["estimate"], "se": reader["se"], "df": None,
                    "low": None, "high": None, "statistic": None, "p": None})
    for name, analysis in report["analyses"].items():
        if analysis is None:
            continue
        for t in analysis["treatments"]:
            low, high = t["ci"] or (None, None)
            out.append({"analysis": name, "row": "modality", "modality": t["modality"], "reader": None, "n": t["n"],
                        "estimate": t["estimate"], "se": t["se"], "df": t["df"], "low": low, "high": high,
                        "statistic": t["statistic"], "p": t["p"]})
        for d in analysis["differences"]:
            out.append({"analysis": name, "row": "difference", "modality": d["label"], "reader": None, "n": d["n"],
                        "estimate": d["estimate"], "se": d["se"], "df": d["df"], "low": d["ci"][0],
                        "high": d["ci"][1], "statistic": d["statistic"], "p": d["p"]})
        if analysis["test"]:
            test = analysis["test"]
            out.append({"analysis": name, "row": "test", "modality": None, "reader": None, "n": analysis["n"],
                        "estimate": None, "se": None, "df": test["df2"], "low": None, "high": None,
                        "statistic": test["statistic"], "p": test["p"]})
    return out
