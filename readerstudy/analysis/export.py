"""Stored answers as tidy rows: the one source for exports, the report page and `analyze`."""

from __future__ import annotations

from readerstudy.accounts.models import Profile, Specialty
from readerstudy.analysis.tidy import AnswerRow
from readerstudy.studies.models import Answer, Study


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def rows_for_study(study: Study) -> list[AnswerRow]:
    answers = (
        Answer.objects.filter(slot__assignment__study=study)
        .select_related("slot__case", "slot__assignment__reader")
        .order_by("slot__assignment__reader__username", "slot__position", "question")
    )
    profiles = {p.user_id: p for p in Profile.objects.filter(user__assignments__study=study)}
    rows = []
    for answer in answers:
        slot = answer.slot
        reader = slot.assignment.reader
        profile = profiles.get(reader.pk)
        truth = slot.truth
        rows.append(
            AnswerRow(
                study=study.name,
                design=study.design,
                reader=reader.username,
                specialty=profile.specialty if profile else Specialty.OTHER.value,
                years_experience=profile.years_experience if profile else 0,
                case=slot.case.index + 1,
                position=slot.position,
                question=answer.question,
                truth=truth,
                answer=answer.answer,
                correct=int(answer.answer == truth),
                confidence=answer.confidence,
                served_at=_iso(answer.served_at),
                answered_at=_iso(answer.answered_at),
                reading_ms=answer.reading_ms,
            )
        )
    return rows
