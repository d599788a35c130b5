"""Nothing but the pixels may tell a reader which image is synthetic."""

import re
import uuid

import pytest
from django.test import Client

from readerstudy.archive.models import Source
from readerstudy.studies.models import Slot

pytestmark = pytest.mark.django_db

# Headers that vary per request for reasons unrelated to the image.
VOLATILE = {"Date", "Content-Length", "Vary", "Set-Cookie"}


def test_real_and_synthetic_images_are_served_identically(make_study, readers):
    study = make_study("paired", cases=6)
    client = Client()
    client.force_login(readers[0])
    header_sets, sizes = {}, {}
    for slot in Slot.objects.filter(assignment__reader=readers[0], assignment__study=study):
        for image in (slot.case.real_image, slot.case.synthetic_image):
            response = client.get(f"/img/{image.token}")
            assert response.status_code == 200
            headers = {k: v for k, v in response.headers.items() if k not in VOLATILE}
            header_sets.setdefault(image.source, set()).add(tuple(sorted(headers.items())))
            sizes.setdefault(image.source, []).append(int(response.headers["Content-Length"]))
            assert response.content.startswith(b"\x89PNG")
            assert b"tEXt" not in response.content and b"tIME" not in response.content
    assert header_sets[Source.REAL] == header_sets[Source.SYNTHETIC]
    assert len(header_sets[Source.REAL]) == 1
    assert "Last-Modified" not in dict(next(iter(header_sets[Source.REAL])))


def test_image_urls_are_opaque_and_say_nothing_about_source(make_study):
    study = make_study("paired", cases=6)
    for case in study.cases.select_related("real_image", "synthetic_image"):
        for image in (case.real_image, case.synthetic_image):
            assert re.fullmatch(r"[A-Za-z0-9_-]{32}", image.token)
            assert image.storage_name == f"{image.token}.png"


def normalised_page(client, study) -> str:
    """The reading page with what legitimately varies per case blanked out."""
    html = client.get(f"/studies/{study.pk}/read/").content.decode()
    html = re.sub(r"/img/[A-Za-z0-9_-]+", "/img/TOKEN", html)
    html = re.sub(r'(data-idempotency-key|name="csrfmiddlewaretoken" value|data-answer-url|data-position)="[^"]*"', r'\1=""', html)
    return re.sub(r"[Cc]ase \d+ of|width: \d+%|aria-valuenow=\"\d+\"|max=\"100\" value=\"\d+\"", "", html)


def answer_current(client, study, slot) -> None:
    body = {"idempotency_key": str(uuid.uuid4()), "answer": "left" if study.design == "paired" else "real", "confidence": 3, "reading_ms": 5}
    response = client.post(f"/studies/{study.pk}/answer/{slot.position}/", body, content_type="application/json")
    assert response.status_code == 200


@pytest.mark.parametrize("design", ["paired", "mixed"])
def test_reading_page_does_not_depend_on_source(make_study, readers, design):
    study = make_study(design, cases=6)
    client = Client()
    client.force_login(readers[0])
    pages = {}
    for slot in Slot.objects.filter(assignment__reader=readers[0], assignment__study=study).order_by("position"):
        truth = slot.synthetic_side if design == "paired" else slot.case.is_synthetic
        pages.setdefault(truth, set()).add(normalised_page(client, study))
        answer_current(client, study, slot)
    assert len(pages) == 2
    first, second = pages.values()
    assert first == second and len(first) == 1
