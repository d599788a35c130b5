"""Reading room 2 over HTTP: case descriptions, the server-kept deadline, endings, generated
instructions and the coordinator's preview (which writes nothing)."""

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from readerstudy.studies.models import Answer, Assignment, Question, Slot
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def answer(client, study, description, choice=None, **extra):
    body = {"idempotency_key": description["idempotency_key"], "answer": choice or ("left" if study.design == "paired" else "real"), "reading_ms": 1000}
    if study.design == "mixed":
        body["confidence"] = 3
    body.update(extra)
    return client.post(description["answer_url"], json.dumps(body), content_type="application/json")


def next_case(client, study, query=""):
    return client.get(f"/studies/{study.pk}/case/{query}")


def test_case_descriptions_walk_the_study_and_say_nothing_of_the_truth(make_study, readers):
    study = make_study("paired", cases=4)
    client = login(readers[0])
    shapes = {}
    prefetched = None
    for position in range(1, 5):
        description = next_case(client, study).json()
        assert description["kind"] == "case" and description["position"] == position
        assert description["progress_text"] == f"Case {position} of 4"
        # The images fetched ahead for this case were exactly its images, in display order.
        if prefetched is not None:
            assert prefetched == description["images"]
        prefetched = description["prefetch"]
        slot = Slot.objects.get(assignment__reader=readers[0], assignment__study=study, position=position)
        assert "truth" not in description and "synthetic_side" not in json.dumps(description)
        variable = {"position", "progress_text", "done", "percent", "images", "prefetch", "answer_url", "idempotency_key", "fields_html", "seconds_left_estimate"}
        shapes.setdefault(slot.synthetic_side, set()).add(json.dumps({k: v for k, v in description.items() if k not in variable}, sort_keys=True))
        assert answer(client, study, description).json()["status"] == "stored"
    assert prefetched == []  # nothing after the last case
    assert len(shapes) == 2 and shapes["left"] == shapes["right"]
    assert next_case(client, study).json() == {"kind": "finished", "url": f"/studies/{study.pk}/read/"}


def test_a_break_comes_before_the_case_it_precedes(make_study, readers):
    study = make_study("paired", cases=4, break_every=2)
    client = login(readers[0])
    for _ in range(2):
        answer(client, study, next_case(client, study).json())
    assert next_case(client, study).json() == {"kind": "break", "done": 2, "total": 4}
    description = next_case(client, study, "?continue=1").json()
    assert description["kind"] == "case" and description["position"] == 3


def test_the_deadline_is_set_once_and_a_reload_keeps_counting(make_study, readers):
    study = make_study("paired", cases=2, time_limit_seconds=30, blank_ms=500)
    client = login(readers[0])
    first = next_case(client, study).json()
    assert 30 < first["seconds_to_deadline"] <= 30.5  # the limit plus the neutral screen
    slot = Slot.objects.get(assignment__reader=readers[0], assignment__study=study, position=1)
    served, deadline = slot.first_served_at, slot.deadline
    # 22 s later (moved back in time rather than waited for), a reload shows about 8 s left.
    Slot.objects.filter(pk=slot.pk).update(first_served_at=served - timedelta(seconds=22), deadline=deadline - timedelta(seconds=22))
    again = next_case(client, study).json()
    assert again["position"] == 1 and 7.5 < again["seconds_to_deadline"] <= 8.5
    page = client.get(f"/studies/{study.pk}/read/").content.decode()
    left = float(re.search(r'data-seconds-to-deadline="([^"]+)"', page).group(1))
    assert 7.5 < left <= 8.5
    # Past the deadline: no time left, still an answer to give.
    Slot.objects.filter(pk=slot.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert next_case(client, study).json()["seconds_to_deadline"] == 0
    assert answer(client, study, again).json()["status"] == "stored"


def test_no_time_limit_means_no_deadline(make_study, readers):
    study = make_study("paired", cases=2)
    description = next_case(login(readers[0]), study).json()
    assert description["seconds_to_deadline"] is None
    assert Slot.objects.get(assignment__reader=readers[0], assignment__study=study, position=1).deadline is None


def test_a_study_closed_mid_case_ends_reading_with_its_own_reason(make_study, readers):
    study = make_study("paired", cases=3)
    client = login(readers[0])
    description = next_case(client, study).json()
    study.is_open = False
    study.save()
    response = answer(client, study, description)
    assert response.status_code == 410
    assert response.json()["ending"] == "closed" and "closed" in response.json()["error"]
    assert next_case(client, study).status_code == 410
    assert Answer.objects.count() == 0


def test_a_lost_session_is_a_json_401_not_the_login_page(make_study, readers):
    study = make_study("paired", cases=2)
    description = next_case(login(readers[0]), study).json()
    anonymous = Client()
    for response in (next_case(anonymous, study), answer(anonymous, study, description)):
        assert response.status_code == 401
        assert response.json()["ending"] == "session"
    stranger = login(make_user("stranger"))
    assert next_case(stranger, study).status_code == 404
    assert next_case(stranger, study).json()["ending"] == "gone"


def test_answers_follow_the_slots_questions(make_study, readers, monkeypatch):
    """The questions asked come from Slot.questions_to_ask alone (a phase design changes only it)."""
    study = make_study("mixed", cases=2)
    Question.objects.create(study=study, key="kl_grade", label="KL grade", choices="0,1,2,3,4")
    client = login(readers[0])
    description = next_case(client, study).json()
    assert 'name="q-kl_grade"' in description["fields_html"] and 'data-letter="G"' in description["fields_html"]
    assert answer(client, study, description).status_code == 400  # the grade is missing
    monkeypatch.setattr(Slot, "questions_to_ask", lambda slot: (slot.assignment.study.question, []))
    assert 'q-kl_grade' not in next_case(client, study).json()["fields_html"]
    assert answer(client, study, description).json()["status"] == "stored"


def test_instructions_describe_the_study_as_configured(make_study, readers):
    study = make_study("mixed", cases=6, practice_case_count=2, time_limit_seconds=20, break_every=3, repeat_count=1, allow_back=True)
    Question.objects.create(study=study, key="kl_grade", label="Kellgren–Lawrence grade", choices="0,1,2,3,4")
    Question.objects.create(study=study, key="comment", label="Comment", kind="text", required=False)
    client = login(readers[0])
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", client.get(f"/studies/{study.pk}/").content.decode()))
    assert "You will read 7 cases, after 2 practice cases." in text  # 6 scored + 1 repeat, as the progress bar counts
    for expected in (
        "The first 2 cases are practice: after each you are told the right answer",
        "You have 20 s to look at each case", "warns you in the last 10 s", "Reloading the page does not restart the time",
        "a break every 3 scored cases", "1 case is shown a second time", "You may go back",
        "Confidence, from 1 (guessing) to 5 (certain)", "Kellgren–Lawrence grade: one of 0, 1, 2, 3, 4; press G then the choice itself",
        "Comment (optional): free text; J puts the cursor in it",
        "at most 3 min of viewing for your 9 cases left",  # no reading yet: the time limit bounds it
    ):
        assert expected in text, expected
    # The progress bar counts the same cases.
    answer(client, study, next_case(client, study).json(), questions={"kl_grade": "1"})
    answer(client, study, next_case(client, study).json(), questions={"kl_grade": "1"})
    assert next_case(client, study).json()["progress_text"] == "Case 1 of 7"


def test_expected_duration_comes_from_the_pilot_pace(make_study, readers):
    study = make_study("paired", cases=5)
    pilot = login(readers[1])
    for ms in (4000, 6000, 20000):
        answer(pilot, study, next_case(pilot, study).json(), reading_ms=ms)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", login(readers[0]).get(f"/studies/{study.pk}/").content.decode()))
    # The median of the three readings so far is 6 s a case; 5 cases left take 0.5 min.
    assert "Expected time to finish: less than a minute for your 5 cases left" in text and "(6.0 s a case, from 3 readings)" in text


def test_coordinator_previews_any_study_and_nothing_is_written(make_study, readers):
    study = make_study("mixed", cases=4, practice_case_count=1)
    Question.objects.create(study=study, key="kl_grade", label="KL grade", choices="0,1,2,3,4")
    study.is_open = False  # any state
    study.save()
    user = make_user("coord", role="coordinator")
    study.coordinators.add(user)  # previews are for the study's own coordinators (Study.is_coordinated_by)
    coordinator = login(user)
    counts = (Assignment.objects.count(), Slot.objects.count(), Answer.objects.count())
    page = coordinator.get(f"/studies/{study.pk}/preview/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Preview as a reader: nothing is stored" in html and "Practice 1 of 1" in html
    url = re.search(r'data-answer-url="([^"]+)"', html).group(1)
    images = re.findall(r'data-src="(/img/[^"]+)"', html)
    assert coordinator.get(images[0]).status_code == 200
    body = {"answer": "synthetic", "confidence": 4, "questions": {"kl_grade": "2"}, "reading_ms": 10, "idempotency_key": str(uuid.uuid4())}
    result = coordinator.post(url, json.dumps(body), content_type="application/json").json()
    assert result["stored"] is False
    assert result["would_store"] == {"real_or_synthetic": "synthetic", "confidence": "4", "kl_grade": "2"}
    assert result["feedback"]["truth"] in ("real", "synthetic")  # a practice case, as a reader would see
    assert coordinator.post(url, json.dumps({**body, "questions": {}}), content_type="application/json").status_code == 400
    following = coordinator.get(result["next_case"]).json()
    assert following["progress_text"] == "Case 1 of 4" and following["preview"] is True
    assert coordinator.get(f"/studies/{study.pk}/preview/case/6/").json()["kind"] == "finished"
    assert (Assignment.objects.count(), Slot.objects.count(), Answer.objects.count()) == counts


def test_only_coordinators_preview(make_study, readers):
    study = make_study("paired", cases=2)
    assert login(readers[0]).get(f"/studies/{study.pk}/preview/").status_code == 403
    assert Client().get(f"/studies/{study.pk}/preview/").status_code == 302


def test_preview_of_a_study_without_cases_says_so(pool, checkpoint):
    from readerstudy.studies.models import Study

    coordinator = make_user("coord", role="coordinator")
    study = Study.objects.create(name="draft", design="paired", pool=pool, case_count=4, owner=coordinator)
    response = login(coordinator).get(f"/studies/{study.pk}/preview/")
    assert response.status_code == 409 and "Nothing to preview yet" in response.content.decode()
