"""Reading workflow options: practice with feedback, breaks, going back, further questions."""

import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from readerstudy.analysis.export import rows_for_study
from readerstudy.studies.models import Answer, Question

pytestmark = pytest.mark.django_db


def reader_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(client, study, suffix="read/") -> str:
    return client.get(f"/studies/{study.pk}/{suffix}").content.decode()


def answer(client, study, html, choice=None, **extra):
    url = re.search(r'data-answer-url="([^"]+)"', html).group(1)
    key = re.search(r'data-idempotency-key="([^"]+)"', html).group(1)
    body = {"idempotency_key": key, "answer": choice or ("left" if study.design == "paired" else "real"), "reading_ms": 1000}
    if study.design == "mixed":
        body["confidence"] = 3
    body.update(extra)
    return client.post(url, json.dumps(body), content_type="application/json")


def test_practice_comes_first_with_feedback_and_is_left_out_of_analysis(make_study, readers):
    study = make_study("paired", cases=4, practice_case_count=2)
    slots = list(study.assignments.get(reader=readers[0]).slots.order_by("position").select_related("case"))
    assert [s.case.is_practice for s in slots] == [True, True, False, False, False, False]
    client = reader_client(readers[0])
    html = page(client, study)
    assert "Practice 1 of 2" in html
    feedback = answer(client, study, html).json()["feedback"]
    assert feedback["truth"] in ("left", "right") and isinstance(feedback["correct"], bool)
    answer(client, study, page(client, study))
    html = page(client, study)
    assert "Case 1 of 4" in html
    scored = answer(client, study, html).json()
    assert "feedback" not in scored
    rows = rows_for_study(study)
    assert len(rows) == 1 and rows[0].position == 1


def test_practice_cases_use_other_images_than_scored_ones(make_study):
    study = make_study("mixed", cases=6, practice_case_count=4)
    real = [c.real_image_id for c in study.cases.all() if c.real_image_id]
    assert len(real) == len(set(real))


def test_break_is_offered_every_n_scored_cases(make_study, readers):
    study = make_study("paired", cases=4, break_every=2, practice_case_count=1)
    client = reader_client(readers[0])
    answer(client, study, page(client, study))  # the practice case does not count towards breaks
    for _ in range(2):
        answer(client, study, page(client, study))
    assert "You have read 2 of 4 cases" in page(client, study)
    assert "Case 3 of 4" in page(client, study, "read/?continue=1")
    # Once the case is served, a reload goes straight back to it.
    assert "Case 3 of 4" in page(client, study)


def test_going_back_is_refused_unless_allowed(make_study, readers):
    study = make_study("paired", cases=3)
    client = reader_client(readers[0])
    answer(client, study, page(client, study), "left")
    html = page(client, study)
    assert 'href="/studies/%d/read/1/"' % study.pk not in html
    response = client.get(f"/studies/{study.pk}/read/1/")
    assert response.status_code == 302


def test_going_back_revises_by_appending(make_study, readers):
    study = make_study("paired", cases=3, allow_back=True)
    client = reader_client(readers[0])
    answer(client, study, page(client, study), "left")
    assert f"/studies/{study.pk}/read/1/" in page(client, study)
    review = page(client, study, "read/1/")
    assert "Case 1 of 3" in review
    assert answer(client, study, review, "right").json()["status"] == "revised"
    stored = list(Answer.objects.order_by("revision").values_list("answer", "revision"))
    assert stored == [("left", 0), ("right", 1)]
    assert [r.answer for r in rows_for_study(study)] == ["right"]
    # The reader carries on where they were.
    assert "Case 2 of 3" in page(client, study)


def test_further_questions_are_asked_validated_and_stored(make_study, readers):
    study = make_study("mixed", cases=3)
    Question.objects.create(study=study, key="kl_grade", label="Kellgren–Lawrence grade", choices="0,1,2,3,4", truth_from_label=True)
    Question.objects.create(study=study, key="comment", label="Comment", kind="text", required=False)
    client = reader_client(readers[0])
    html = page(client, study)
    assert "Kellgren–Lawrence grade" in html and 'name="q-kl_grade"' in html
    assert answer(client, study, html).status_code == 400  # the grade is required
    assert answer(client, study, html, questions={"kl_grade": "7"}).status_code == 400
    assert answer(client, study, html, questions={"kl_grade": "2", "comment": "sharp edges"}).status_code == 200
    assert set(Answer.objects.values_list("question", "answer")) == {("real_or_synthetic", "real"), ("kl_grade", "2"), ("comment", "sharp edges")}
    # The whole reading shares one key: repeating it stores nothing more.
    assert Answer.objects.values("idempotency_key").distinct().count() == 1


def test_further_questions_belong_to_mixed_studies(make_study):
    study = make_study("paired", cases=2)
    with pytest.raises(ValidationError, match="mixed study"):
        Question(study=study, key="kl", label="KL", choices="0,1").clean()


def test_time_left_is_estimated_from_the_readers_own_pace(make_study, readers):
    study = make_study("paired", cases=4, time_limit_seconds=30)
    client = reader_client(readers[0])
    html = page(client, study)
    assert 'data-time-limit="30"' in html
    answer(client, study, html)
    assignment = study.assignments.get(reader=readers[0])
    assert assignment.seconds_left(*assignment.progress()) == 3  # 1 s a case, 3 cases left
