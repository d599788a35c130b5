"""The coordinator console: the coordinator role alone is enough."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import make_user


@pytest.mark.django_db
def test_console_is_for_coordinators_without_superuser(client):
    make_user("coord", role="coordinator")
    make_user("reader1")
    client.login(username="coord", password="pw-coord")
    assert client.get(reverse("console:dashboard")).status_code == 200
    client.login(username="reader1", password="pw-reader1")
    assert client.get(reverse("console:dashboard")).status_code == 403


# The study builder, lifecycle actions and monitoring through the console's pages.

import re  # noqa: E402

from django.core import mail  # noqa: E402

from readerstudy.studies.lifecycle import State  # noqa: E402
from readerstudy.studies.models import Exclusion, Study  # noqa: E402


@pytest.fixture
def coord(client, db):
    user = make_user("coord", role="coordinator")
    client.login(username="coord", password="pw-coord")
    return user


def builder_form(pool, checkpoint, readers, **fields) -> dict:
    form = {
        "name": "Pelvis", "pool": pool.pk, "generators": [checkpoint.pk], "case_count": 6, "practice_case_count": 0,
        "repeat_count": 0, "instructions": "Read carefully.", "blank_ms": 0, "break_every": 0,
        "equivalence_margin": 0.1, "truncation": 1.0, "seed": 42, "readers": [r.pk for r in readers],
        "questions-TOTAL_FORMS": 0, "questions-INITIAL_FORMS": 0,
    }
    return form | fields


def test_builder_makes_a_paired_study_owned_by_its_coordinator(client, coord, pool, checkpoint, readers):
    page = client.get(reverse("console:study_create", args=["paired"])).content.decode()
    assert "which is synthetic" in page and 'name="synthetic_fraction"' not in page and "Further questions" not in page
    response = client.post(reverse("console:study_create", args=["paired"]), builder_form(pool, checkpoint, readers))
    study = Study.objects.get(name="Pelvis")
    assert response.status_code == 302 and response.url == reverse("console:study", args=[study.pk])
    assert (study.design, study.owner, study.state, study.seed) == ("paired", coord, State.DRAFT, 42)
    assert set(study.assignments.values_list("reader", flat=True)) == {r.pk for r in readers}
    assert study.audit_log.filter(action="created", by=coord).exists()


def test_builder_mixed_has_the_fraction_and_a_question_formset(client, coord, pool, checkpoint, readers):
    page = client.get(reverse("console:study_create", args=["mixed"])).content.decode()
    assert 'name="synthetic_fraction"' in page and 'name="questions-0-key"' in page
    form = builder_form(pool, checkpoint, readers, synthetic_fraction=0.5, **{
        "questions-TOTAL_FORMS": 1, "questions-0-key": "kl_grade", "questions-0-label": "KL grade",
        "questions-0-kind": "choice", "questions-0-choices": "0,1,2,3,4", "questions-0-required": "on", "questions-0-order": 0,
    })
    assert client.post(reverse("console:study_create", args=["mixed"]), form).status_code == 302
    study = Study.objects.get(name="Pelvis")
    assert list(study.questions.values_list("key", flat=True)) == ["kl_grade"]
    assert study.audit_log.filter(action="question added", field="kl_grade").exists()


def test_case_count_is_checked_against_the_pool(client, coord, pool, checkpoint, readers):
    response = client.post(reverse("console:study_create", args=["paired"]), builder_form(pool, checkpoint, readers, case_count=30))
    assert response.status_code == 200
    assert "these cases need 30 real images but pool tiny has 24" in response.content.decode()
    assert not Study.objects.exists()


def test_a_coordinator_sees_only_their_studies(client, coord, pool, checkpoint, readers):
    mine = Study.objects.create(name="mine", design="paired", pool=pool, owner=coord)
    given = Study.objects.create(name="given", design="paired", pool=pool)
    given.coordinators.add(coord)
    other = Study.objects.create(name="other", design="paired", pool=pool, owner=make_user("else", role="coordinator"))
    page = client.get(reverse("console:dashboard")).content.decode()
    assert "mine" in page and "given" in page and ">other<" not in page
    assert client.get(reverse("console:study", args=[mine.pk])).status_code == 200
    assert client.get(reverse("console:study", args=[given.pk])).status_code == 200
    for name in ("study", "study_edit", "study_clone", "study_progress"):
        assert client.get(reverse(f"console:{name}", args=[other.pk])).status_code == 403
    assert client.post(reverse("console:study_prepare", args=[other.pk])).status_code == 403
    assert Study.objects.get(pk=other.pk).state == State.DRAFT
    home = client.get(reverse("home")).content.decode()  # no Configure link that would be refused
    assert reverse("console:study", args=[mine.pk]) in home and reverse("console:study", args=[given.pk]) in home
    assert reverse("console:study", args=[other.pk]) not in home
    assert reverse("report", args=[other.pk]) in home  # a coordinator is an analyst too: every report is theirs to read
    assert "<td>Draft</td>" in home  # the study's lifecycle state, not a bare open/closed


def test_prepare_open_freeze_close_through_the_console(client, coord, pool, checkpoint, readers):
    client.post(reverse("console:study_create", args=["paired"]), builder_form(pool, checkpoint, readers))
    study = Study.objects.get(name="Pelvis")
    response = client.post(reverse("console:study_open", args=[study.pk]), follow=True)
    assert "no cases yet: prepare it first" in response.content.decode()
    assert Study.objects.get(pk=study.pk).state == State.DRAFT
    client.post(reverse("console:study_prepare", args=[study.pk]))  # jobs run inline in tests
    progress = client.get(reverse("console:study_progress", args=[study.pk])).json()
    assert progress | {"done": 6, "total": 6, "status": "succeeded", "state": "ready"} == progress
    page = client.get(reverse("console:study", args=[study.pk])).content.decode()
    assert "6 scored" in page and "tiny: 6 scored synthetic cases" in page and "12" in page  # images per reader
    assert "20.0 s per case" in page and "a default: no answers yet" in page
    client.post(reverse("console:study_open", args=[study.pk]))
    study.refresh_from_db()
    assert study.is_open and study.protocol_hash
    page = client.get(reverse("console:study_edit", args=[study.pk])).content.decode()
    assert "The protocol was frozen" in page
    assert re.search(r'name="equivalence_margin"[^>]*disabled', page)
    late = make_user("late")
    form = builder_form(pool, checkpoint, [*readers, late], equivalence_margin=0.45, seed=7)
    assert client.post(reverse("console:study_edit", args=[study.pk]), form).status_code == 302
    study.refresh_from_db()
    assert (study.equivalence_margin, study.seed) == (0.1, 42)  # disabled fields ignore what is posted
    assert study.assignments.get(reader=late).slots.count() == 6
    assert study.protocol_hash in client.get(reverse("console:study", args=[study.pk])).content.decode()
    assert study.protocol_hash in client.get(reverse("report", args=[study.pk])).content.decode()
    confirm = client.get(reverse("console:study_close", args=[study.pk])).content.decode()
    assert "Close the study" in confirm and "3 readers have not finished" in confirm
    assert Study.objects.get(pk=study.pk).is_open  # asking is not closing
    client.post(reverse("console:study_close", args=[study.pk]))
    assert Study.objects.get(pk=study.pk).state == State.CLOSED
    log = client.get(reverse("console:study", args=[study.pk])).content.decode()
    for change in ("Preparing", "Ready to open", "Open for reading", "Closed", "reader added"):
        assert change in log


def test_remind_emails_readers_who_have_not_finished(client, coord, make_study, readers, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    study = make_study("paired", cases=1)
    Study.objects.filter(pk=study.pk).update(state=State.OPEN, owner=coord)
    readers[0].email = "rad@example.org"
    readers[0].save()
    done = study.assignments.get(reader=readers[1])
    done.slots.update(first_served_at="2026-01-01T00:00Z")
    import uuid

    done.slots.get().record(uuid.uuid4(), {"which_is_synthetic": "left"}, confidence=None, reading_ms=4000, client={})
    page = client.get(reverse("console:study", args=[study.pk])).content.decode()
    assert "Remind the 1 reader who has not finished" in page and "4.0" in page
    response = client.post(reverse("console:study_remind", args=[study.pk]), follow=True)
    assert [m.to for m in mail.outbox] == [["rad@example.org"]]
    assert f"/studies/{study.pk}/" in mail.outbox[0].body and "0 of 1 cases" in mail.outbox[0].body
    assert "Reminded 1 reader: rad" in response.content.decode()


def test_exclusion_through_the_console_needs_a_reason(client, coord, make_study, readers):
    study = make_study("paired", cases=2)
    Study.objects.filter(pk=study.pk).update(owner=coord)
    url = reverse("console:study_exclude", args=[study.pk])
    response = client.post(url, {"reader": readers[0].pk, "reason": " "})
    assert response.status_code == 200 and not Exclusion.objects.exists()
    response = client.post(url, {"reader": readers[0].pk, "position": 9, "reason": "x"})
    assert "has no reading at position 9" in response.content.decode()
    client.post(url, {"reader": readers[0].pk, "position": 2, "reason": "phone call mid-case"})
    exclusion = Exclusion.objects.get()
    assert (exclusion.slot.position, exclusion.by, exclusion.reason) == (2, coord, "phone call mid-case")
    page = client.get(reverse("console:study", args=[study.pk])).content.decode()
    assert "phone call mid-case" in page and "reading at position 2" in page


def test_clone_through_the_console(client, coord, make_study, readers):
    study = make_study("paired", cases=2)
    Study.objects.filter(pk=study.pk).update(owner=coord)
    response = client.post(reverse("console:study_clone", args=[study.pk]), {"name": "Again", "include_readers": "on"})
    copy = Study.objects.get(name="Again")
    assert response.url == reverse("console:study", args=[copy.pk])
    assert copy.owner == coord and copy.seed != study.seed and copy.assignments.count() == 2 and copy.state == State.DRAFT


def test_an_answer_after_closing_is_refused_in_words_not_retried(client, coord, make_study, readers):
    study = make_study("paired", cases=2)
    Study.objects.filter(pk=study.pk).update(state=State.OPEN, owner=coord)
    client.login(username="rad", password="pw-rad")
    assert client.get(f"/studies/{study.pk}/read/").status_code == 200  # serves position 1
    Study.objects.get(pk=study.pk).close(coord)
    response = client.post(
        f"/studies/{study.pk}/answer/1/", {"idempotency_key": "8d1c4c5e-1111-4a6b-9a8e-2b7f0c6a1d11", "answer": "left", "reading_ms": 900},
        content_type="application/json",
    )
    # 410 Gone with a reason the reading page shows, never retries (readerstudy/reading/views.py).
    assert response.status_code == 410 and "closed by its coordinator" in response.json()["error"]
    assert response.json()["ending"] == "closed"
    assert not study.assignments.get(reader=readers[0]).slots.filter(answers__isnull=False).exists()


# Grade-then-reveal, wash-out repeats, blinding and display settings, reader groups (engineer GR).

from readerstudy.accounts.models import ReaderGroup  # noqa: E402
from readerstudy.console.forms import DESIGN_FIELDS, DESIGN_HELP  # noqa: E402
from readerstudy.studies.lifecycle import DRAW_FIELDS, PROTOCOL_FIELDS  # noqa: E402


def test_builder_offers_grade_then_reveal_with_its_own_fields(client, coord, pool, checkpoint, readers):
    assert "grade_reveal" in DESIGN_FIELDS and "synthetic" in DESIGN_HELP["grade_reveal"]
    dashboard = client.get(reverse("console:dashboard")).content.decode()
    assert reverse("console:study_create", args=["grade_reveal"]) in dashboard
    assert "New grade-then-reveal study" in dashboard and "grade_reveal study" not in dashboard  # words, not the code
    page = client.get(reverse("console:study_create", args=["grade_reveal"])).content.decode()
    assert 'name="reveal_instructions"' in page and 'name="synthetic_fraction"' in page and 'name="questions-0-key"' in page
    assert 'name="practice_case_count"' not in page and 'name="repeat_count"' not in page and 'name="washout_days"' not in page
    form = builder_form(pool, checkpoint, readers, name="Knee grading", synthetic_fraction=0.5, instructions="Grade each knee.",
                        reveal_instructions="Now say which are synthetic.", **{
                            "questions-TOTAL_FORMS": 1, "questions-0-key": "kl", "questions-0-label": "KL grade",
                            "questions-0-kind": "choice", "questions-0-choices": "0,1,2,3,4", "questions-0-required": "on",
                            "questions-0-order": 0})
    assert client.post(reverse("console:study_create", args=["grade_reveal"]), form).status_code == 302
    study = Study.objects.get(name="Knee grading")
    assert (study.design, study.reveal_instructions, study.practice_case_count) == ("grade_reveal", "Now say which are synthetic.", 0)
    assert study.real_images_needed() == 3 and study.images_per_reader() == 12
    detail = client.get(reverse("console:study", args=[study.pk])).content.decode()  # every case is read twice
    assert "each graded, then judged after the reveal: 12 readings per reader" in detail
    assert "Graded untold: KL grade. After the reveal: real or synthetic" in detail
    # The name and instructions are seen while grading: a telling word is refused, in words.
    told = builder_form(pool, checkpoint, readers, name="Synthetic knees", synthetic_fraction=0.5)
    response = client.post(reverse("console:study_create", args=["grade_reveal"]), told)
    assert response.status_code == 200 and "leave out" in response.content.decode()


def test_builder_sets_washout_reuse_and_display_check_and_they_freeze(client, coord, pool, checkpoint, readers):
    page = client.get(reverse("console:study_create", args=["mixed"])).content.decode()
    for name in ("repeat_min_gap", "washout_days", "allow_real_image_reuse", "display_check"):
        assert f'name="{name}"' in page
    form = builder_form(pool, checkpoint, readers, synthetic_fraction=0.5, repeat_count=2, repeat_min_gap=1, washout_days=14,
                        display_check="on", allow_real_image_reuse="on")
    assert client.post(reverse("console:study_create", args=["mixed"]), form).status_code == 302
    study = Study.objects.get(name="Pelvis")
    assert (study.repeat_min_gap, study.washout_days, study.display_check, study.allow_real_image_reuse) == (1, 14, True, True)
    assert {"repeat_min_gap", "washout_days", "allow_real_image_reuse"} <= set(DRAW_FIELDS) <= set(PROTOCOL_FIELDS)
    assert {"display_check", "reveal_instructions"} <= set(PROTOCOL_FIELDS)
    too_long = builder_form(pool, checkpoint, readers, name="Gap", synthetic_fraction=0.5, repeat_count=4, repeat_min_gap=4)
    response = client.post(reverse("console:study_create", args=["mixed"]), too_long)
    assert response.status_code == 200 and "fewer repeats or a shorter gap" in response.content.decode()


def test_builder_assigns_every_member_of_a_chosen_reader_group(client, coord, pool, checkpoint, readers):
    group = ReaderGroup.objects.create(name="knee panel")
    group.members.set(readers[:1])
    page = client.get(reverse("console:study_create", args=["paired"])).content.decode()
    assert 'name="reader_groups"' in page and "knee panel" in page
    form = builder_form(pool, checkpoint, [], reader_groups=[group.pk])  # no reader ticked: the group's alone
    assert client.post(reverse("console:study_create", args=["paired"]), form).status_code == 302
    study = Study.objects.get(name="Pelvis")
    assert set(study.assignments.values_list("reader", flat=True)) == {readers[0].pk}
    assert study.audit_log.filter(action="reader added", after=readers[0].username).exists()
