"""Answers are stored exactly once even when the same answer arrives twice at the same moment.

Uses real threads and real database connections (PostgreSQL in CI's second run).
"""

import json
import threading
import uuid

import pytest
from django.db import connection
from django.test import Client

from readerstudy.studies.models import Answer

pytestmark = pytest.mark.django_db(transaction=True)


def test_simultaneous_duplicates_store_one_answer(make_study, readers):
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(("file:memorydb", ":memory:")):
        pytest.skip("an in-memory SQLite database is not shared between threads; CI runs this against PostgreSQL")
    study = make_study("paired", cases=2)
    client = Client()
    client.force_login(readers[0])
    client.get(f"/studies/{study.pk}/read/")
    body = json.dumps({"idempotency_key": str(uuid.uuid4()), "answer": "left", "reading_ms": 10})
    barrier = threading.Barrier(4)
    statuses = []

    def submit():
        worker = Client()
        worker.force_login(readers[0])
        barrier.wait()
        response = worker.post(f"/studies/{study.pk}/answer/1/", body, content_type="application/json")
        statuses.append((response.status_code, response.json()["status"]))
        connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(code == 200 for code, _ in statuses)
    assert sorted(s for _, s in statuses).count("stored") == 1
    assert Answer.objects.count() == 1
