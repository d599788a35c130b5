"""Archive in the browser: upload a zip or files into a pool through an import job, see the summary and the gallery."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from readerstudy.archive.models import Image, Pool
from readerstudy.jobs.models import Job
from tests.conftest import TINY_SIZE, make_user, smooth_image, write_png16

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def staging(settings, tmp_path):
    settings.UPLOAD_STAGING_DIR = tmp_path / "uploads"
    return settings.UPLOAD_STAGING_DIR


@pytest.fixture
def coordinator(client):
    make_user("coord", role="coordinator")
    client.login(username="coord", password="pw-coord")
    return client


def png(seed: int, tmp_path) -> bytes:
    return write_png16(tmp_path / f"{seed}.png", smooth_image(seed)).read_bytes()


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(client, files, **fields):
    data = {"new_pool_name": "knees", "presentation_size": TINY_SIZE, "bit_depth": 16, **fields, "files": files}
    return client.post(reverse("console:archive"), data)


def test_zip_upload_with_labels_reports_per_file_reasons_and_prefers_the_labelled_duplicate(coordinator, tmp_path, staging):
    same = png(1, tmp_path)
    archive = zip_of({"a.png": same, "b.png": png(2, tmp_path), "c.png": same, "empty.png": b"", "notes.txt": b"hello"})
    labels = SimpleUploadedFile("labels.csv", b"filename,label\nc.png,3\nb.png,1\nmissing.png,2\n")
    response = upload(coordinator, [SimpleUploadedFile("scan.zip", archive)], labels=labels)
    job = Job.objects.get(kind="import_upload")
    assert response.status_code == 302 and response["Location"] == reverse("console:import_job", args=[job.pk])
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert (job.done, job.total) == (5, 5)
    pool = Pool.objects.get(name="knees")
    kept = {image.origin["filename"]: image.origin.get("label") for image in pool.real_images()}
    assert kept == {"b.png": "1", "c.png": "3"}  # c (labelled) kept over a (same pixels, no label)
    result = job.result
    assert (result["imported"], result["labelled"]) == (2, 2)
    assert result["duplicates"] == [{"file": "a.png", "kept": "c.png"}]
    reasons = {row["file"]: row["reason"] for row in result["skipped"]}
    assert set(reasons) == {"empty.png", "notes.txt"} and all(reasons.values())
    assert result["unmatched_labels"] == ["missing.png"]
    assert not any(staging.iterdir())  # staged upload removed

    page = coordinator.get(reverse("console:import_job", args=[job.pk])).content.decode()
    assert "2</strong> images imported" in page and "<strong>2</strong> with a label" in page
    assert "a.png</td><td>c.png" in page and "missing.png" in page


def test_a_set_of_files_into_an_existing_pool_and_the_gallery(coordinator, tmp_path):
    pool = Pool.objects.create(name="hips", presentation_size=TINY_SIZE, bit_depth=16)
    files = [SimpleUploadedFile(f"hip-{i}.png", png(10 + i, tmp_path)) for i in range(3)]
    upload(coordinator, files, pool=pool.pk, new_pool_name="")
    assert pool.real_images().count() == 3
    page = coordinator.get(reverse("console:gallery", args=[pool.pk])).content.decode()
    image = pool.real_images().first()
    assert "3 real images" in page and image.origin["filename"] in page
    thumb = coordinator.get(reverse("console:thumbnail", args=[image.token]))
    assert thumb.status_code == 200 and thumb.content.startswith(b"\x89PNG")


def test_a_failing_import_adds_nothing_and_says_why(coordinator, tmp_path, monkeypatch, image_store):
    from readerstudy.archive import importing

    real_build = importing.Image.build
    calls = []

    def build_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_build(*args, **kwargs)

    monkeypatch.setattr(importing.Image, "build", build_then_fail)
    upload(coordinator, [SimpleUploadedFile(f"x{i}.png", png(20 + i, tmp_path)) for i in range(3)])
    job = Job.objects.get(kind="import_upload")
    assert job.status == Job.Status.FAILED and "disk full" in job.message
    assert not Image.objects.exists() and not Pool.objects.filter(name="knees").exists()
    assert not list(image_store.glob("*.png")) if image_store.exists() else True
    page = coordinator.get(reverse("console:import_job", args=[job.pk])).content.decode()
    assert "failed and added nothing" in page


def test_form_refuses_ambiguous_uploads_and_keeps_nothing(coordinator, tmp_path, staging):
    Pool.objects.create(name="knees", presentation_size=TINY_SIZE)
    response = upload(coordinator, [SimpleUploadedFile("a.png", png(1, tmp_path))])
    assert "exists already" in response.content.decode()
    response = upload(coordinator, [SimpleUploadedFile("a.zip", zip_of({})), SimpleUploadedFile("b.png", png(2, tmp_path))], new_pool_name="new")
    assert "one zip file on its own" in response.content.decode()
    assert not Job.objects.exists() and not staging.exists()


def test_nothing_importable_leaves_no_new_pool(coordinator):
    upload(coordinator, [SimpleUploadedFile("broken.png", b"\x89PNG not really")])
    job = Job.objects.get()
    assert job.status == Job.Status.SUCCEEDED and job.result["pool_kept"] is False
    assert not Pool.objects.filter(name="knees").exists()


def test_progress_json_and_coordinator_only(client, coordinator):
    job = Job.objects.create(kind="import_upload", done=3, total=4)
    progress = coordinator.get(reverse("console:job_progress", args=[job.pk])).json()
    assert progress == {"status": "queued", "done": 3, "total": 4, "percent": 75, "message": "", "active": True}
    make_user("reader1")
    client.login(username="reader1", password="pw-reader1")
    for url in (reverse("console:archive"), reverse("console:job_progress", args=[job.pk])):
        assert client.get(url).status_code == 403
