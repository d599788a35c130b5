"""Exports are safe to open in a spreadsheet and answer cleanly for a study with no answers."""

import csv
import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.test import Client

from readerstudy.accounts.models import Role
from readerstudy.analysis.csvsafe import from_spreadsheet_safe, spreadsheet_safe
from readerstudy.analysis.tidy import COLUMNS, AnswerRow, read_csv, write_csv
from tests.conftest import make_user

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "'quoted", "''", "=", "-"]


def test_formula_cells_are_quoted_and_numbers_are_not():
    for text in HOSTILE:
        assert spreadsheet_safe(text).startswith("'"), text
        assert from_spreadsheet_safe(spreadsheet_safe(text)) == text
    for harmless in ["-0.25", "-3", "+1.5e3", "left", "kl_grade", "", "2026-01-06T09:00:00.250Z"]:
        assert spreadsheet_safe(harmless) == harmless
    assert spreadsheet_safe(-0.25) == -0.25


def row(reader="rad", answer="real", question="real_or_synthetic", design="mixed", truth=None, confidence=3, **extra):
    truth = truth if truth is not None else answer
    return AnswerRow(
        study=extra.pop("study", "s"), design=design, reader=reader, specialty="radiologist", years_experience=5, case="1",
        position=1, question=question, truth=truth, answer=answer, correct=int(answer == truth) if truth else None, confidence=confidence,
        served_at="2026-01-06T09:00:00Z", answered_at="2026-01-06T09:00:01Z", reading_ms=10, **extra,
    )


def test_tidy_csv_neutralises_formulas_and_round_trips():
    rows = []
    for reader, note in [("=evil()", "=1+1"), ("+rad", "@SUM(A1)"), ("-ortho", "'quoted"), ("rad", "-0.25")]:
        rows.append(row(reader=reader, answer="synthetic", truth="synthetic", study="@study", source="-gen"))
        rows.append(row(reader=reader, answer=note, truth="", question="note", confidence=None, study="@study", source="-gen"))
    buffer = io.StringIO()
    write_csv(rows, buffer)
    text = buffer.getvalue()
    cells = [cell for line in csv.reader(io.StringIO(text)) for cell in line]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "@", "\t", "\r"))]
    assert {"'=evil()", "'=1+1", "'@study", "'-gen", "'+rad", "'@SUM(A1)", "''quoted", "-0.25"} <= set(cells)
    assert read_csv(io.StringIO(text)) == rows




@pytest.fixture
def analyst(db):
    client = Client()
    client.force_login(make_user("ana", role=Role.ANALYST))
    return client


@pytest.mark.django_db
def test_free_text_formula_reaches_the_csv_neutralised(make_study, readers, analyst):
    study = make_study("mixed", cases=2)
    study.questions.create(key="note", label="Note", kind="text", required=False)
    reader = Client()
    reader.force_login(readers[0])
    reader.get(f"/studies/{study.pk}/read/")
    body = {"idempotency_key": str(uuid.uuid4()), "answer": "real", "confidence": "3", "reading_ms": 5,
            "questions": {"note": "=HYPERLINK(\"http://evil\",\"click\")"}}
    assert reader.post(f"/studies/{study.pk}/answer/1/", json.dumps(body), content_type="application/json").status_code == 200
    exported = analyst.get(f"/studies/{study.pk}/answers.csv").content.decode()
    notes = [r["answer"] for r in csv.DictReader(io.StringIO(exported)) if r["question"] == "note"]
    assert notes == ["'=HYPERLINK(\"http://evil\",\"click\")"]
    # The exported file reads back to what the reader typed.
    assert [r.answer for r in read_csv(io.StringIO(exported)) if r.question == "note"] == ["=HYPERLINK(\"http://evil\",\"click\")"]


@pytest.mark.django_db
@pytest.mark.parametrize("design", ["paired", "mixed"])
def test_every_export_of_a_study_without_answers_is_clean(make_study, analyst, design, tmp_path):
    study = make_study(design, cases=2)
    csv_response = analyst.get(f"/studies/{study.pk}/answers.csv")
    assert csv_response.status_code == 200
    assert csv_response.content.decode().strip() == ",".join(COLUMNS)
    assert read_csv(io.StringIO(csv_response.content.decode())) == []
    for url in ("report/", "report.json", "provenance.json"):
        assert analyst.get(f"/studies/{study.pk}/{url}").status_code == 200, url
    json.loads(analyst.get(f"/studies/{study.pk}/report.json").content)
    imrmc = analyst.get(f"/studies/{study.pk}/ratings.imrmc")
    assert imrmc.status_code in (400, 409)
    assert "no answers" in imrmc.content.decode() or "only mixed" in imrmc.content.decode()
    out = tmp_path / "answers.csv"
    call_command("export", str(study.pk), "--format", "csv", "-o", str(out))
    assert out.read_text().strip() == ",".join(COLUMNS)


@pytest.mark.django_db
def test_export_command_refuses_an_absurd_study_id():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no study"):
        call_command("export", "9" * 20, "--format", "csv")
