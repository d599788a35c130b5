"""What the study page shows: the summary before opening, and per-reader monitoring."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Max

from readerstudy.studies.models import Answer, Assignment, Study

# Without a pilot, a reading is assumed to take this long (a blinded real-or-synthetic call on one
# radiograph or a pair); the summary says when it uses this default.
DEFAULT_SECONDS_PER_CASE = 20.0


@dataclass
class Summary:
    cases: int
    practice: int
    repeats: int
    readings_per_reader: int
    images_per_reader: int
    readers: int
    dealing: list[tuple[str, int]]  # (source, scored synthetic cases)
    seconds_per_case: float
    pace_from_pilot: bool
    problems: list[str]

    @property
    def minutes_per_reader(self) -> float:
        return self.readings_per_reader * self.seconds_per_case / 60

    @property
    def reading_time(self) -> str:
        minutes = self.minutes_per_reader
        if minutes < 1:
            return "under a minute"
        if minutes < 90:
            return f"about {round(minutes)} minute{'s' if round(minutes) != 1 else ''}"
        return f"about {minutes / 60:.1f} hours"


def summary(study: Study) -> Summary:
    problems = list(study.source_problems(study.sources()))
    dealing: Counter[str] = Counter()
    if study.cases.exists():
        for name in study.cases.filter(is_practice=False, generator__isnull=False).values_list("generator__name", flat=True):
            dealing[name] += 1
    elif not problems:
        try:
            names = {g.pk: g.name for g in study.sources()}
            for case in study.draw():
                if case["generator_id"] and not case["is_practice"]:
                    dealing[names[case["generator_id"]]] += 1
        except ValidationError as error:
            problems += error.messages
    if not study.assignments.exists():
        problems.append("no reader is assigned yet")
    times = list(
        Answer.objects.filter(slot__assignment__study=study, question=study.question, revision=0)
        .values_list("reading_ms", flat=True)
    )
    pace = statistics.median(times) / 1000 if times else DEFAULT_SECONDS_PER_CASE
    readings = study.readings_per_reader()
    return Summary(
        cases=study.case_count, practice=study.practice_case_count, repeats=study.repeat_count,
        readings_per_reader=readings, images_per_reader=study.images_per_reader(),
        readers=study.assignments.count(), dealing=sorted(dealing.items()),
        seconds_per_case=pace, pace_from_pilot=bool(times), problems=problems,
    )


@dataclass
class ReaderRow:
    assignment: Assignment
    done: int
    total: int
    last_activity: datetime | None
    median_seconds: float | None
    excluded: bool

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done >= self.total

    @property
    def behind(self) -> bool:
        """Not finished and not excluded: the readers a reminder goes to."""
        return not self.finished and not self.excluded


def monitoring(study: Study) -> list[ReaderRow]:
    rows = []
    excluded = set(study.exclusions.filter(slot__isnull=True).values_list("assignment_id", flat=True))
    for assignment in study.assignments.select_related("reader").order_by("reader__username"):
        done, total = assignment.progress()
        total = total or study.readings_per_reader()  # before cases are drawn
        answers = Answer.objects.filter(slot__assignment=assignment)
        times = list(answers.filter(question=study.question, revision=0).values_list("reading_ms", flat=True))
        rows.append(ReaderRow(
            assignment=assignment, done=done, total=total,
            last_activity=answers.aggregate(last=Max("answered_at"))["last"],
            median_seconds=statistics.median(times) / 1000 if times else None,
            excluded=assignment.pk in excluded,
        ))
    return rows
