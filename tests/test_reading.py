"""The reading flow over HTTP: resume, exactly-once answers, what a reader may see."""

import json
import re
import uuid

import pytest
from django.test import Client

from readerstudy.studies.models import Answer

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def current_case(client, study):
    page = client.get(f"/studies/{study.pk}/read/")
    assert page.status_code == 200
    html = page.content.decode()
    key = re.search(r'data-idempotency-key="([^"]+)"', html).group(1)
    url = re.search(r'data-answer-url="([^"]+)"', html).group(1)
    images = re.findall(r'data-src="(/img/[^"]+)"', html)
    return html, key, url, images


def post_answer(client, url, key, answer="left", confidence=None, reading_ms=1500):
    body = {"idempotency_key": key, "answer": answer, "reading_ms": reading_ms, "confidence": confidence}
    return client.post(url, json.dumps(body), content_type="application/json")


def test_reader_reads_every_case_and_finishes(make_study, readers):
    study = make_study("paired", cases=4)
    client = login(readers[0])
    for position in range(1, 5):
        html, key, url, images = current_case(client, study)
        assert f"Case {position} of 4" in html
        assert len(images) == 2
        assert post_answer(client, url, key).json()["status"] == "stored"
    assert "Study complete" in client.get(f"/studies/{study.pk}/read/").content.decode()
    assert study.assignments.get(reader=readers[0]).completed_at is not None


def test_double_submit_is_stored_once(make_study, readers):
    study = make_study("paired", cases=4)
    client = login(readers[0])
    _, key, url, _ = current_case(client, study)
    first = post_answer(client, url, key, "left")
    second = post_answer(client, url, key, "left")
    assert first.json()["status"] == "stored"
    assert second.json()["status"] == "already stored"
    # A second rendering of the same case (a retried page load) gets a new key, yet still one answer.
    third = post_answer(client, url, str(uuid.uuid4()), "right")
    assert third.json()["status"] == "already answered"
    assert Answer.objects.count() == 1
    assert Answer.objects.get().answer == "left"


def test_reader_resumes_at_the_first_unanswered_case(make_study, readers):
    study = make_study("paired", cases=4)
    client = login(readers[0])
    for _ in range(2):
        _, key, url, _ = current_case(client, study)
        post_answer(client, url, key)
    # A new browser session (cookies gone) for the same reader.
    html, *_ = current_case(login(readers[0]), study)
    assert "Case 3 of 4" in html


def test_answers_record_server_and_client_times(make_study, readers):
    study = make_study("mixed", cases=4)
    client = login(readers[0])
    _, key, url, _ = current_case(client, study)
    post_answer(client, url, key, "synthetic", confidence=4, reading_ms=2345)
    answer = Answer.objects.get()
    assert answer.confidence == 4 and answer.reading_ms == 2345
    assert answer.served_at <= answer.answered_at
    assert answer.question == "real_or_synthetic"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"answer": "left", "reading_ms": 1}),
        json.dumps({"idempotency_key": "nope", "answer": "left", "reading_ms": 1}),
        json.dumps({"idempotency_key": str(uuid.uuid4()), "answer": "middle", "reading_ms": 1}),
        json.dumps({"idempotency_key": str(uuid.uuid4()), "answer": "left", "reading_ms": -5}),
    ],
    ids=["not-json", "no-key", "bad-key", "bad-answer", "negative-time"],
)
def test_malformed_answers_get_a_clear_error(make_study, readers, body):
    study = make_study("paired", cases=2)
    client = login(readers[0])
    _, _, url, _ = current_case(client, study)
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()
    assert Answer.objects.count() == 0


def test_mixed_answers_need_a_confidence(make_study, readers):
    study = make_study("mixed", cases=2)
    client = login(readers[0])
    _, key, url, _ = current_case(client, study)
    assert post_answer(client, url, key, "real").status_code == 400


def test_reader_cannot_see_other_studies_or_images(make_study, readers, db):
    from tests.conftest import make_user

    study = make_study("paired", cases=2)
    _, _, _, images = current_case(login(readers[0]), study)
    stranger = login(make_user("stranger"))
    assert stranger.get(f"/studies/{study.pk}/read/").status_code == 404
    assert stranger.get(images[0]).status_code == 404
    assert stranger.get(f"/studies/{study.pk}/report/").status_code == 403
    assert Client().get(images[0]).status_code == 302  # to the login page


def test_reader_never_sees_correctness(make_study, readers):
    study = make_study("paired", cases=2)
    client = login(readers[0])
    _, key, url, _ = current_case(client, study)
    response = post_answer(client, url, key)
    assert set(response.json()) == {"status", "next"}
    page = client.get(f"/studies/{study.pk}/read/").content.decode().lower()
    assert "correct" not in page and "synthetic_side" not in page


def test_closed_study_is_not_readable(make_study, readers):
    study = make_study("paired", cases=2)
    study.is_open = False
    study.save()
    # Its reader is told it was closed (410), not that it does not exist.
    response = login(readers[0]).get(f"/studies/{study.pk}/read/")
    assert response.status_code == 410
    assert "The study was closed" in response.content.decode()


def test_an_answer_takes_a_fixed_handful_of_queries(make_study, readers, django_assert_max_num_queries):
    """Pinned so it cannot creep back: session, user, the slot with everything the checks need (one
    query), and the insert (in a savepoint here, as tests run in a transaction; BEGIN and COMMIT
    in production). A further question adds its query, the last case the completion check."""
    study = make_study("mixed", cases=3)
    client = login(readers[0])
    _, key, url, _ = current_case(client, study)
    with django_assert_max_num_queries(6):
        assert post_answer(client, url, key, "real", confidence=3).json()["status"] == "stored"

    study.questions.create(key="kl_grade", label="KL grade", choices="0,1,2,3,4")
    _, key, url, _ = current_case(client, study)
    body = {"idempotency_key": key, "answer": "real", "confidence": 3, "reading_ms": 900, "questions": {"kl_grade": "2"}}
    with django_assert_max_num_queries(7):
        assert client.post(url, json.dumps(body), content_type="application/json").json()["status"] == "stored"

    _, key, url, _ = current_case(client, study)
    body["idempotency_key"] = key
    with django_assert_max_num_queries(9):  # the last case: is anything left to read, and the completion stamp
        assert client.post(url, json.dumps(body), content_type="application/json").json()["status"] == "stored"
    assert study.assignments.get(reader=readers[0]).completed_at is not None


def test_an_image_takes_three_queries(make_study, readers, django_assert_max_num_queries):
    """Session, user, and the reader's token looked up with its image's stored name (no model loaded)."""
    study = make_study("paired", cases=2)
    client = login(readers[0])
    _, _, _, images = current_case(client, study)
    with django_assert_max_num_queries(3):
        assert client.get(images[0]).status_code == 200
