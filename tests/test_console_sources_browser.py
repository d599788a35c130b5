"""The coordinator's archive, sources and readers pages in Chromium: upload with a progress bar, register the
demo generator and see its samples, invite a reader who joins by the link."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User

from readerstudy.accounts.models import Invitation
from readerstudy.archive.models import Pool
from readerstudy.jobs.models import Job
from readerstudy.studies.models import Generator
from tests.browsing import launch, log_in, require_chromium, screenshot
from tests.conftest import make_user, smooth_image, write_png16

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(live_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def coordinator_page(browser, live_server, settings, tmp_path):
    settings.UPLOAD_STAGING_DIR = tmp_path / "uploads"
    settings.UPLOADED_CHECKPOINT_DIR = tmp_path / "uploaded"
    settings.CHECKPOINT_DIRS = [django_settings.BASE_DIR / "generator" / "checkpoints", settings.UPLOADED_CHECKPOINT_DIR]
    settings.STORAGES = {**settings.STORAGES, "default": {**settings.STORAGES["default"], "OPTIONS": {"location": tmp_path / "media"}}}
    make_user("coord", role="coordinator")
    return log_in(browser.new_context(viewport={"width": 1280, "height": 900}), live_server, "coord")


def shot(page, name: str) -> None:
    screenshot(page, f"console-{name}", full_page=True)


def test_upload_a_zip_with_labels_and_watch_the_import(coordinator_page, live_server, settings, tmp_path):
    settings.JOBS_MODE = "thread"  # the real embedded default: the page polls the job's progress
    archive = tmp_path / "knees.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for i in range(12):
            bundle.write(write_png16(tmp_path / f"knee-{i:02d}.png", smooth_image(100 + i, 64)), f"knee-{i:02d}.png")
        bundle.write(tmp_path / "knee-00.png", "copy-of-knee-00.png")
        bundle.writestr("readme.txt", "not an image")
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,label\n" + "".join(f"knee-{i:02d}.png,{i % 5}\n" for i in range(1, 12)) + "copy-of-knee-00.png,2\n")
    page = coordinator_page
    page.goto(f"{live_server.url}/console/archive/")
    page.fill("#id_new_pool_name", "knees")
    page.fill("#id_presentation_size", "64")
    page.set_input_files("#id_files", str(archive))
    page.set_input_files("#id_labels", str(labels))
    shot(page, "archive-upload-form")
    page.click("button[type=submit]:has-text('Upload and import')")
    page.wait_for_url(re.compile(r"/console/archive/imports/\d+/"))
    page.wait_for_selector("text=images imported", timeout=60_000)
    shot(page, "archive-import-summary")
    summary = page.inner_text("main")
    assert "12 images imported" in summary and "12 with a label" in summary and "1 duplicate" in summary and "1 skipped" in summary
    assert re.search(r"knee-00\.png\s+copy-of-knee-00\.png", summary)  # the labelled copy kept
    page.click("text=See pool knees")
    page.wait_for_selector(".gallery img")
    assert page.locator(".gallery li").count() == 12
    page.wait_for_function("() => Array.from(document.querySelectorAll('.gallery img')).every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "archive-gallery")
    assert Pool.objects.get(name="knees").real_images().count() == 12


def test_register_the_demo_generator_refusals_and_samples(coordinator_page, live_server, pool, tmp_path, settings):
    settings.JOBS_MODE = "thread"  # the sample grid is made in the background while the page shows its progress
    page = coordinator_page
    page.goto(f"{live_server.url}/console/sources/new/")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a checkpoint at all")
    page.fill("#id_name", "broken")
    page.set_input_files("#id_upload", str(broken))
    page.click("button[type=submit]:has-text('Register')")
    page.wait_for_selector(".field.invalid .error")
    assert "broken.safetensors" in page.inner_text(".field.invalid .error")
    shot(page, "source-refused")
    page.fill("#id_name", "demo-stylegan2")
    page.set_input_files("#id_upload", [])
    page.fill("#id_path", "demo-stylegan2.safetensors")
    page.fill("#id_privacy_path", "demo-stylegan2.privacy.safetensors")
    page.select_option("#id_pool", str(pool.pk))
    page.click("button[type=submit]:has-text('Register')")
    page.wait_for_selector("text=Samples beside real images")
    if page.locator(".job-progress progress").count():
        shot(page, "source-samples-progress")
    page.wait_for_selector(".samples img", timeout=240_000)
    generator = Generator.objects.get(name="demo-stylegan2")
    assert generator.privacy_sha256 and generator.config["resolution"] == 256
    job = Job.objects.get(kind="generator_samples")
    assert job.status == Job.Status.SUCCEEDED
    shown = page.locator(".samples div:first-child img").count()
    assert shown == len(job.result["samples"]) and shown + job.result["refused"] == 8
    assert page.locator(".samples div:last-child img").count() == 8
    page.wait_for_function("() => Array.from(document.querySelectorAll('.samples img')).every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "source-samples")
    page.goto(f"{live_server.url}/console/sources/new/")
    page.fill("#id_name", "demo-again")
    page.fill("#id_path", "demo-stylegan2.safetensors")
    page.click("button[type=submit]:has-text('Register')")
    page.wait_for_selector("text=this file is registered already, as demo-stylegan2")
    shot(page, "source-duplicate-flagged")
    page.goto(f"{live_server.url}/console/sources/")
    shot(page, "sources-list")


def test_invite_a_reader_who_joins_by_the_link(coordinator_page, browser, live_server, make_study):
    study = make_study("paired", cases=4)
    study.coordinators.add(User.objects.get(username="coord"))  # readers are invited to one's own studies
    page = coordinator_page
    page.goto(f"{live_server.url}/console/readers/")
    page.fill("#id_email", "new.reader@example.org")
    page.select_option("#id_study", str(study.pk))
    page.click("button[name=invite]")
    link = page.inner_text("#invite-link")
    assert link.startswith(f"{live_server.url}/invite/")
    shot(page, "readers-invitation")
    joining = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    joining.goto(link)
    joining.fill("#id_username", "newreader")
    assert joining.input_value("#id_email") == "new.reader@example.org"
    joining.fill("#id_password1", "a-long-passphrase-42")
    joining.fill("#id_password2", "a-long-passphrase-42")
    joining.select_option("#id_specialty", "orthopaedic_resident")
    joining.fill("#id_years_experience", "2")
    shot(joining, "invitation-join-form")
    joining.click("button[type=submit]:has-text('Join')")
    joining.wait_for_url(f"{live_server.url}/")
    assert study.name in joining.inner_text("main")
    shot(joining, "invitation-joined-home")
    joining.goto(link)
    assert "used already" in joining.inner_text("main")
    shot(joining, "invitation-used")
    assert Invitation.objects.get().used_by.username == "newreader"
    page.goto(f"{live_server.url}/console/readers/")
    assert "newreader" in page.inner_text("main")
    shot(page, "readers-list")


def test_password_reset_pages(browser, live_server):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{live_server.url}/login/")
    page.click("text=Forgot your password?")
    page.fill("#id_email", "someone@example.org")
    shot(page, "password-reset-form")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your e-mail")
