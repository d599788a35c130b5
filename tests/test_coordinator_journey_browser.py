"""Issue 10's acceptance as one coordinator's journey in Debian's Chromium.

A user with only the coordinator role (no staff, no superuser) uploads a zip of radiographs with
their labels, registers the demo generator and sees its sample grid, builds a pelvis-style paired
study and a knee-style grade-then-reveal study through the builder, prepares both, previews both as
a reader (nothing is stored), invites two readers by link (each joins in a browser of their own),
opens both studies, watches the readers' progress move on the monitoring tables as they answer,
clones one study, and closes the other while a reader is mid-case: the reader is told in words
that the study was closed and nothing is retried.

Jobs run inline (tests/conftest.py's ``inline_jobs``): the request that starts a job returns when
the job has ended, so the journey needs no job thread. Watching a preparation's progress bar move
in a job thread is tests/test_console_browser.py's part.

Every page the coordinator visits is screenshotted, full page, into /tmp/shots_journey/ (and
test-artifacts/journey-*.png) to be looked at.
"""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User

from readerstudy.accounts.models import Invitation
from readerstudy.archive.models import Pool
from readerstudy.jobs.models import Job
from readerstudy.studies.lifecycle import State
from readerstudy.studies.models import Answer, Assignment, Generator, Slot, Study
from tests.browsing import launch, log_in, require_chromium, screenshot
from tests.conftest import make_user, smooth_image, write_png16

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots_journey")
IMAGES = 16
SIZE = 64
PELVIS_CASES = 4
KNEE_CASES = 4


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    screenshot(page, f"journey-{name}", full_page=True)


def monitoring(page, username: str) -> str:
    """The reader's 'done / total' on a study page's monitoring table, read afresh."""
    page.reload()
    return page.locator("table.monitoring tr", has_text=username).locator("td.num").first.inner_text()


def stored() -> tuple[int, int, int]:
    return Assignment.objects.count(), Slot.objects.count(), Answer.objects.count()


def wait_for_case(page, text: str) -> None:
    page.wait_for_selector(f".progress-text:text-is('{text}')")
    page.wait_for_selector("#reader.shown")


@pytest.fixture
def coordinator_settings(settings, tmp_path):
    settings.UPLOAD_STAGING_DIR = tmp_path / "uploads"
    settings.UPLOADED_CHECKPOINT_DIR = tmp_path / "uploaded"
    settings.CHECKPOINT_DIRS = [django_settings.BASE_DIR / "generator" / "checkpoints", settings.UPLOADED_CHECKPOINT_DIR]
    settings.STORAGES = {**settings.STORAGES, "default": {**settings.STORAGES["default"], "OPTIONS": {"location": tmp_path / "media"}}}
    return settings


@pytest.fixture
def radiographs_zip(tmp_path) -> tuple[Path, Path]:
    """A zip of 16-bit PNG radiographs made here, and a CSV of their Kellgren–Lawrence grades."""
    archive = tmp_path / "knees.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for i in range(IMAGES):
            bundle.write(write_png16(tmp_path / f"knee-{i:02d}.png", smooth_image(500 + i, SIZE)), f"knee-{i:02d}.png")
    labels = tmp_path / "grades.csv"
    labels.write_text("filename,label\n" + "".join(f"knee-{i:02d}.png,{i % 5}\n" for i in range(IMAGES)))
    return archive, labels


def test_coordinator_journey(live_server, coordinator_settings, radiographs_zip):
    from playwright.sync_api import sync_playwright

    coordinator_user = make_user("coord", role="coordinator", specialty="other", years=0)
    assert not coordinator_user.is_staff and not coordinator_user.is_superuser
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = log_in(browser.new_context(viewport={"width": 1280, "height": 900}), live_server, "coord")
        page.click("text=Coordinator console")
        page.wait_for_selector("h1:has-text('Coordinator console')")
        assert "You coordinate no study yet" in page.inner_text("main")
        shot(page, "01-dashboard-empty")

        # The archive: a zip of radiographs and their grades becomes a pool.
        page.click("nav.console-nav >> text=Archive")
        page.wait_for_selector("h1:has-text('Archive')")
        shot(page, "02-archive-empty")
        archive, labels = radiographs_zip
        page.fill("#id_new_pool_name", "knees")
        page.fill("#id_presentation_size", str(SIZE))
        page.set_input_files("#id_files", str(archive))
        page.set_input_files("#id_labels", str(labels))
        page.click("button[type=submit]:has-text('Upload and import')")
        page.wait_for_url(re.compile(r"/console/archive/imports/\d+/"))
        page.wait_for_selector("text=images imported")
        summary = page.inner_text("main")
        assert f"{IMAGES} images imported" in summary and f"{IMAGES} with a label" in summary, summary
        shot(page, "03-import-summary")
        page.click("text=See pool knees")
        page.wait_for_selector(".gallery img")
        assert page.locator(".gallery li").count() == IMAGES
        page.wait_for_function("() => Array.from(document.querySelectorAll('.gallery img')).every(i => i.complete && i.naturalWidth > 0)")
        shot(page, "04-gallery")
        pool = Pool.objects.get(name="knees")
        assert pool.real_images().count() == IMAGES

        # The demo generator, registered by its path with its privacy screen, and its samples beside the pool.
        page.click("nav.console-nav >> text=Synthetic sources")
        shot(page, "05-sources-empty")
        page.goto(f"{live_server.url}/console/sources/new/")
        page.fill("#id_name", "demo-stylegan2")
        page.fill("#id_path", "demo-stylegan2.safetensors")
        page.fill("#id_privacy_path", "demo-stylegan2.privacy.safetensors")
        page.select_option("#id_pool", str(pool.pk))
        shot(page, "06-register-source")
        page.click("button[type=submit]:has-text('Register')")
        page.wait_for_selector(".samples img")
        job = Job.objects.get(kind="generator_samples")
        assert job.status == Job.Status.SUCCEEDED
        assert page.locator(".samples div:first-child img").count() == len(job.result["samples"]) > 0
        assert page.locator(".samples div:last-child img").count() == 8
        page.wait_for_function("() => Array.from(document.querySelectorAll('.samples img')).every(i => i.complete && i.naturalWidth > 0)")
        shot(page, "07-source-samples")
        generator = Generator.objects.get(name="demo-stylegan2")
        assert generator.privacy_sha256

        # The pelvis-style paired study, through the builder.
        page.goto(f"{live_server.url}/console/")
        page.click("text=New paired study")
        page.wait_for_selector("text=which is synthetic")
        page.fill("#id_name", "Pelvis fidelity")
        page.select_option("#id_pool", str(pool.pk))
        page.get_by_label("demo-stylegan2", exact=True).check()
        page.fill("#id_case_count", str(PELVIS_CASES))
        page.fill("#id_blank_ms", "0")
        shot(page, "08-builder-paired")
        page.click("button:has-text('Save')")
        page.wait_for_selector("h1:has-text('Pelvis fidelity')")
        pelvis = Study.objects.get(name="Pelvis fidelity")
        assert pelvis.design == "paired" and pelvis.state == State.DRAFT and pelvis.owner == coordinator_user
        assert [g.name for g in pelvis.generators.all()] == ["demo-stylegan2"]
        assert page.locator("text=Open for reading").count() == 0  # only a prepared study offers opening
        shot(page, "09-pelvis-draft")
        # Opening it anyway (the form's request, sent by hand) is refused, with the reason on the study page.
        token = page.input_value("form input[name=csrfmiddlewaretoken]")
        refused = page.request.post(f"{live_server.url}/console/studies/{pelvis.pk}/open/", form={"csrfmiddlewaretoken": token},
                                    max_redirects=0)
        assert refused.status == 302 and refused.headers["location"] == f"/console/studies/{pelvis.pk}/"
        page.reload()
        assert "the study has no cases yet: prepare it first" in page.inner_text(".messages")
        pelvis.refresh_from_db()
        assert pelvis.state == State.DRAFT and not pelvis.is_open
        shot(page, "09b-pelvis-open-refused")

        # The knee-style grade-then-reveal study, with its grading question.
        page.goto(f"{live_server.url}/console/")
        page.click("text=New grade-then-reveal study")
        page.wait_for_selector("legend:has-text('Further questions')")
        assert page.locator("#id_practice_case_count").count() == 0 and page.locator("#id_repeat_count").count() == 0
        page.fill("#id_name", "Knee grading")
        page.select_option("#id_pool", str(pool.pk))
        page.get_by_label("demo-stylegan2", exact=True).check()
        page.fill("#id_case_count", str(KNEE_CASES))
        page.fill("#id_synthetic_fraction", "0.5")
        page.fill("#id_instructions", "Grade each knee radiograph for osteoarthritis.")
        page.fill("#id_reveal_instructions", "Some of the images you graded were made by a computer program.")
        page.fill("#id_blank_ms", "0")
        page.fill("#id_questions-0-key", "kl_grade")
        page.fill("#id_questions-0-label", "Kellgren–Lawrence grade")
        page.fill("#id_questions-0-choices", "0,1,2,3,4")
        page.check("#id_questions-0-truth_from_label")
        shot(page, "10-builder-grade-reveal")
        page.click("button:has-text('Save')")
        page.wait_for_selector("h1:has-text('Knee grading')")
        knee = Study.objects.get(name="Knee grading")
        assert knee.design == "grade_reveal" and knee.synthetic_fraction == 0.5
        assert list(knee.questions.values_list("key", "choices", "truth_from_label")) == [("kl_grade", "0,1,2,3,4", True)]
        shot(page, "11-knee-draft")

        # Preparation (inline: the request returns when it is done), then the study page says ready.
        for study, cases in ((pelvis, PELVIS_CASES), (knee, KNEE_CASES)):
            page.goto(f"{live_server.url}/console/studies/{study.pk}/")
            page.click("button:has-text('Prepare')")
            page.wait_for_selector(".state-ready")
            assert f"{study.name} is prepared" in page.inner_text(".messages")
            study.refresh_from_db()
            assert study.state == State.READY and study.cases.count() == cases and study.is_ready()
        assert "2 of 2 made" in page.inner_text("dl.summary")  # the knee study: half its 4 cases synthetic
        shot(page, "12-knee-ready")

        # Preview both as a reader: every answer is checked, nothing is stored.
        before = stored()
        page.goto(f"{live_server.url}/console/studies/{pelvis.pk}/")
        page.click("text=Preview as a reader")
        wait_for_case(page, f"Case 1 of {PELVIS_CASES}")
        assert page.is_visible("text=Preview as a reader: nothing is stored")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Enter")
        page.wait_for_selector("#feedback:not([hidden])")
        assert "Preview, nothing stored" in page.inner_text("#feedback")
        # At 1280 px the whole toolbar is in view, its last tool too (it was cut off).
        assert page.evaluate("""() => document.querySelector('[data-viewer-action=help]').getBoundingClientRect().right
                                      <= document.querySelector('.viewer-bar').getBoundingClientRect().right""")
        shot(page, "13-preview-paired")
        page.keyboard.press("Enter")
        wait_for_case(page, f"Case 2 of {PELVIS_CASES}")
        page.goto(f"{live_server.url}/console/studies/{knee.pk}/")
        page.click("text=Preview as a reader")
        wait_for_case(page, f"Case 1 of {KNEE_CASES}")
        assert "synthetic" not in page.inner_text("#reader").lower()  # grading says nothing of synthetic images
        for key in ("g", "3", "Enter"):
            page.keyboard.press(key)
        page.wait_for_selector("#feedback:not([hidden])")
        assert "kl_grade = 3" in page.inner_text("#feedback")
        shot(page, "14-preview-grade-reveal")
        assert stored() == before

        # Two readers invited by link; they join in browsers of their own.
        page.goto(f"{live_server.url}/console/readers/")
        shot(page, "15-readers-empty")
        page.fill("#id_name", "knee-panel")
        page.click("button[name=create_group]")
        page.wait_for_selector("td:has-text('knee-panel')")
        readers = {}
        for username, specialty, years in (("ana", "radiologist", 11), ("ben", "orthopaedic_surgeon", 6)):
            page.fill("#id_email", f"{username}@example.org")
            page.select_option("#id_study", str(pelvis.pk))
            page.select_option("#id_group", label="knee-panel")
            page.click("button[name=invite]")
            link = page.inner_text("#invite-link")
            assert link.startswith(f"{live_server.url}/invite/")
            shot(page, f"16-invitation-{username}")
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            joining = context.new_page()
            joining.goto(link)
            joining.fill("#id_username", username)
            assert joining.input_value("#id_email") == f"{username}@example.org"
            joining.fill("#id_password1", f"{username}-long-passphrase-42")
            joining.fill("#id_password2", f"{username}-long-passphrase-42")
            joining.select_option("#id_specialty", specialty)
            joining.fill("#id_years_experience", str(years))
            joining.click("button[type=submit]:has-text('Join')")
            joining.wait_for_url(f"{live_server.url}/")
            assert "You have no open studies" in joining.inner_text("main")  # assigned, but nothing is open yet
            readers[username] = joining
        assert sorted(Invitation.objects.values_list("used_by__username", flat=True)) == ["ana", "ben"]
        assert sorted(pelvis.assignments.values_list("reader__username", flat=True)) == ["ana", "ben"]
        assert sorted(User.objects.filter(reader_groups__name="knee-panel").values_list("username", flat=True)) == ["ana", "ben"]
        page.goto(f"{live_server.url}/console/readers/")
        page.select_option("#assign_group", label="knee-panel")
        page.select_option("#assign_study", str(knee.pk))
        page.click("button[name=assign_group]")
        page.wait_for_selector("text=2 readers of knee-panel assigned to Knee grading.")
        people = page.inner_text("main")
        assert "ana" in people and "Radiologist" in people and "ben" in people
        shot(page, "17-readers-joined")
        assert sorted(knee.assignments.values_list("reader__username", flat=True)) == ["ana", "ben"]

        # Open both; the protocol freezes and its hash is shown.
        for study in (pelvis, knee):
            page.goto(f"{live_server.url}/console/studies/{study.pk}/")
            page.click("button:has-text('Open for reading')")
            page.wait_for_selector(".state-open")
            study.refresh_from_db()
            assert study.state == State.OPEN and study.protocol_hash in page.inner_text("dl.summary")
        shot(page, "18-knee-open")

        # The readers answer; the coordinator's monitoring moves with them.
        ana, ben = readers["ana"], readers["ben"]
        ana.reload()
        ana.click("tr:has-text('Pelvis fidelity') >> text=Start")
        ana.click("#begin")
        for number in (1, 2):
            wait_for_case(ana, f"Case {number} of {PELVIS_CASES}")
            ana.keyboard.press("ArrowLeft" if number == 1 else "ArrowRight")
            ana.keyboard.press("Enter")
        wait_for_case(ana, f"Case 3 of {PELVIS_CASES}")
        page.goto(f"{live_server.url}/console/studies/{pelvis.pk}/")
        assert monitoring(page, "ana") == f"2 / {PELVIS_CASES}" and monitoring(page, "ben") == f"0 / {PELVIS_CASES}"
        ben.goto(f"{live_server.url}/studies/{pelvis.pk}/")
        ben.click("#begin")
        wait_for_case(ben, f"Case 1 of {PELVIS_CASES}")
        ben.keyboard.press("ArrowRight")
        ben.keyboard.press("Enter")
        wait_for_case(ben, f"Case 2 of {PELVIS_CASES}")  # ben stays on this case, mid-case, until the study closes
        assert monitoring(page, "ben") == f"1 / {PELVIS_CASES}" and monitoring(page, "ana") == f"2 / {PELVIS_CASES}"
        shot(page, "19-pelvis-monitoring")

        ana.goto(f"{live_server.url}/studies/{knee.pk}/")
        ana.click("#begin")
        for number in (1, 2, 3):
            wait_for_case(ana, f"Case {number} of {KNEE_CASES}")
            assert ana.get_attribute("#reader", "data-design") == "grade"
            for key in ("g", str(number), "Enter"):
                ana.keyboard.press(key)
        wait_for_case(ana, f"Case 4 of {KNEE_CASES}")
        page.goto(f"{live_server.url}/console/studies/{knee.pk}/")
        assert monitoring(page, "ana") == f"3 / {2 * KNEE_CASES}" and monitoring(page, "ben") == f"0 / {2 * KNEE_CASES}"
        ana.keyboard.press("g")
        ana.keyboard.press("0")
        ana.keyboard.press("Enter")
        ana.wait_for_selector("text=Some of the images you have just graded were synthetic")
        assert monitoring(page, "ana") == f"4 / {2 * KNEE_CASES}"
        ana.click("#continue")
        wait_for_case(ana, f"Case 1 of {KNEE_CASES}")
        ana.keyboard.press("s")
        ana.keyboard.press("4")
        ana.keyboard.press("Enter")
        wait_for_case(ana, f"Case 2 of {KNEE_CASES}")
        assert monitoring(page, "ana") == f"5 / {2 * KNEE_CASES}"
        shot(page, "20-knee-monitoring")
        graded = Answer.objects.filter(slot__assignment__study=knee, question="kl_grade")
        judged = Answer.objects.filter(slot__assignment__study=knee, question="real_or_synthetic")
        assert graded.count() == KNEE_CASES and judged.count() == 1  # both readings of the first image judged

        # The report of the knee study so far: it loads for its coordinator.
        page.click("text=Report")
        page.wait_for_selector("h1")
        assert "Traceback" not in page.content()
        shot(page, "21-knee-report")

        # A frozen field is refused in the builder: shown disabled, with the reason.
        page.goto(f"{live_server.url}/console/studies/{knee.pk}/")
        page.click("text=Readers and coordinators")
        page.wait_for_selector("text=The protocol was frozen")
        assert page.is_disabled("#id_case_count") and page.is_disabled("#id_synthetic_fraction")
        shot(page, "22-knee-edit-frozen")

        # Clone the knee study: a new draft with a new seed, the same question and readers.
        page.goto(f"{live_server.url}/console/studies/{knee.pk}/")
        page.click("text=Clone…")
        page.wait_for_selector("h1:has-text('Clone Knee grading')")
        shot(page, "23-clone")
        page.fill("#id_name", "Knee grading, second panel")
        page.click("button:has-text('Clone')")
        page.wait_for_selector("h1:has-text('Knee grading, second panel')")
        copy = Study.objects.get(name="Knee grading, second panel")
        assert copy.state == State.DRAFT and copy.design == "grade_reveal" and copy.seed != knee.seed
        assert list(copy.questions.values_list("key", flat=True)) == ["kl_grade"] and copy.assignments.count() == 2
        shot(page, "24-clone-draft")

        # Close the pelvis study while ben is mid-case: he is told so, in words, once.
        page.goto(f"{live_server.url}/console/studies/{pelvis.pk}/")
        page.click("text=Close…")
        page.wait_for_selector("text=2 readers have not finished")
        shot(page, "25-close-confirm")
        page.click("button:has-text('Close the study')")
        page.wait_for_selector(".state-closed")
        audit = page.inner_text("table.audit")
        for entry in ("created", "reader added", "Open for reading", "Closed", "Ready to open"):
            assert entry in audit, entry
        shot(page, "26-pelvis-closed")
        answered = Answer.objects.filter(slot__assignment__study=pelvis).count()
        posts = []
        ben.on("request", lambda r: posts.append(r.url) if "/answer/" in r.url else None)
        ben.keyboard.press("ArrowLeft")
        ben.keyboard.press("Enter")
        ben.wait_for_selector("#ending:not([hidden])")
        assert "closed by its coordinator" in ben.inner_text("#ending")
        time.sleep(2.5)  # a retry would come after 1 s
        assert len(posts) == 1 and "Connection lost" not in ben.inner_text("#status")
        assert Answer.objects.filter(slot__assignment__study=pelvis).count() == answered == 3

        page.goto(f"{live_server.url}/console/")
        dashboard = page.inner_text("main")
        assert all(name in dashboard for name in ("Pelvis fidelity", "Knee grading", "Knee grading, second panel"))
        shot(page, "27-dashboard")
        page.click("nav.console-nav >> text=Synthetic sources")
        shot(page, "28-sources")
        page.click("nav.console-nav >> text=Archive")
        shot(page, "29-archive")
        browser.close()
