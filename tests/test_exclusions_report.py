"""Exclusions recorded in the console reach the analyst's report, with their reasons."""

from __future__ import annotations

import uuid

import pytest

from readerstudy.analysis.views import _report, recorded_exclusions
from readerstudy.studies.records import Exclusion


@pytest.mark.django_db
def test_a_recorded_exclusion_is_in_the_report_with_its_reason(make_study, readers):
    study = make_study("paired", cases=4, seed=21)
    for assignment in study.assignments.all():
        for slot in assignment.slots.all():
            slot.mark_served()
            slot.record(uuid.uuid4(), {study.question: "left"}, confidence=None, reading_ms=900, client={})
    rad = study.assignments.get(reader=readers[0])
    ortho = study.assignments.get(reader=readers[1])
    Exclusion.objects.create(study=study, assignment=rad, reason="did not use a diagnostic display")
    slot = ortho.slots.select_related("case").first()
    Exclusion.objects.create(study=study, assignment=ortho, slot=slot, reason="interrupted by a phone call")

    exclusions = {(e.reader, e.case, e.reason) for e in recorded_exclusions(study)}
    assert exclusions == {
        ("rad", None, "did not use a diagnostic display"),
        ("ortho", str(slot.case.index + 1), "interrupted by a phone call"),
    }
    report = _report(study)
    assert "did not use a diagnostic display" in str(report["studies"][0]["completeness"])
