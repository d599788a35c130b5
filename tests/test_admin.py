"""The coordinator's console (the Django admin): every page opens, and a study is
configured, prepared and opened there from start to finish."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from readerstudy.studies.models import Study
from readerstudy.studies.rebuild import rebuild_differences


@pytest.fixture
def coordinator(client, db):
    User.objects.create_superuser("coord", password="pw-coord")
    client.login(username="coord", password="pw-coord")
    return client


def test_every_admin_page_opens(coordinator, make_study, readers):
    study = make_study("mixed", cases=6)
    objects = {
        "studies.study": study, "studies.generator": study.sources()[0], "studies.case": study.cases.first(),
        "archive.pool": study.pool, "archive.image": study.cases.first().synthetic_image or study.cases.first().real_image,
        "auth.user": readers[0],
    }
    for label, obj in objects.items():
        app, model = label.split(".")
        for url in (reverse(f"admin:{app}_{model}_changelist"), reverse(f"admin:{app}_{model}_change", args=[obj.pk])):
            assert coordinator.get(url).status_code == 200, url
    for label in ("studies.study", "studies.generator", "archive.pool", "auth.user"):
        app, model = label.split(".")
        assert coordinator.get(reverse(f"admin:{app}_{model}_add")).status_code == 200, label
    assert coordinator.get(reverse("admin:studies_answer_changelist")).status_code == 200


def test_coordinator_configures_prepares_and_opens_a_study_in_the_admin(coordinator, pool, checkpoint, readers):
    client = coordinator
    assert client.get("/admin/studies/study/add/").status_code == 200
    form = {
        "name": "Pelvis fidelity", "design": "paired", "pool": pool.pk, "generators": [checkpoint.pk], "seed": 99,
        "case_count": 6, "synthetic_fraction": 0.5, "truncation": 1.0, "equivalence_margin": 0.1,
        "practice_case_count": 1, "blank_ms": 300, "break_every": 0, "repeat_count": 0, "instructions": "",
        "repeat_min_gap": 0, "washout_days": 0,  # wash-out settings (engineer 10b)
        "questions-TOTAL_FORMS": 0, "questions-INITIAL_FORMS": 0,
        "assignments-TOTAL_FORMS": 2, "assignments-INITIAL_FORMS": 0,
        "assignments-0-reader": readers[0].pk, "assignments-1-reader": readers[1].pk,
    }
    response = client.post("/admin/studies/study/add/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    study = Study.objects.get(name="Pelvis fidelity")
    assert study.sources() == [checkpoint]
    assert {a.seed for a in study.assignments.all()} == {study.reader_seed(r) for r in readers}

    client.post("/admin/studies/study/", {"action": "prepare_and_open", "_selected_action": [study.pk]})
    study.refresh_from_db()
    assert study.is_open and study.is_ready() and study.cases.count() == 7
    assert all(a.slots.count() == 7 for a in study.assignments.all())
    assert rebuild_differences(study) == []


class _FormFields(HTMLParser):
    """name -> value(s) of the admin change form's fields, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.setdefault(name, []).append(a.get("value", "on" if a.get("type") == "checkbox" else ""))
        elif tag == "select" and name:
            self._select = name
            self.fields.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = [""]

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea][0] += data


def change_form(client, url: str) -> dict[str, list[str]]:
    parser = _FormFields()
    parser.feed(client.get(url).content.decode())
    return {name: values for name, values in parser.fields.items() if not name.startswith("_") and "__prefix__" not in name}


def test_a_reader_added_after_opening_gets_their_own_order(coordinator, make_study, readers):
    from tests.conftest import make_user

    study = make_study("paired", cases=6)
    late = make_user("late", specialty="orthopaedic_surgeon")
    url = reverse("admin:studies_study_change", args=[study.pk])
    data = change_form(coordinator, url)
    total = int(data["assignments-TOTAL_FORMS"][0])
    data["assignments-TOTAL_FORMS"] = [str(total + 1)]
    data[f"assignments-{total}-reader"] = [str(late.pk)]
    data[f"assignments-{total}-study"] = [str(study.pk)]
    response = coordinator.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    assignment = study.assignments.get(reader=late)
    assert assignment.seed == study.reader_seed(late) and assignment.slots.count() == 6
    assert coordinator.get(reverse("admin:studies_study_change", args=[study.pk])).status_code == 200


def test_questions_are_fixed_once_reading_has_started(coordinator, make_study, readers):
    import uuid

    study = make_study("mixed", cases=4)
    url = reverse("admin:studies_study_change", args=[study.pk])
    fixed = 'name="questions-MAX_NUM_FORMS" value="0"'  # the inline offers no new question
    assert fixed not in coordinator.get(url).content.decode()
    slot = study.assignments.first().slots.first()
    slot.mark_served()
    slot.record(uuid.uuid4(), {study.question: "real"}, confidence=3, reading_ms=500, client={})
    data = change_form(coordinator, url)
    assert fixed in coordinator.get(url).content.decode()
    data |= {"questions-TOTAL_FORMS": ["1"], "questions-0-key": ["kl_grade"], "questions-0-label": ["KL grade"],
             "questions-0-kind": ["choice"], "questions-0-choices": ["0,1,2,3,4"], "questions-0-order": ["0"]}
    coordinator.post(url, data)
    assert not study.questions.exists()
