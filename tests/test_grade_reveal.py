"""Grade-then-reveal (knee-style): grade every image untold, then be told and judge real or synthetic in a new order."""

from __future__ import annotations

import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from readerstudy.analysis.export import rows_for_study
from readerstudy.analysis.report import build_report
from readerstudy.studies.generation import prepare
from readerstudy.studies.models import Answer, Phase, Question, Study

pytestmark = pytest.mark.django_db

CASES = 8


@pytest.fixture
def study(pool, checkpoint, readers):
    study = Study.objects.create(
        name="knee-grading", design="grade_reveal", pool=pool, case_count=CASES, seed=77, is_open=True,
        instructions="Grade each knee radiograph for osteoarthritis.",
        reveal_instructions="Take your time.",
    )
    study.generators.set([checkpoint])
    Question.objects.create(study=study, key="kl_grade", label="Kellgren–Lawrence grade", choices="0,1,2,3,4", truth_from_label=False)
    prepare(study)
    for reader in readers:
        study.assign(reader)
    return study


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_and_urls(client, study):
    response = client.get(f"/studies/{study.pk}/read/")
    html = response.content.decode()
    key = re.search(r'data-idempotency-key="([^"]+)"', html)
    url = re.search(r'data-answer-url="([^"]+)"', html)
    return html, key and key.group(1), url and url.group(1)


def post(client, url, **body):
    return client.post(url, json.dumps({"reading_ms": 1200, **body}), content_type="application/json")


def test_plan_grades_every_image_then_reveals_them_in_a_new_order(study):
    for assignment in study.assignments.all():
        slots = list(assignment.slots.order_by("position").select_related("case"))
        assert [s.phase for s in slots] == [Phase.GRADE] * CASES + [Phase.REVEAL] * CASES
        grading = [s.case.index for s in slots[:CASES]]
        reveal = [s.case.index for s in slots[CASES:]]
        assert sorted(grading) == sorted(reveal) == list(range(CASES)) and grading != reveal
        main, further = slots[0].questions_to_ask()
        assert main is None and [q.key for q in further] == ["kl_grade"]
        main, further = slots[CASES].questions_to_ask()
        assert main == "real_or_synthetic" and further == []
    assert study.cases.filter(real_image__isnull=True).count() == CASES // 2  # half synthetic


def test_reader_grades_untold_then_is_told_and_both_readings_are_stored(study, readers):
    reader = readers[0]
    client = login(reader)
    instructions = client.get(f"/studies/{study.pk}/").content.decode()
    assert "synthetic" not in instructions.lower() and "real" not in instructions.lower()
    assert f"0 of {CASES} cases read" in instructions and f"You will read <strong>{CASES} cases</strong>" in instructions
    for number in range(1, CASES + 1):
        if number > 1:  # the page swaps each next case in from its JSON description: never a word of synthetic images
            described = client.get(f"/studies/{study.pk}/case/").json()
            assert described["progress_text"] == f"Case {number} of {CASES}" and described["reader_design"] == "grade"
            assert (described["done"], described["total"]) == (number - 1, CASES)
            assert not re.search(r"synthe|real|fake|generat|\bGAN", json.dumps(described), re.IGNORECASE)
        html, key, url = page_and_urls(client, study)
        assert f"Case {number} of {CASES}" in html
        assert "synthetic" not in html.lower() and 'name="answer"' not in html and 'name="q-kl_grade"' in html
        assert post(client, url, idempotency_key=key, questions={"kl_grade": "3"} if number != 1 else {}).status_code == (
            200 if number != 1 else 400)
        if number == 1:  # the grade is required: nothing stored, the same case comes again
            assert post(client, url, idempotency_key=key, questions={"kl_grade": "1"}).json()["status"] == "stored"
    # The single-page flow's next-case endpoint hands over to the reveal page rather than serving a case.
    handover = client.get(f"/studies/{study.pk}/case/").json()
    assert handover == {"kind": "reveal", "url": f"/studies/{study.pk}/read/"}
    assert study.assignments.get(reader=reader).slots.get(position=CASES + 1).first_served_at is None
    # Only now: told, then asked real or synthetic for the same images.
    html, key, _ = page_and_urls(client, study)
    assert "Some of the images you have just graded were synthetic" in html and "Take your time." in html and key is None
    told = client.get(f"/studies/{study.pk}/").content.decode()  # the instructions now describe the reveal block
    assert "real or synthetic" in told and "Take your time." in told and "You will read <strong>8 cases</strong>" in told
    for number in range(1, CASES + 1):
        response = client.get(f"/studies/{study.pk}/read/?continue=1")
        html = response.content.decode()
        key = re.search(r'data-idempotency-key="([^"]+)"', html).group(1)
        url = re.search(r'data-answer-url="([^"]+)"', html).group(1)
        assert f"Case {number} of {CASES}" in html and 'name="answer"' in html and 'name="q-kl_grade"' not in html
        assert post(client, url, idempotency_key=key, answer="synthetic").status_code == 400  # confidence needed
        assert post(client, url, idempotency_key=key, answer="synthetic", confidence=4).json()["status"] == "stored"
    assert "Study complete" in client.get(f"/studies/{study.pk}/read/").content.decode()
    answers = Answer.objects.filter(slot__assignment__reader=reader)
    assert answers.filter(question="kl_grade", slot__phase=Phase.GRADE).count() == CASES
    assert answers.filter(question="real_or_synthetic", slot__phase=Phase.REVEAL).count() == CASES
    assert not answers.filter(question="real_or_synthetic", slot__phase=Phase.GRADE).exists()


def test_export_and_report_give_grading_by_source_and_accuracy_after_the_reveal(study, readers):
    grades = {}
    for r, reader in enumerate(readers):
        assignment = study.assignments.get(reader=reader)
        for slot in assignment.slots.order_by("position").select_related("case"):
            slot.mark_served()
            if slot.phase == Phase.GRADE:
                grade = str((slot.case.index + r) % 5)
                grades[(reader.username, slot.case.index)] = grade
                slot.record(_key(), {"kl_grade": grade}, confidence=None, reading_ms=1000, client={})
            else:
                guess = "synthetic" if slot.case.index % 3 else "real"
                slot.record(_key(), {"real_or_synthetic": guess}, confidence=3, reading_ms=1000, client={})
    rows = rows_for_study(study)
    assert {row.design for row in rows} == {"mixed"}
    assert len(rows) == 2 * CASES * len(readers)
    grading = [row for row in rows if row.question == "kl_grade"]
    reveal = [row for row in rows if row.question == "real_or_synthetic"]
    assert len(grading) == len(reveal) == CASES * len(readers)
    assert max(row.position for row in grading) == CASES and min(row.position for row in reveal) == CASES + 1
    assert all(grades[(row.reader, int(row.case) - 1)] == row.answer for row in grading)
    report = build_report(rows, bootstrap=50)
    [study_report] = report["studies"]
    pooled = study_report["groups"][0]
    truth = {row.case: row.truth for row in reveal}
    correct = sum(row.answer == truth[row.case] for row in reveal)
    assert (pooled["accuracy"]["correct"], pooled["accuracy"]["n"]) == (correct, len(reveal))
    [kl] = study_report["further_questions"]
    assert kl["question"] == "kl_grade" and kl["n_answers"] == CASES * len(readers)
    between = kl["between_readers"]
    # Grading agreement on real and on synthetic images separately, from the cases' truth after the reveal.
    real_cases = {c for c, t in truth.items() if t == "real"}
    assert between["real"]["n_cases"] == len(real_cases) and between["synthetic"]["n_cases"] == CASES - len(real_cases)
    assert between["difference"] is not None


def _key():
    import uuid

    return uuid.uuid4()


def test_refusals_that_protect_the_grading_block(pool, checkpoint):
    base = dict(design="grade_reveal", pool=pool, case_count=8)
    with pytest.raises(ValidationError, match="practice"):
        Study(name="a", practice_case_count=2, **base).clean()
    with pytest.raises(ValidationError, match="twice"):
        Study(name="b", repeat_count=2, **base).clean()
    with pytest.raises(ValidationError, match="'synthetic'"):
        Study(name="c", instructions="Some images are synthetic.", **base).clean()
    with pytest.raises(ValidationError, match="'fake'"):
        Study(name="fake-or-not", **base).clean()
    study = Study.objects.create(name="d", **base)
    study.generators.set([checkpoint])
    with pytest.raises(ValidationError, match="grading question"):
        study.draw()
    with pytest.raises(ValidationError, match="'GAN'"):
        Question(study=study, key="q", label="GAN grade", choices="0,1").clean()


def test_coordinator_preview_grades_then_judges_and_stores_nothing(study):
    from tests.conftest import make_user

    user = make_user("coord-gr", role="coordinator")
    study.coordinators.add(user)
    coordinator = login(user)
    page = coordinator.get(f"/studies/{study.pk}/preview/").content.decode()
    assert "Case 1 of 8" in page and 'name="q-kl_grade"' in page and "synthetic" not in page.lower()
    graded = coordinator.post(f"/studies/{study.pk}/preview/answer/1/", json.dumps({"questions": {"kl_grade": "2"}}),
                              content_type="application/json").json()
    assert graded["would_store"] == {"kl_grade": "2"}
    reveal = coordinator.get(f"/studies/{study.pk}/preview/case/{CASES + 1}/").json()
    assert reveal["progress_text"] == "Case 1 of 8" and reveal["reader_design"] == "mixed" and 'name="answer"' in reveal["fields_html"]
    judged = coordinator.post(f"/studies/{study.pk}/preview/answer/{CASES + 1}/",
                              json.dumps({"answer": "real", "confidence": 2}), content_type="application/json").json()
    assert judged["would_store"] == {"real_or_synthetic": "real", "confidence": "2"}
    assert not Answer.objects.exists()
