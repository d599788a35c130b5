"""Wash-out repeats: repeats after a minimum number of cases, or as a block opened days after the first readings."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from readerstudy.studies.models import Answer, Phase, Study

pytestmark = pytest.mark.django_db


def old_plan(assignment) -> list[tuple[int, str]]:
    """Assignment.plan as it was before gaps and wash-outs, for studies that use neither."""
    study = assignment.study
    rng = np.random.default_rng(assignment.seed)
    practice = range(study.case_count, study.case_count + study.practice_case_count)
    scored = rng.permutation(study.case_count).tolist()
    repeats = rng.choice(scored, size=study.repeat_count, replace=False).tolist()
    planned = list(zip(rng.permutation(list(practice)).tolist(), assignment._sides(rng, len(practice))))
    planned_scored = list(zip(scored, assignment._sides(rng, len(scored))))
    for index, side in zip(repeats, assignment._sides(rng, len(repeats))):
        first = next(i for i, (case, _) in enumerate(planned_scored) if case == index)
        at = int(rng.integers(first + 1, len(planned_scored) + 1))
        planned_scored.insert(at, (index, side))
    return planned + planned_scored


def test_existing_plans_are_unchanged(make_study, readers):
    study = make_study("paired", cases=8, repeat_count=3, practice_case_count=2)
    for assignment in study.assignments.all():
        for seed in range(20):
            assignment.seed = seed
            assert assignment.plan() == old_plan(assignment)
        assert set(assignment.slots.values_list("phase", flat=True)) == {Phase.NONE}


def test_minimum_gap_between_first_reading_and_repeat(make_study, readers):
    study = make_study("mixed", cases=10, repeat_count=4, repeat_min_gap=5)
    for assignment in study.assignments.all():
        for seed in range(30):
            assignment.seed = seed
            plan = [index for index, _ in assignment.plan()]
            assert len(plan) == 14
            for index in {i for i in plan if plan.count(i) == 2}:
                first, second = [p for p, i in enumerate(plan) if i == index]
                assert second - first - 1 >= 5
    with pytest.raises(ValidationError, match="fewer repeats or a shorter gap"):
        Study(name="x", design="mixed", pool=study.pool, case_count=10, repeat_count=4, repeat_min_gap=7).clean()


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def answer_next(client, study) -> dict:
    html = client.get(f"/studies/{study.pk}/read/").content.decode()
    key = re.search(r'data-idempotency-key="([^"]+)"', html).group(1)
    url = re.search(r'data-answer-url="([^"]+)"', html).group(1)
    body = {"idempotency_key": key, "answer": "real", "confidence": 3, "reading_ms": 900}
    return client.post(url, json.dumps(body), content_type="application/json").json()


def test_washout_block_is_not_served_before_its_date(make_study, readers, monkeypatch):
    study = make_study("mixed", cases=6, repeat_count=2, washout_days=7)
    reader = readers[0]
    assignment = study.assignments.get(reader=reader)
    phases = list(assignment.slots.order_by("position").values_list("phase", flat=True))
    assert phases == [Phase.NONE] * 6 + [Phase.WASHOUT] * 2
    first_block = list(assignment.slots.filter(phase="").values_list("case__index", flat=True))
    repeated = list(assignment.slots.filter(phase="washout").values_list("case__index", flat=True))
    assert set(repeated) <= set(first_block) and len(set(repeated)) == 2

    clock = {"now": datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    client = login(reader)
    assert assignment.waiting_until() is None and assignment.washout_opens_at() is None
    for _ in range(6):
        assert answer_next(client, study)["status"] == "stored"
        clock["now"] += timedelta(minutes=1)
    finished_first = datetime(2026, 3, 2, 9, 5, tzinfo=dt_timezone.utc)  # the sixth answer
    opens = finished_first + timedelta(days=7)
    assert assignment.washout_opens_at() == opens

    clock["now"] = opens - timedelta(seconds=1)
    page = client.get(f"/studies/{study.pk}/read/").content.decode()
    assert "The next block of cases opens on" in page and "Monday 9 March 2026, 09:05" in page
    assert "data-answer-url" not in page and "/img/" not in page
    # The single-page flow asks the next-case endpoint after the sixth answer: it says wait, serves nothing.
    waiting = client.get(f"/studies/{study.pk}/case/").json()
    assert waiting["kind"] == "washout" and waiting["url"] == f"/studies/{study.pk}/read/" and "images" not in waiting
    assert waiting["opens_at"].startswith("2026-03-09T09:05")
    assert assignment.slots.get(position=7).first_served_at is None
    home = client.get("/").content.decode()
    assert "The repeat block opens on Monday 9 March 2026, 09:05 UTC" in home
    # Nothing of the block can be answered early: its slot was never served.
    slot = assignment.slots.get(position=7)
    body = {"idempotency_key": "8d4c6d3e-1111-4a1a-9a55-0c2f1d7b6a00", "answer": "real", "confidence": 3, "reading_ms": 900}
    early = client.post(f"/studies/{study.pk}/answer/7/", json.dumps(body), content_type="application/json")
    assert early.status_code == 409 and not slot.answers.exists()
    assert assignment.completed_at is None

    clock["now"] = opens
    assert client.get(f"/studies/{study.pk}/case/").json()["progress_text"] == "Case 7 of 8"
    assert "Case 7 of 8" in client.get(f"/studies/{study.pk}/read/").content.decode()
    assert answer_next(client, study)["status"] == "stored"
    assert answer_next(client, study)["status"] == "stored"
    assignment.refresh_from_db()
    assert assignment.completed_at == opens
    assert Answer.objects.filter(slot__assignment=assignment).count() == 8
