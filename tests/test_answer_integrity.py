"""Answers are stored exactly as the study allows: malformed payloads are 400s, key reuse is a 409,
and two tabs answering one case at once store one answer where going back is not allowed.

The race runs with real threads and real connections: in-process on PostgreSQL (CI's second run;
marked ``postgres``), and on SQLite in a child process with a file database (an in-memory SQLite
test database is not shared between threads the way a deployed one is).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from readerstudy.reading.payload import MAX_DEPTH, PayloadError, strict_json
from readerstudy.studies.models import Answer

REPO = Path(__file__).resolve().parent.parent
TRIALS = 50
CASES = TRIALS // 2  # two readers


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def serve(client, study) -> tuple[str, str]:
    html = client.get(f"/studies/{study.pk}/read/").content.decode()
    key = re.search(r'data-idempotency-key="([^"]+)"', html).group(1)
    url = re.search(r'data-answer-url="([^"]+)"', html).group(1)
    return key, url


def post(client, url, body):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data, content_type="application/json")


def answer_body(key, answer="left", reading_ms=1500, **extra):
    return {"idempotency_key": key, "answer": answer, "reading_ms": reading_ms, **extra}


# Malformed payloads: each is a 400 with a message and stores nothing.

def nested(depth: int) -> str:
    return '{"idempotency_key": "%s", "answer": "left", "reading_ms": 1, "client": %s}' % (
        uuid.uuid4(), "[" * depth + "]" * depth,
    )


MALFORMED = {
    "reading-ms-infinity": '{"idempotency_key": "%s", "answer": "left", "reading_ms": Infinity}',
    "reading-ms-nan": '{"idempotency_key": "%s", "answer": "left", "reading_ms": NaN}',
    "reading-ms-1e400": '{"idempotency_key": "%s", "answer": "left", "reading_ms": 1e400}',
    "reading-ms-true": '{"idempotency_key": "%s", "answer": "left", "reading_ms": true}',
    "reading-ms-float": '{"idempotency_key": "%s", "answer": "left", "reading_ms": 1.5}',
    "reading-ms-string": '{"idempotency_key": "%s", "answer": "left", "reading_ms": "100"}',
    "reading-ms-huge-int": '{"idempotency_key": "%s", "answer": "left", "reading_ms": ' + "9" * 5000 + "}",
    "client-float-1e400": '{"idempotency_key": "%s", "answer": "left", "reading_ms": 1, "client": {"zoom": 1e400}}',
    "nul-in-client-key": '{"idempotency_key": "%s", "answer": "left", "reading_ms": 1, "client": {"a\\u0000b": 1}}',
    "nul-in-client-value": '{"idempotency_key": "%s", "answer": "left", "reading_ms": 1, "client": {"a": "x\\u0000"}}',
    "lone-surrogate-in-client": '{"idempotency_key": "%s", "answer": "left", "reading_ms": 1, "client": {"a": "\\ud800"}}',
    "lone-surrogate-in-answer": '{"idempotency_key": "%s", "answer": "left\\udfff", "reading_ms": 1}',
    "answer-not-text": '{"idempotency_key": "%s", "answer": ["left"], "reading_ms": 1}',
    "client-not-object": '{"idempotency_key": "%s", "answer": "left", "reading_ms": 1, "client": [1]}',
    "not-an-object": '["%s"]',
    "not-utf8": b'{"idempotency_key": "%s", "answer": "left\xff", "reading_ms": 1}',
}


@pytest.mark.django_db
def test_malformed_payloads_are_400_with_a_message(make_study, readers):
    study = make_study("paired", cases=2)
    client = login(readers[0])
    _, url = serve(client, study)
    bodies = {
        name: template.replace(b"%s", str(uuid.uuid4()).encode()) if isinstance(template, bytes)
        else template % uuid.uuid4()
        for name, template in MALFORMED.items()
    }
    bodies["nested-100000"] = nested(100_000)
    bodies["oversized"] = json.dumps(answer_body(str(uuid.uuid4()), client={"pad": "x" * 100_000}))
    for name, body in bodies.items():
        response = post(client, url, body)
        assert response.status_code == 400, (name, response.content[:200])
        assert response.json()["error"], name
    assert Answer.objects.count() == 0
    # The payload the page sends is still accepted.
    assert post(client, url, answer_body(str(uuid.uuid4()), confidence=None, client={"zoom": 1.5})).status_code == 200


@pytest.mark.django_db
def test_free_text_is_stored_nfc_normalised(make_study, readers):
    study = make_study("mixed", cases=2)
    study.questions.create(key="note", label="Note", kind="text", required=False)
    client = login(readers[0])
    key, url = serve(client, study)
    decomposed = "Cafe\u0301"  # e + combining acute
    body = answer_body(key, "real", confidence="3", questions={"note": decomposed}, client={"e\u0301": 1})
    assert post(client, url, body).json()["status"] == "stored"
    note = Answer.objects.get(question="note")
    assert note.answer == "Caf\u00e9"
    assert note.client == {"\u00e9": 1}


def test_strict_json_limits_depth_before_parsing():
    assert strict_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(PayloadError, match="nested"):
        strict_json(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    # Brackets inside strings are text, not nesting.
    assert strict_json(json.dumps({"a": "[" * 1000}).encode()) == {"a": "[" * 1000}


@pytest.mark.django_db
def test_reused_key_with_different_content_is_a_conflict(make_study, readers):
    study = make_study("paired", cases=4, allow_back=True)
    client = login(readers[0])
    key, url = serve(client, study)
    assert post(client, url, answer_body(key, "left")).json()["status"] == "stored"
    assert post(client, url, answer_body(key, "left")).json()["status"] == "already stored"
    for changed in (answer_body(key, "right"), answer_body(key, "left", reading_ms=1501),
                    answer_body(key, "left", client={"zoom": 2})):
        response = post(client, url, changed)
        assert response.status_code == 409
        assert "different answer" in response.json()["error"]
    # The same key on another case is a conflict too.
    serve(client, study)
    assert post(client, url.replace("/answer/1/", "/answer/2/"), answer_body(key, "left")).status_code == 409
    assert list(Answer.objects.values_list("answer", "revision")) == [("left", 0)]


@pytest.mark.django_db
@pytest.mark.parametrize("path", [
    "/studies/{big}/", "/studies/{big}/read/", "/studies/{big}/answer/1/", "/studies/1/answer/{big}/",
    "/studies/{big}/report/", "/studies/{big}/answers.csv", "/studies/{big}/ratings.imrmc",
    "/studies/{big}/provenance.json", "/studies/{big}/report.json",
])
def test_a_twenty_digit_id_is_a_404(readers, path):
    from tests.conftest import make_user

    client = login(make_user("boss", role="coordinator"))
    url = path.format(big="9" * 20)
    response = client.post(url, "{}", content_type="application/json") if "/answer/" in url else client.get(url)
    assert response.status_code == 404


# The two-tab race.

def race(study, readers, *, same_key: bool = False) -> list[tuple[int, list[str]]]:
    """Per trial: (rows stored for the case, statuses of the two tabs). Every case of every reader is one trial."""
    results = []
    for reader in readers:
        page = login(reader)
        for _ in range(study.case_count):
            key, url = serve(page, study)
            keys = [key, key] if same_key else [key, str(uuid.uuid4())]
            barrier = threading.Barrier(2)
            statuses = [None, None]

            def tab(i):
                client = login(reader)
                barrier.wait()
                response = post(client, url, answer_body(keys[i], ("left", "right")[i] if not same_key else "left"))
                statuses[i] = f"{response.status_code} {response.json().get('status') or response.json().get('error')}"
                connection.close()

            threads = [threading.Thread(target=tab, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            position = int(url.rstrip("/").rsplit("/", 1)[1])
            stored = Answer.objects.filter(slot__assignment__reader=reader, slot__assignment__study=study,
                                           slot__position=position)
            results.append((stored.count(), sorted(statuses)))
            if not same_key and study.allow_back:
                assert sorted(stored.values_list("revision", flat=True)) == list(range(stored.count()))
    return results


def check_race(study, readers) -> None:
    results = race(study, readers)
    assert len(results) == TRIALS
    if study.allow_back:
        # Both tabs' readings are kept, one as a revision of the other: no duplicate revision, none lost.
        assert all(count == 2 and statuses == ["200 revised", "200 stored"] for count, statuses in results), results
    else:
        # Exactly one stored; the other tab is told the case was already answered.
        assert all(count == 1 and statuses == ["200 already answered", "200 stored"] for count, statuses in results), results


def check_same_key_race(study, readers) -> None:
    results = race(study, readers, same_key=True)
    assert all(count == 1 and statuses == ["200 already stored", "200 stored"] for count, statuses in results), results


@pytest.fixture
def real_folder(tmp_path) -> Path:
    """Enough real images for a paired study of CASES cases."""
    from tests.conftest import smooth_image, write_png16

    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(CASES):
        write_png16(folder / f"img-{i:02d}.png", smooth_image(i))
    return folder


@pytest.fixture
def pool(db, real_folder):
    from readerstudy.archive.importing import import_images
    from readerstudy.archive.models import Pool
    from tests.conftest import TINY_SIZE

    pool = Pool.objects.create(name="tiny", presentation_size=TINY_SIZE, bit_depth=16)
    assert len(import_images(real_folder, pool).imported) == CASES
    return pool


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("allow_back", [False, True], ids=["no-going-back", "going-back"])
def test_two_tabs_at_once_on_postgresql(make_study, readers, allow_back):
    if connection.vendor != "postgresql":
        pytest.skip("runs against the PostgreSQL named by DATABASE_URL (CI's second run); SQLite has its own test")
    study = make_study("paired", cases=CASES, allow_back=allow_back, seed=7 + allow_back, allow_real_image_reuse=True)
    check_race(study, readers)
    if not allow_back:  # the same request twice at once is the same case in either kind of study
        check_same_key_race(make_study("paired", cases=CASES, seed=100, allow_real_image_reuse=True), readers)


@pytest.mark.parametrize("allow_back", [False, True], ids=["no-going-back", "going-back"])
def test_two_tabs_at_once_on_sqlite(tmp_path, allow_back):
    """The same race in a child process on a file SQLite database configured as the site configures it."""
    from django.conf import settings

    if "sqlite" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("the suite runs on PostgreSQL: test_two_tabs_at_once_on_postgresql covers this run")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'race.sqlite3'}", "READERSTUDY_VAR_DIR": str(tmp_path),
           "IMAGE_STORE_DIR": str(tmp_path / "images"), "DJANGO_SETTINGS_MODULE": "readerstudy.settings",
           "ALLOWED_HOSTS": "testserver"}
    code = f"import django; django.setup(); import tests.test_answer_integrity as t; t.sqlite_race_main({str(tmp_path)!r}, {allow_back})"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "race ok" in run.stdout


def sqlite_race_main(folder: str, allow_back: bool) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from readerstudy.archive.importing import import_images
    from readerstudy.archive.models import Pool
    from readerstudy.studies.generation import prepare
    from readerstudy.studies.models import Generator, Study
    from tests.conftest import TINY_SIZE, make_user, smooth_image, write_png16

    from generator.checkpoints import save_checkpoint
    from generator.config import GeneratorConfig
    from generator.networks import Generator as Network
    import torch

    call_command("migrate", verbosity=0)
    root = Path(folder)
    archive = root / "archive"
    archive.mkdir()
    for i in range(CASES):
        write_png16(archive / f"img-{i:02d}.png", smooth_image(i))
    pool = Pool.objects.create(name="race", presentation_size=TINY_SIZE, bit_depth=16)
    import_images(archive, pool)
    config = GeneratorConfig(resolution=TINY_SIZE, latent_dim=16, base_width=4, max_width=16)
    torch.manual_seed(0)
    path = save_checkpoint(root / "tiny.safetensors", config, Network(config).state_dict())
    generator = Generator.objects.create(name="tiny", path=str(path))
    readers = [make_user("rad"), make_user("ortho", specialty="orthopaedic_surgeon")]
    studies = []
    for seed in (1, 2)[: 1 if allow_back else 2]:
        study = Study.objects.create(name=f"race-{seed}", design="paired", pool=pool, case_count=CASES, seed=seed,
                                     is_open=True, allow_back=allow_back, allow_real_image_reuse=True)
        study.generators.set([generator])
        prepare(study)
        for reader in readers:
            study.assign(reader)
        studies.append(study)
    check_race(studies[0], readers)
    if not allow_back:
        check_same_key_race(studies[1], readers)
    print("race ok")
