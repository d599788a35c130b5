"""Completeness: who read what, who is excluded and why, and which readings the analyses use.

The multi-reader (Obuchowski-Rockette) analysis needs every reader to read
every case. A reader who has read only some cases would otherwise cut the
analysis down to the cases everyone read, silently (3 readers x 30 cases
becoming 4 readers x 6). So the report states a rule and applies it before
any figure is computed:

    complete  (the default) the analyses use the readers who completed the
              scored block: read every case of the study (cases whose only
              reading by them is excluded do not count against them).
              Incomplete readers are named in the panel and left out of
              every figure until they finish.
    all       every reading is used for the answer-level figures; the
              multi-reader figures need a crossed design and are "not
              estimable" while any reader is incomplete (an unbalanced-design
              Obuchowski-Rockette analysis is not implemented), with that
              message, rather than run on the cases everyone happened to read.

Exclusions are recorded decisions with a reason, passed in by the caller (the
site from its exclusion records, `analyze --exclusions FILE`): a whole reader
(case None) or one reading (reader and case). Excluded readings are left out
of every analysis and listed with their reasons.

The study's full reader and case lists (`expected`) come from the site, where
a reader who has not started has no rows; from a CSV alone the cases are
those anyone answered and the readers those with an answer.

A report is interim when any reader is incomplete, or the caller says the
study is still open for reading.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence, TextIO

from ..tidy import AnswerRow

RULES = {
    "complete": "readers who completed the scored block (read every case); incomplete readers are left out",
    "all": "every reading; multi-reader figures are not estimable while any reader is incomplete",
}
DEFAULT_RULE = "complete"
UNBALANCED = ("not estimable under the rule 'all' while readers are incomplete ({}): the Obuchowski-Rockette "
              "analysis needs every reader to read every case; use the rule 'complete' or wait for the readers")


@dataclass(frozen=True)
class Exclusion:
    """A recorded exclusion: a reader (case None) or one reading, with its reason."""

    study: str
    reader: str
    case: str | None
    reason: str


@dataclass(frozen=True)
class Expected:
    """A study's full reader and scored-case lists, as the site knows them."""

    readers: tuple[str, ...]
    cases: tuple[str, ...]


EXCLUSION_COLUMNS = ("study", "reader", "case", "reason")


def read_exclusions(source: TextIO) -> list[Exclusion]:
    """Exclusions from a CSV with the columns study, reader, case (empty: the
    whole reader), reason; errors name the line."""
    reader = csv.DictReader(source)
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != list(EXCLUSION_COLUMNS):
        raise ValueError(f"line 1: exclusions need the header {','.join(EXCLUSION_COLUMNS)}")
    out = []
    for record in reader:
        values = {key: (record.get(key) or "").strip() for key in EXCLUSION_COLUMNS}
        if not values["study"] or not values["reader"]:
            raise ValueError(f"line {reader.line_num}: study and reader are required")
        if not values["reason"]:
            raise ValueError(f"line {reader.line_num}: an exclusion needs its reason")
        out.append(Exclusion(values["study"], values["reader"], values["case"] or None, values["reason"]))
    return out


def apply_completeness(rows: Sequence[AnswerRow], main: str, *, rule: str = DEFAULT_RULE,
                       exclusions: Iterable[Exclusion] = (), expected: Expected | None = None,
                       study_open: bool | None = None) -> tuple[list[AnswerRow], dict]:
    """(the rows the analyses use, the completeness panel) for one study's rows.

    main is the study's own question (completeness counts its first
    readings). The panel: rule, rule_text, n_readers, n_cases, interim,
    interim_reasons, readers [{reader, specialty, n_read, n_cases, complete,
    used, excluded, reason}], excluded_readings [{reader, case, reason}],
    unmatched_exclusions (exclusions naming no reading), note.
    """
    if rule not in RULES:
        raise ValueError(f"rule {rule!r} is not one of {', '.join(RULES)}")
    rows = list(rows)
    study = rows[0].study if rows else ""
    excluded_readers: dict[str, str] = {}
    excluded_readings: dict[tuple[str, str], str] = {}
    for exclusion in exclusions:
        if exclusion.study != study:
            continue
        if exclusion.case is None:
            excluded_readers[exclusion.reader] = exclusion.reason
        else:
            excluded_readings[exclusion.reader, exclusion.case] = exclusion.reason
    answered = {(row.reader, row.case) for row in rows if row.question == main}
    unmatched = [{"reader": reader, "case": case, "reason": reason}
                 for (reader, case), reason in sorted(excluded_readings.items()) if (reader, case) not in answered]
    unmatched += [{"reader": reader, "case": None, "reason": reason} for reader, reason in sorted(excluded_readers.items())
                  if not any(r == reader for r, _ in answered) and not (expected and reader in expected.readers)]
    kept = [row for row in rows
            if row.reader not in excluded_readers and (row.reader, row.case) not in excluded_readings]
    cases = sorted(set(expected.cases) if expected else {row.case for row in rows if row.question == main},
                   key=_case_key)
    specialty = {row.reader: row.specialty for row in rows}
    readers = sorted(set(specialty) | set(expected.readers if expected else ()))
    read: dict[str, set[str]] = {reader: set() for reader in readers}
    for row in kept:
        if row.question == main:
            read[row.reader].add(row.case)
    panel_readers = []
    incomplete = []
    for reader in readers:
        own_exclusions = {case for (r, case) in excluded_readings if r == reader}
        needed = [case for case in cases if case not in own_exclusions]
        n_read = len(read[reader] & set(needed))
        excluded = reader in excluded_readers
        complete = not excluded and n_read == len(needed)
        if not excluded and not complete:
            incomplete.append(reader)
        panel_readers.append({
            "reader": reader, "specialty": specialty.get(reader), "n_read": n_read, "n_cases": len(needed),
            "complete": complete, "excluded": excluded, "reason": excluded_readers.get(reader),
            "used": not excluded and (complete or rule == "all"),
        })
    used = {entry["reader"] for entry in panel_readers if entry["used"]}
    kept = [row for row in kept if row.reader in used]
    reasons = []
    if incomplete:
        reasons.append(f"{len(incomplete)} reader{'s' if len(incomplete) != 1 else ''} "
                       f"incomplete ({', '.join(incomplete)})")
    if study_open:
        reasons.append("the study is open for reading")
    notes = []
    if incomplete and rule == "complete":
        notes.append(f"left out of every figure until they finish: {', '.join(incomplete)}")
    if incomplete and rule == "all":
        notes.append(UNBALANCED.format(", ".join(incomplete)))
    if not used:
        notes.append("no reader's readings can be used yet under this rule")
    panel = {
        "rule": rule,
        "rule_text": RULES[rule],
        "n_readers": len(readers),
        "n_readers_used": len(used),
        "n_cases": len(cases),
        "interim": bool(reasons),
        "interim_reasons": reasons,
        "readers": panel_readers,
        "excluded_readings": [{"reader": reader, "case": case, "reason": reason}
                              for (reader, case), reason in sorted(excluded_readings.items())
                              if (reader, case) in answered],
        "unmatched_exclusions": unmatched,
        "unbalanced": bool(incomplete) and rule == "all",
        "unbalanced_note": UNBALANCED.format(", ".join(incomplete)) if incomplete and rule == "all" else None,
        "note": "; ".join(notes) or None,
    }
    return kept, panel


def _case_key(case: str) -> tuple:
    return (0, int(case), "") if case.isdigit() else (1, 0, case)


def expected_for(studies: Mapping[str, Expected] | None, name: str) -> Expected | None:
    return None if studies is None else studies.get(name)
