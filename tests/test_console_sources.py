"""Synthetic sources in the browser: register by upload or by path, refusals in the form, duplicates flagged, sample grid."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from readerstudy.jobs.models import Job
from readerstudy.studies.models import Generator
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def folders(settings, tmp_path, tiny_checkpoint):
    settings.UPLOADED_CHECKPOINT_DIR = tmp_path / "uploaded"
    settings.CHECKPOINT_DIRS = [tiny_checkpoint.parent, settings.UPLOADED_CHECKPOINT_DIR]
    settings.STORAGES = {**settings.STORAGES, "default": {**settings.STORAGES["default"], "OPTIONS": {"location": tmp_path / "media"}}}


@pytest.fixture
def coordinator(client):
    make_user("coord", role="coordinator")
    client.login(username="coord", password="pw-coord")
    return client


def register(client, **fields):
    return client.post(reverse("console:register_source"), {"kind": "gan", **fields})


def test_upload_registers_fingerprints_and_shows_samples_beside_real_images(coordinator, tiny_checkpoint, pool, settings):
    upload = SimpleUploadedFile("tiny.safetensors", tiny_checkpoint.read_bytes())
    response = register(coordinator, name="tiny-gan", upload=upload, pool=pool.pk)
    generator = Generator.objects.get(name="tiny-gan")
    assert response.status_code == 302 and response["Location"] == reverse("console:source", args=[generator.pk])
    assert generator.resolved_path().is_relative_to(settings.UPLOADED_CHECKPOINT_DIR)
    assert generator.sha256 and generator.config["resolution"] == 32
    job = Job.objects.get(kind="generator_samples")
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert [s["seed"] for s in job.result["samples"]] == list(range(8))
    page = coordinator.get(response["Location"]).content.decode()
    assert page.count("/samples/") == 8 and page.count("/console/archive/thumbnails/") == 8
    sample = coordinator.get(reverse("console:source_sample", args=[generator.pk, job.pk, 0]))
    assert sample.status_code == 200 and sample.content.startswith(b"\x89PNG")
    assert coordinator.get(reverse("console:source_sample", args=[generator.pk, job.pk, 8])).status_code == 404


def test_by_path_inside_checkpoint_dirs_and_second_registration_flagged(coordinator, tiny_checkpoint):
    assert register(coordinator, name="first", path="tiny.safetensors").status_code == 302
    response = register(coordinator, name="second", path="tiny.safetensors")
    assert "this file is registered already, as first" in response.content.decode()
    assert not Generator.objects.filter(name="second").exists()
    response = register(coordinator, name="second", path="tiny.safetensors", register_again="on")
    assert response.status_code == 302
    listing = coordinator.get(reverse("console:sources")).content.decode()
    assert listing.count("same file as another source") == 2


def test_refusals_come_back_in_the_form_and_keep_nothing(coordinator, tmp_path, settings):
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(b"x")
    response = register(coordinator, name="outside", path=str(outside)).content.decode()
    assert "not inside a checkpoint folder" in response
    response = register(coordinator, name="broken", upload=SimpleUploadedFile("broken.safetensors", b"not a checkpoint")).content.decode()
    assert "broken.safetensors" in response and "errorlist" not in response  # our own error markup
    assert 'class="error" role="alert"' in response
    response = register(coordinator, name="pickle", upload=SimpleUploadedFile("model.pt", b"\x80\x04")).content.decode()
    assert "a trained generator is a .safetensors checkpoint" in response
    response = register(coordinator, name="missing", path="nowhere.safetensors").content.decode()
    assert "not found in" in response
    assert not Generator.objects.exists()
    assert not any(settings.UPLOADED_CHECKPOINT_DIR.rglob("*.*")) if settings.UPLOADED_CHECKPOINT_DIR.exists() else True
    assert "upload the file or give its path" in register(coordinator, name="none").content.decode()


def test_readers_cannot_register(client, tiny_checkpoint):
    make_user("reader1")
    client.login(username="reader1", password="pw-reader1")
    assert register(client, name="x", path="tiny.safetensors").status_code == 403
    assert not Generator.objects.exists()


def test_a_ct_volume_by_upload_renders_samples_at_the_pool_size(coordinator, pool, tmp_path):
    from tests.synthetic import write_phantom_ct

    volume = write_phantom_ct(tmp_path / "phantom.nii.gz")
    response = register(coordinator, name="phantom", kind="ct", upload=SimpleUploadedFile("phantom.nii.gz", volume.read_bytes()), pool=pool.pk)
    assert response.status_code == 302, response.content.decode()[-2000:]
    generator = Generator.objects.get(name="phantom")
    assert generator.kind == "ct" and generator.resolution is None
    job = Job.objects.get(kind="generator_samples")
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert len(job.result["samples"]) == 8
