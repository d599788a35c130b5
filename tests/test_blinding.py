"""Nothing but the pixels may tell a reader which image is synthetic."""

import re
import uuid

import pytest
from django.test import Client

from readerstudy.archive.models import Source
from readerstudy.reading.views import image_urls
from readerstudy.studies.models import Slot, Study

pytestmark = pytest.mark.django_db

# Headers that vary per request for reasons unrelated to the image.
VOLATILE = {"Date", "Content-Length", "Vary", "Set-Cookie"}


def test_real_and_synthetic_images_are_served_identically(make_study, readers):
    study = make_study("paired", cases=6)
    client = Client()
    client.force_login(readers[0])
    header_sets, sizes = {}, {}
    for slot in Slot.objects.filter(assignment__reader=readers[0], assignment__study=study):
        for image, url in zip(slot.images_in_display_order(), image_urls(slot)):
            response = client.get(url)
            assert response.status_code == 200
            headers = {k: v for k, v in response.headers.items() if k not in VOLATILE}
            header_sets.setdefault(image.source, set()).add(tuple(sorted(headers.items())))
            sizes.setdefault(image.source, []).append(int(response.headers["Content-Length"]))
            assert response.content.startswith(b"\x89PNG")
            assert b"tEXt" not in response.content and b"tIME" not in response.content
    assert header_sets[Source.REAL] == header_sets[Source.SYNTHETIC]
    assert len(header_sets[Source.REAL]) == 1
    assert "Last-Modified" not in dict(next(iter(header_sets[Source.REAL])))
    assert "ETag" not in dict(next(iter(header_sets[Source.REAL])))
    # The stored encoding makes every image of a pool exactly as long, whatever its source.
    assert set(sizes[Source.REAL]) == set(sizes[Source.SYNTHETIC]) and len(set(sizes[Source.REAL])) == 1


def test_image_urls_are_per_reader_and_per_study(make_study, readers):
    first, second = make_study("paired", cases=4, seed=1), make_study("paired", cases=4, seed=2, allow_real_image_reuse=True)
    urls = {}  # (reader, study) -> {image id: url}
    for study in (first, second):
        for reader in readers:
            for slot in Slot.objects.filter(assignment__reader=reader, assignment__study=study):
                urls.setdefault((reader.pk, study.pk), {}).update(zip((i.pk for i in slot.images_in_display_order()), image_urls(slot)))
    shared_images = set(urls[(readers[0].pk, first.pk)]) & set(urls[(readers[0].pk, second.pk)])
    assert shared_images, "the second study reuses real images by design, so the same image appears twice"
    for image_id in shared_images:
        seen = {urls[key][image_id] for key in urls if image_id in urls[key]}
        assert len(seen) == len([key for key in urls if image_id in urls[key]])  # a distinct URL per reader and study
    # A slot's URLs are stable across page loads (its image is fetched once per reader and study).
    slot = Slot.objects.filter(assignment__reader=readers[0], assignment__study=first).first()
    assert image_urls(slot) == image_urls(slot)


def test_a_reader_cannot_fetch_another_readers_or_a_closed_studys_image(make_study, readers):
    study = make_study("paired", cases=2)
    slot = Slot.objects.filter(assignment__reader=readers[0], assignment__study=study).first()
    url = image_urls(slot)[0]
    owner, other = Client(), Client()
    owner.force_login(readers[0])
    other.force_login(readers[1])
    assert owner.get(url).status_code == 200
    assert other.get(url).status_code == 404
    assert owner.get(f"/img/{slot.case.real_image.token}").status_code == 404  # the image's own token is not a reader URL
    Study.objects.filter(pk=study.pk).update(is_open=False)
    assert owner.get(url).status_code == 404


def test_no_real_image_is_drawn_twice_across_studies_unless_allowed(make_study):
    first = make_study("paired", cases=6, seed=11, practice_case_count=2)
    second = make_study("mixed", cases=8, seed=12)
    real = lambda study: {c.real_image_id for c in study.cases.all() if c.real_image_id}  # noqa: E731
    assert real(first) and real(second) and not real(first) & real(second)
    assert sorted(real(first)) == second.excluded_real_image_ids
    # The draw is recorded: a later study on the pool does not change how the earlier ones redraw.
    from readerstudy.studies.rebuild import rebuild_differences

    assert rebuild_differences(first, check_pixels=False) == []
    assert rebuild_differences(second, check_pixels=False) == []
    from readerstudy.analysis.export import study_provenance

    assert study_provenance(second)["real_image_reuse"] == {"allowed": False, "cases_whose_real_image_other_studies_show": []}
    reusing = make_study("paired", cases=12, seed=13, allow_real_image_reuse=True)
    assert reusing.excluded_real_image_ids == []
    assert reusing.reused_real_cases()  # 12 of 24 real images: some were already shown
    provenance = study_provenance(reusing)["real_image_reuse"]
    assert provenance["allowed"] is True and provenance["cases_whose_real_image_other_studies_show"]


def test_a_study_the_unused_real_images_cannot_fill_is_refused_with_the_reason(make_study):
    from django.core.exceptions import ValidationError

    make_study("paired", cases=20, seed=21)
    with pytest.raises(ValidationError, match="not used by earlier studies"):
        make_study("paired", cases=10, seed=22)


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
    # data-prefetch names the next case's images (none after the last case); the browser test
    # in test_reading_room.py checks that prefetching does not depend on the source.
    html = re.sub(r'(data-idempotency-key|name="csrfmiddlewaretoken" value|data-answer-url|data-position|data-prefetch)="[^"]*"', r'\1=""', html)
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
