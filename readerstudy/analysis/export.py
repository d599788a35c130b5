"""Stored answers as tidy rows: the one source for exports, the report page and `analyze`.

Practice cases are left out (they are for training readers, not for
analysis), and where a reader revised an answer only the latest revision
counts.

`study_provenance` is the other export: how every case was made (which real
image, which generator, seed and privacy-screen refusals), for the methods
section and for anyone repeating the study.
"""

from __future__ import annotations

from django.db.models import Max, OuterRef, Subquery

from readerstudy.accounts.models import Profile, Specialty
from readerstudy.analysis.tidy import AnswerRow, utc_text
from readerstudy.studies.models import Answer, Study


def rows_for_study(study: Study) -> list[AnswerRow]:
    latest = Answer.objects.filter(slot=OuterRef("slot"), question=OuterRef("question")).values("slot", "question")
    latest = latest.annotate(top=Max("revision")).values("top")
    answers = (
        Answer.objects.filter(slot__assignment__study=study, slot__case__is_practice=False)
        .filter(revision=Subquery(latest))
        .select_related("slot__case__real_image", "slot__case__generator", "slot__assignment__reader", "slot__assignment__study")
        .order_by("slot__assignment__reader__username", "slot__position", "question")
    )
    profiles = {p.user_id: p for p in Profile.objects.filter(user__assignments__study=study)}
    practice = study.practice_case_count
    labelled = frozenset(study.questions.filter(truth_from_label=True).values_list("key", flat=True))
    rows = []
    for answer in answers:
        slot = answer.slot
        reader = slot.assignment.reader
        profile = profiles.get(reader.pk)
        truth = slot.truth_for(answer.question, labelled)
        rows.append(
            AnswerRow(
                study=study.name,
                design=study.analysed_design,  # grade-then-reveal: its reveal is a mixed reading
                reader=reader.username,
                specialty=profile.specialty if profile else Specialty.OTHER.value,
                years_experience=profile.years_experience if profile else 0,
                case=str(slot.case.index + 1),
                position=slot.position - practice,
                question=answer.question,
                truth=truth,
                answer=answer.answer,
                correct=int(answer.answer == truth) if truth != "" else None,  # no reference: neither right nor wrong
                confidence=answer.confidence,
                served_at=utc_text(answer.served_at),
                answered_at=utc_text(answer.answered_at),
                reading_ms=answer.reading_ms,
                # Which generator made the case's synthetic image (a real image in a mixed study has none).
                source=slot.case.generator.name if slot.case.generator_id else "",
            )
        )
    return rows


def study_provenance(study: Study) -> dict:
    """The study's generators and, per case (numbered as in the tidy rows), how its images were made."""
    cases = []
    for case in study.cases.select_related("real_image", "synthetic_image", "generator").order_by("index"):
        real, synthetic = case.real_image, case.synthetic_image
        cases.append({
            "case": case.index + 1,
            "practice": case.is_practice,
            "real_image": None if real is None else {
                "filename": real.origin.get("filename"), "label": real.origin.get("label"), "pixel_sha256": real.pixel_sha256,
            },
            "synthetic_image": None if case.synthetic_seed is None else {
                "generator": case.generator.name,
                "drawn_seed": case.synthetic_seed,
                "privacy_refusals": case.privacy_refusals,
                "seed": case.generation_seed,
                "label": case.synthetic_label,
                "pixel_sha256": synthetic.pixel_sha256 if synthetic else None,
                "provenance": synthetic.origin if synthetic else None,
            },
        })
    generators = [
        {"name": g.name, "kind": g.kind, "sha256": g.sha256, "privacy_screen_sha256": g.privacy_sha256 or None, "config": g.config}
        for g in study.sources()
    ]
    return {
        "study": study.name, "design": study.design, "seed": study.seed, "truncation": study.truncation,
        "generators": generators, "privacy_screen": study.privacy_counts(), "cases": cases,
        # Blinding: whether readers may have met a real image of this study in another study.
        "real_image_reuse": {
            "allowed": study.allow_real_image_reuse,
            "cases_whose_real_image_other_studies_show": study.reused_real_cases(),
        },
    }
