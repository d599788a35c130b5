"""A study's instructions, written from its configuration, so they always describe the study as run.

Shown before the first case and, from the reading page, by a key (`H`) without leaving the case.
Every count is the one the progress bar uses (scored cases include the repeats; practice is
counted separately), so the pages never disagree.

The expected duration is the "pilot pace": the median first-reading time per case of the
readings already stored in this study (any reader; the first readers are the pilot), times
the cases this reader has left. Before anyone has read, a time limit gives an upper bound;
otherwise no duration is promised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from readerstudy.studies.models import Answer, Design, Phase, Question, Study

CONFIDENCE_ANCHORS = ("1", "guessing", "5", "certain")
# Keys that pick an answer to a further question: the question's key, then its choice.
QUESTION_KEYS = "GJUYBNM"


@dataclass
class Instructions:
    study: Study
    scored: int  # scored cases to read, repeats included (as the progress bar counts them)
    practice: int
    left: int  # cases this reader has not answered yet
    pace_seconds: float | None  # median seconds per case so far in this study
    pace_readings: int
    items: list[str] = field(default_factory=list)
    # What the reader's current block asks (see CaseView.reader_design): "grade" never mentions synthetic images.
    reader_design: str = ""

    @property
    def expected_minutes(self) -> float | None:
        if self.pace_seconds is None or not self.left:
            return None
        return self.pace_seconds * self.left / 60

    @property
    def expected_text(self) -> str:
        minutes = self.expected_minutes
        if minutes is None:
            return ""
        return "less than a minute" if minutes < 1 else f"about {round(minutes)} min"

    @property
    def limit_minutes(self) -> float | None:
        limit = self.study.time_limit_seconds
        return limit * self.left / 60 if limit and self.left else None


def question_keys(questions: list[Question]) -> list[tuple[Question, str, list[tuple[str, str]]]]:
    """Each further question with its key letter and (choice, key) pairs.

    When every choice is one character (grades 0–4, say) the choice's own character picks
    it; otherwise the digits 1–9 pick the choices in order.
    """
    keyed = []
    for question, letter in zip(questions, QUESTION_KEYS):
        choices = question.choice_list() if question.kind == Question.Kind.CHOICE else []
        single = all(len(c) == 1 for c in choices)
        keys = [(c, c if single else str(i)) for i, c in enumerate(choices, start=1)]
        if not single and len(choices) > 9:
            keys = [(c, k if int(k) <= 9 else "") for c, k in keys]
        keyed.append((question, letter, keys))
    return keyed


def pilot_pace(study: Study, grading: bool = False) -> tuple[float | None, int]:
    """Median seconds per case of the first readings stored in this study, and how many there are.

    ``grading``: of the grading block of a grade-then-reveal study (one time per graded slot)."""
    if grading:
        graded = Answer.objects.filter(slot__assignment__study=study, slot__phase=Phase.GRADE, revision=0)
        times = sorted(ms for _, ms in graded.values_list("slot_id", "reading_ms").distinct())
    else:
        times = sorted(
            Answer.objects.filter(slot__assignment__study=study, question=study.question, revision=0)
            .values_list("reading_ms", flat=True)
        )
    if not times:
        return None, 0
    middle = len(times) // 2
    median = times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) / 2
    return median / 1000, len(times)


def s(count: int) -> str:
    return "" if count == 1 else "s"


def instructions_for(study: Study, *, total: int, done: int, reader_design: str = "") -> Instructions:
    """``total`` and ``done`` count this reader's slots, practice included.

    A grade-then-reveal study describes the reader's current block only: while grading
    (``reader_design`` "grade") its cases and questions and nothing else, so the instructions
    never tell a grading reader that synthetic images are present; after the reveal, the
    reveal block's cases.
    """
    practice = study.practice_case_count
    pace, readings = pilot_pace(study, grading=reader_design == "grade")
    scored, left = total - practice, total - done
    if study.design == Design.GRADE_REVEAL:
        block_done = done if reader_design == "grade" else done - study.case_count
        scored, left = study.case_count, study.case_count - min(max(block_done, 0), study.case_count)
    text = Instructions(study, scored=scored, practice=practice, left=left, pace_seconds=pace, pace_readings=readings,
                        reader_design=reader_design)
    items = text.items
    if practice:
        first = "The first case is practice: after it" if practice == 1 else f"The first {practice} cases are practice: after each"
        items.append(
            f"{first} you are told the right answer. Practice cases are not scored. "
            "After the practice you are not told the right answer to any case."
        )
    else:
        items.append("You are not told the right answer to any case.")
    if study.time_limit_seconds:
        items.append(
            f"You have {study.time_limit_seconds} s to look at each case. A countdown shows the time left and warns you "
            "in the last 10 s. When the time is up the images are hidden and you still give your answer. "
            "Reloading the page does not restart the time."
        )
    else:
        items.append("There is no time limit: take the time you need.")
    if study.break_every:
        every = "after every scored case" if study.break_every == 1 else f"every {study.break_every} scored cases"
        items.append(f"You are offered a break {every}; your answers are saved before it.")
    if study.repeat_count:
        items.append(
            f"{study.repeat_count} case{s(study.repeat_count)} {'is' if study.repeat_count == 1 else 'are'} shown a second time "
            "later on. Answer each time as you see the case then."
        )
    if study.allow_back:
        items.append("You may go back to earlier scored cases and change your answer (Previous case).")
    else:
        items.append("Once given, an answer is final: you cannot go back to an earlier case.")
    if study.blank_ms:
        items.append(f"A dark screen of {study.blank_ms / 1000:g} s separates one case from the next.")
    items.append("Your answers are saved as you give them; you can close the browser and resume later where you stopped.")
    return text


def main_question(study: Study, reader_design: str = "") -> str:
    if reader_design == "grade":
        return "Each case shows one radiograph. Answer the questions below it for every case."
    if study.design == Design.PAIRED:
        return "Each case shows two radiographs side by side. One is real and one is synthetic. Choose the image you believe is synthetic."
    return "Each case shows one radiograph, which is either real or synthetic. Say which you believe it is, and how confident you are."
