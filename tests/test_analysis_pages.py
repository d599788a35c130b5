"""The analyst's pages and exports agree with `analyze` on the exported file."""

import json
import re
import uuid

import pytest
from django.core.management import call_command
from django.test import Client

from readerstudy.accounts.models import Role
from readerstudy.studies.models import Question, Slot
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def read_everything(study, readers):
    """Each reader answers every case: right on even positions, wrong on odd ones, a fixed confidence."""
    for reader in readers:
        client = Client()
        client.force_login(reader)
        for slot in Slot.objects.filter(assignment__reader=reader, assignment__study=study).order_by("position"):
            client.get(f"/studies/{study.pk}/read/")
            slot.refresh_from_db()
            truth = slot.truth
            options = ("left", "right") if study.design == "paired" else ("real", "synthetic")
            choice = truth if slot.position % 2 == 0 else next(o for o in options if o != truth)
            body = {"idempotency_key": str(uuid.uuid4()), "answer": choice, "reading_ms": 900 + slot.position, "confidence": 1 + slot.position % 5}
            if study.questions.exists():
                body["questions"] = {"kl_grade": str(slot.position % 5)}
            response = client.post(f"/studies/{study.pk}/answer/{slot.position}/", json.dumps(body), content_type="application/json")
            assert response.status_code == 200, response.content


@pytest.fixture
def analyst_client(db):
    client = Client()
    client.force_login(make_user("ana", role=Role.ANALYST))
    return client


@pytest.mark.parametrize("design", ["paired", "mixed"])
def test_page_json_and_analyze_on_exported_csv_agree(make_study, readers, analyst_client, tmp_path, design, capsys):
    study = make_study(design, cases=10, repeat_count=2)
    if design == "mixed":
        Question.objects.create(study=study, key="kl_grade", label="KL grade", choices="0,1,2,3,4", truth_from_label=True)
    read_everything(study, readers)

    page = analyst_client.get(f"/studies/{study.pk}/report/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "Cohen" in html
    from_site = analyst_client.get(f"/studies/{study.pk}/report.json").json()

    exported = tmp_path / "answers.csv"
    call_command("export", str(study.pk), "--format", "csv", "-o", str(exported))
    assert exported.read_text() == analyst_client.get(f"/studies/{study.pk}/answers.csv").content.decode()
    capsys.readouterr()
    args = ["analyze", str(exported), "--format", "json"]
    if design == "mixed":
        args += ["--choices", "kl_grade=0,1,2,3,4"]
    call_command(*args)
    from_file = json.loads(capsys.readouterr().out)
    # Both are stamped (when, by what, from where); the site also knows the study is open, so its
    # report is interim. Every figure is the same.
    assert from_site["stamp"]["source"] == "site" and from_file["stamp"]["source"] == "file answers.csv"
    assert from_site["stamp"]["studies"][0]["state"] == str(study.state)  # the lifecycle state
    assert from_file["stamp"]["studies"][0]["state"] == "unknown"
    assert from_site["stamp"]["studies"][0]["last_answer_at"] == from_file["stamp"]["studies"][0]["last_answer_at"]
    for report in (from_site, from_file):
        del report["stamp"], report["interim"]
        for study_report in report["studies"]:
            for key in ("interim", "interim_reasons"):
                del study_report["completeness"][key]
            study_report["headline"].pop("interim")
    assert from_file == from_site

    pooled = from_site["studies"][0]["groups"][0]
    assert pooled["accuracy"]["n"] == 20  # first readings only: 2 readers x 10 cases
    # Every figure the page prints is in the JSON, to the last digit.
    assert str(pooled["accuracy"]["estimate"]) in html


def test_imrmc_download_for_mixed_studies_only(make_study, readers, analyst_client):
    mixed = make_study("mixed", cases=8)
    read_everything(mixed, readers)
    text = analyst_client.get(f"/studies/{mixed.pk}/ratings.imrmc").content.decode()
    assert "BEGIN DATA:" in text
    assert len(re.findall(r"^-1,", text, flags=re.M)) == 8  # one truth row per case
    paired = make_study("paired", cases=4, seed=99)
    assert analyst_client.get(f"/studies/{paired.pk}/ratings.imrmc").status_code == 400


def test_power_page_shows_a_grid(make_study, analyst_client):
    study = make_study("paired", cases=4)
    html = analyst_client.get(f"/studies/{study.pk}/power/?accuracy=0.55&goal=above_chance").content.decode()
    assert "readers \\ cases" in html and "simulated studies" in html
    bad = analyst_client.get(f"/studies/{study.pk}/power/?accuracy=2").content.decode()
    assert 'class="error"' in bad


def test_readers_cannot_open_reports(make_study, readers):
    study = make_study("paired", cases=2)
    client = Client()
    client.force_login(readers[0])
    for suffix in ("report/", "report.json", "answers.csv", "ratings.imrmc", "power/", "provenance.json"):
        assert client.get(f"/studies/{study.pk}/{suffix}").status_code == 403


def test_export_queries_do_not_grow_with_answers(make_study, readers, django_assert_max_num_queries):
    from readerstudy.analysis.export import rows_for_study

    study = make_study("mixed", cases=10)
    Question.objects.create(study=study, key="kl_grade", label="KL grade", choices="0,1,2,3,4", truth_from_label=True)
    read_everything(study, readers)
    with django_assert_max_num_queries(6):
        rows = rows_for_study(study)
    assert len(rows) == 40  # 2 readers x 10 cases x 2 questions
