"""The tidy answer format: one row per answer per question, and its CSV form.

Columns, in this order (COLUMNS):

study             study name
design            "paired" (two images side by side, one synthetic) or "mixed"
                  (one image at a time, real or synthetic)
reader            reader identifier
specialty         radiologist | radiology_resident | orthopaedic_surgeon |
                  orthopaedic_resident | radiographer | other
years_experience  whole years, empty when not given
case              case identifier
position          1-based reading position of the case for this reader
question          the study's main question: paired "which_is_synthetic",
                  mixed "real_or_synthetic"; or the key of a further question
                  (letters, digits, "_" and "-"; e.g. kl_grade)
truth             main question, paired: left | right, the side the synthetic
                  image was on for this reader; mixed: real | synthetic.
                  Further questions: the reference answer, empty when none
answer            main question: same categories as truth; further: free text
correct           1 when answer equals truth, 0 when not; empty when there is
                  no reference (truth empty): an unreferenced answer is
                  neither right nor wrong. (Files written before this rule
                  have 0 there; read_csv reads that 0 as empty.)
confidence        main question of a mixed study: 1-5, empty when not asked;
                  otherwise empty
served_at         ISO 8601 UTC time the case was served, e.g. 2025-01-06T09:00:00.250Z
answered_at       ISO 8601 UTC time the answer was received
reading_ms        client-measured reading time in milliseconds
source            the synthetic source (generator, e.g. a GAN checkpoint or a
                  CT-projection simulator) that made the case's synthetic
                  image: in a paired study the synthetic image of the pair, in
                  a mixed study the image shown when it is synthetic; empty
                  for a mixed-design case showing a real image, and empty when
                  not recorded. Optional when reading: a file without this
                  last column reads as source "" everywhere; write_csv always
                  writes it. The report compares sources when a study's
                  synthetic cases name two or more (report/sources.py, "sources"),
                  and the reading times and per-case results name it.

Times are kept as the ISO 8601 text (checked to be UTC) so that a row
round-trips through CSV unchanged; utc_text formats a datetime.

Repeated readings: a study may show some scored cases to the same reader a
second time. The repeat is a row with the same (study, reader, case,
question) and a higher position; first_readings splits rows into the first
reading of each (reader, case, question), which every main analysis uses, and
the repeats, which only intra-reader agreement uses.

AnswerRow checks a single row; check_rows checks what must hold across rows
(one design per study, one specialty per reader, at most two readings of a
case per reader and question and never two at one position, one truth per
case and question in a mixed study, one source per case of a study, whatever
the question and reader). read_csv does both and names the line.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping, Sequence, TextIO

import numpy as np

from readerstudy.analysis.csvsafe import from_spreadsheet_safe, spreadsheet_safe

COLUMNS = (
    "study", "design", "reader", "specialty", "years_experience", "case", "position", "question",
    "truth", "answer", "correct", "confidence", "served_at", "answered_at", "reading_ms", "source",
)
OPTIONAL_COLUMNS = ("source",)  # may be missing (as the last column) from files written before it existed
DESIGNS = ("paired", "mixed")
SPECIALTIES = (
    "radiologist", "radiology_resident", "orthopaedic_surgeon", "orthopaedic_resident", "radiographer", "other",
)
QUESTION = {"paired": "which_is_synthetic", "mixed": "real_or_synthetic"}
CATEGORIES = {"paired": ("left", "right"), "mixed": ("real", "synthetic")}


class TidyFormatError(ValueError):
    """A tidy CSV file or row set that breaks the format; the message says where."""


@dataclass(frozen=True)
class AnswerRow:
    study: str
    design: str
    reader: str
    specialty: str
    years_experience: int | None
    case: str
    position: int
    question: str
    truth: str
    answer: str
    correct: int | None
    confidence: int | None
    served_at: str
    answered_at: str
    reading_ms: int
    source: str = ""

    def __post_init__(self) -> None:
        for name in _TEXT:
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be text, got {getattr(self, name)!r}")
        for name in _WHOLE + _OPTIONAL_WHOLE:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_WHOLE:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        for name in ("study", "reader", "case"):
            if not getattr(self, name):
                raise ValueError(f"{name} is empty")
        _one_of("design", self.design, DESIGNS)
        _one_of("specialty", self.specialty, SPECIALTIES)
        if self.years_experience is not None and self.years_experience < 0:
            raise ValueError(f"years_experience is negative: {self.years_experience}")
        if self.position < 1:
            raise ValueError(f"position must be 1 or more, got {self.position}")
        if self.is_main:
            _one_of("truth", self.truth, CATEGORIES[self.design])
            _one_of("answer", self.answer, CATEGORIES[self.design])
            if self.design == "paired" and self.confidence is not None:
                raise ValueError("confidence must be empty in a paired design")
            if self.design == "mixed" and self.truth == "real" and self.source:
                raise ValueError(f"source must be empty for a real image (mixed design), got {self.source!r}")
        else:
            if self.question in QUESTION.values():
                raise ValueError(f"question {self.question!r} is not asked in a {self.design} design")
            if not re.fullmatch(r"[-\w]+", self.question, re.ASCII):
                raise ValueError(f"question {self.question!r} is not a question key (letters, digits, _ and -)")
            if self.confidence is not None:
                raise ValueError(f"confidence must be empty for the further question {self.question!r}")
        if self.truth == "":
            if self.correct is not None:
                raise ValueError(f"correct must be empty when there is no reference (truth), got {self.correct}")
        elif self.correct != int(self.answer == self.truth):
            raise ValueError(f"correct is {self.correct} but answer {self.answer!r} vs truth {self.truth!r}")
        if self.confidence is not None and not 1 <= self.confidence <= 5:
            raise ValueError(f"confidence must be 1-5, got {self.confidence}")
        times = {}
        for name in ("served_at", "answered_at"):
            try:
                times[name] = _utc(getattr(self, name))
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        if times["answered_at"] < times["served_at"]:
            raise ValueError("answered_at is before served_at")
        if self.reading_ms < 0:
            raise ValueError(f"reading_ms is negative: {self.reading_ms}")

    @property
    def is_main(self) -> bool:
        """Whether this answers the study's own question (not a further one)."""
        return self.question == QUESTION[self.design]

    def to_record(self) -> dict[str, str]:
        """The row as CSV strings, keyed by column."""
        return {name: "" if getattr(self, name) is None else str(getattr(self, name)) for name in COLUMNS}

    @classmethod
    def from_record(cls, record: Mapping[str, str]) -> AnswerRow:
        """Parse CSV strings; raises ValueError naming the column. A missing
        optional column (OPTIONAL_COLUMNS) reads as empty."""
        values: dict[str, object] = {}
        for field in fields(cls):
            text = record.get(field.name, "" if field.name in OPTIONAL_COLUMNS else None)
            if text is None:
                raise ValueError(f"column {field.name!r} is missing")
            text = text.strip()
            if field.name == "correct" and text == "0" and not (record.get("truth") or "").strip():
                text = ""  # written before `correct` was left empty without a reference
            try:
                values[field.name] = _PARSERS.get(field.name, str)(text)
            except ValueError as error:
                raise ValueError(f"column {field.name!r}: {error}") from None
        return cls(**values)  # type: ignore[arg-type]


def _one_of(name: str, value: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {', '.join(allowed)}")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _optional_int(text: str) -> int | None:
    return _int(text) if text else None


def _utc(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"{text!r} is not in UTC (end it with Z or +00:00)")
    return value


def utc_text(value: datetime) -> str:
    """An aware datetime as the ISO 8601 UTC text the format uses ("...Z")."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


_TEXT = ("study", "design", "reader", "specialty", "case", "question", "truth", "answer", "served_at", "answered_at",
         "source")
_WHOLE = ("position", "reading_ms")
_OPTIONAL_WHOLE = ("years_experience", "confidence", "correct")
_PARSERS = {
    "years_experience": _optional_int,
    "position": _int,
    "correct": _optional_int,
    "confidence": _optional_int,
    "reading_ms": _int,
}


def check_rows(rows: Sequence[AnswerRow], lines: Sequence[int] | None = None) -> None:
    """Raise TidyFormatError for what no single row shows wrong. Errors name the
    row (1-based) or, when given, the file line of each row."""
    design: dict[str, str] = {}
    reader_profile: dict[tuple[str, str], tuple[str, int | None]] = {}
    answered: dict[tuple[str, str, str, str], list[int]] = {}
    positions: set[tuple[str, str, str, int]] = set()
    case_truth: dict[tuple[str, str, str], str] = {}
    case_source: dict[tuple[str, str], str] = {}
    for number, row in enumerate(rows, start=1):
        def where() -> str:
            place = f"line {lines[number - 1]}" if lines is not None else f"row {number}"
            return f"{place} (study {row.study!r}, reader {row.reader!r}, case {row.case!r})"

        if design.setdefault(row.study, row.design) != row.design:
            raise TidyFormatError(f"{where()}: study has both {design[row.study]} and {row.design} rows")
        profile = (row.specialty, row.years_experience)
        if reader_profile.setdefault((row.study, row.reader), profile) != profile:
            raise TidyFormatError(f"{where()}: reader has more than one specialty or years_experience")
        key = (row.study, row.reader, row.case, row.question)
        readings = answered.setdefault(key, [])
        if row.position in readings:
            raise TidyFormatError(
                f"{where()}: a second answer to {row.question} at the same position {row.position}"
            )
        if len(readings) == 2:
            raise TidyFormatError(
                f"{where()}: a third reading of {row.question} (a case may be read at most twice: once and one repeat)"
            )
        readings.append(row.position)
        slot = (row.study, row.reader, row.question, row.position)
        if slot in positions:
            raise TidyFormatError(f"{where()}: position {row.position} is used twice for this reader")
        positions.add(slot)
        truth_key = (row.study, row.case, row.question)
        if row.design == "mixed" and case_truth.setdefault(truth_key, row.truth) != row.truth:
            raise TidyFormatError(f"{where()}: case has truth {case_truth[truth_key]!r} for another reader")
        if case_source.setdefault((row.study, row.case), row.source) != row.source:
            raise TidyFormatError(
                f"{where()}: case has source {row.source!r} here and {case_source[row.study, row.case]!r} in another "
                "row (a case's synthetic image comes from one source)"
            )


def write_csv(rows: Iterable[AnswerRow], out: TextIO) -> None:
    """Write the header and rows; open files with newline=""."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    # Formula-like text is quoted for spreadsheets (csvsafe.py); read_csv undoes it.
    writer.writerows({k: spreadsheet_safe(v) for k, v in row.to_record().items()} for row in rows)


def read_csv(source: TextIO) -> list[AnswerRow]:
    """Read and validate a tidy CSV; open files with newline="". Errors name the line."""
    reader = csv.reader(source)
    try:
        header = next(reader)
    except StopIteration:
        raise TidyFormatError("the file is empty; expected a header row") from None
    except csv.Error as error:
        raise TidyFormatError(f"line 1: {error}") from None
    if header:
        header[0] = header[0].removeprefix("\ufeff")  # a byte-order mark left by spreadsheet programs
    columns = COLUMNS
    if tuple(header) == COLUMNS[: -len(OPTIONAL_COLUMNS)]:
        columns = tuple(header)  # written before the optional columns existed
    if tuple(header) != columns:
        missing = [c for c in COLUMNS if c not in header and c not in OPTIONAL_COLUMNS]
        extra = [c for c in header if c not in COLUMNS]
        detail = "; ".join(
            part for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unexpected {', '.join(extra)}" if extra else "",
            ) if part
        ) or "columns out of order"
        raise TidyFormatError(f"line 1: header does not match the tidy format ({detail}); expected {','.join(COLUMNS)}")
    rows = []
    lines = []
    try:
        for cells in reader:
            line = reader.line_num
            if not cells:
                continue
            if len(cells) != len(columns):
                raise TidyFormatError(f"line {line}: expected {len(columns)} fields, found {len(cells)}")
            try:
                rows.append(AnswerRow.from_record(dict(zip(columns, map(from_spreadsheet_safe, cells)))))
            except ValueError as error:
                raise TidyFormatError(f"line {line}: {error}") from None
            lines.append(line)
    except csv.Error as error:
        raise TidyFormatError(f"line {reader.line_num}: {error}") from None
    check_rows(rows, lines)
    return rows


def first_readings(rows: Iterable[AnswerRow]) -> tuple[list[AnswerRow], list[tuple[AnswerRow, AnswerRow]]]:
    """Split rows into first readings and (first, repeat) pairs.

    The first reading of a (study, reader, case, question) is its row with the
    lowest position; a second row is its repeat. Rows keep their input order
    in the first list; pairs are sorted by study, reader, question and case.
    Rows are assumed to pass check_rows (at most two readings per key).
    """
    rows = list(rows)
    by_key: dict[tuple[str, str, str, str], list[AnswerRow]] = {}
    for row in rows:
        by_key.setdefault((row.study, row.reader, row.case, row.question), []).append(row)
    first_ids = set()
    pairs = []
    for readings in by_key.values():
        if len(readings) == 1:
            first_ids.add(id(readings[0]))
            continue
        first, repeat = sorted(readings, key=lambda row: row.position)
        first_ids.add(id(first))
        pairs.append((first, repeat))
    pairs.sort(key=lambda pair: (pair[0].study, pair[0].reader, pair[0].question, pair[0].case))
    return [row for row in rows if id(row) in first_ids], pairs


def simulate_rows(
    *,
    study: str = "simulated",
    design: str = "paired",
    readers: Mapping[str, tuple[str, float]],
    n_cases: int,
    seed: int = 0,
    start: datetime = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc),
    repeats: int = 0,
    consistency: float = 0.8,
    drift: float = 0.0,
    grade: str | None = None,
    grade_noise: tuple[float, float] = (0.5, 0.5),
    sources: Mapping[str, float] | None = None,
) -> list[AnswerRow]:
    """A simulated study for tests, benchmarks and demonstrations.

    readers maps reader id -> (specialty, probability of a correct answer);
    every reader reads every case in their own random order. In a mixed study
    half the cases are synthetic and confidence is higher when correct, so the
    ordinal score carries signal.

    Options (all off by default, and then the rows are exactly those of
    earlier versions for the same seed):

    repeats      cases each reader reads a second time, each at a random later
                 position; the repeat gives the first answer again with
                 probability `consistency`, else answers afresh
    drift        change in the log-odds of a correct answer from the first to
                 the last position (learning > 0, fatigue < 0), centred so the
                 mean accuracy stays near the reader's
    grade        key of a further question (mixed design), e.g. "kl_grade":
                 every case has a reference grade 0-4 and readers answer the
                 reference plus normal noise, rounded and clipped to 0-4, with
                 standard deviation grade_noise = (real, synthetic)
    sources      synthetic source name -> change in every reader's probability
                 of a correct answer on that source's images (0 for none;
                 the sum is clipped to 0..1). Synthetic images are dealt to the
                 sources in turn, in case order (paired: every case; mixed:
                 the synthetic cases), and the rows name them in `source`
    """
    _one_of("design", design, DESIGNS)
    if grade is not None and design != "mixed":
        raise ValueError("further questions are asked in mixed designs")
    if not 0 <= repeats <= n_cases:
        raise ValueError(f"repeats must be 0..n_cases, got {repeats}")
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng([seed, 7])  # a separate stream keeps the plain rows unchanged
    cases = [f"c{i + 1:04d}" for i in range(n_cases)]
    case_truth = rng.permutation(np.arange(n_cases) % 2)  # mixed: 1 = synthetic
    reference_grade = extra.integers(0, 5, n_cases) if grade is not None else None
    case_source = [""] * n_cases
    shift = np.zeros(n_cases)
    if sources:
        names = list(sources)
        shown = [i for i in range(n_cases) if design == "paired" or case_truth[i] == 1]
        for k, case_index in enumerate(shown):
            case_source[case_index] = names[k % len(names)]
            shift[case_index] = float(sources[names[k % len(names)]])
    first, second = CATEGORIES[design]
    rows = []
    for reader_index, (reader, (specialty, accuracy)) in enumerate(readers.items()):
        order = rng.permutation(n_cases)
        draws = rng.random(n_cases)
        if drift and 0 < accuracy < 1:
            rank = np.empty(n_cases)
            rank[order] = np.arange(n_cases) / max(n_cases - 1, 1)
            logit = np.log(accuracy / (1 - accuracy)) + drift * (rank - 0.5)
            correct = draws < np.clip(1 / (1 + np.exp(-logit)) + shift, 0, 1)
        else:
            correct = draws < (np.clip(accuracy + shift, 0, 1) if sources else accuracy)
        sides = rng.integers(0, 2, n_cases)
        confidence = np.where(correct, rng.integers(3, 6, n_cases), rng.integers(1, 4, n_cases))
        reading_ms = rng.integers(1500, 9000, n_cases)
        sequence = [(int(case_index), False) for case_index in order]
        for case_index in extra.choice(n_cases, size=repeats, replace=False) if repeats else ():
            at = next(i for i, (c, _) in enumerate(sequence) if c == case_index)
            sequence.insert(int(extra.integers(at + 1, len(sequence) + 1)), (int(case_index), True))
        served = start + timedelta(hours=reader_index)
        for position, (case_index, repeat) in enumerate(sequence, start=1):
            is_correct, conf, side = bool(correct[case_index]), int(confidence[case_index]), sides[case_index]
            if repeat:
                if extra.random() >= consistency:
                    is_correct = bool(extra.random() < min(max(accuracy + shift[case_index], 0), 1))
                conf = int(extra.integers(3, 6) if is_correct else extra.integers(1, 4))
                side = int(extra.integers(0, 2))
            truth_index = side if design == "paired" else case_truth[case_index]
            truth = (first, second)[truth_index]
            answer = truth if is_correct else (second, first)[truth_index]
            ms = int(reading_ms[case_index])
            answered = served + timedelta(milliseconds=ms + 250)
            common = dict(
                study=study, design=design, reader=reader, specialty=specialty,
                years_experience=5 + reader_index % 20, case=cases[case_index], position=position,
                served_at=utc_text(served), answered_at=utc_text(answered), reading_ms=ms,
                source=case_source[case_index],
            )
            rows.append(AnswerRow(
                **common, question=QUESTION[design], truth=truth, answer=answer, correct=int(answer == truth),
                confidence=conf if design == "mixed" else None,
            ))
            if reference_grade is not None:
                noise = grade_noise[int(case_truth[case_index])]
                reference = int(reference_grade[case_index])
                given = int(np.clip(np.rint(reference + extra.normal(0, noise)), 0, 4)) if noise > 0 else reference
                rows.append(AnswerRow(
                    **common, question=grade, truth=str(reference), answer=str(given),
                    correct=int(given == reference), confidence=None,
                ))
            served = answered + timedelta(milliseconds=400)
    return rows
