"""The coordinator console in Chromium, by keyboard where it matters: a coordinator-only user
builds a paired study, prepares it (the progress bar moves), opens it, watches a reader's
progress, clones it, and closes it with the reader mid-case (the answer is refused in words,
not retried). Every console page is screenshotted into /tmp/shots10a/ to be looked at."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from readerstudy.studies import jobs as study_jobs
from readerstudy.studies.generation import generate_pending
from readerstudy.studies.lifecycle import State
from readerstudy.studies.models import Answer, Study
from tests.browsing import launch, log_in, require_chromium, screenshot
from tests.conftest import make_user

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots10a")


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    screenshot(page, f"console-{name}", full_page=True)


def press_tab_to(page, text: str, limit: int = 80) -> None:
    """Tab through the page until the focused element says ``text``: it is reachable by keyboard."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.textContent.trim()") == text:
            return
    raise AssertionError(f"{text!r} cannot be reached with the Tab key")


@pytest.fixture
def slow_preparation(monkeypatch):
    """Two images per batch and a pause after each, so the page can watch the bar move."""

    def slowly(study, batch_size=16, on_batch=None, **kwargs):  # share/backwards: as the jobs engine passes them
        def paced():
            on_batch()
            time.sleep(0.8)

        return generate_pending(study, batch_size=2, on_batch=paced, **kwargs)

    monkeypatch.setattr(study_jobs, "generate_pending", slowly)


def test_coordinator_builds_prepares_opens_monitors_clones_and_closes(
    live_server, settings, pool, checkpoint, readers, slow_preparation
):
    from playwright.sync_api import sync_playwright

    # On SQLite too: tests/conftest.py makes the test database a file with WAL and a busy timeout, so the
    # job's thread and the live server's threads take turns writing (in memory they were refused at once).
    settings.JOBS_MODE = "thread"  # as on the embedded default: the request returns, the job runs on
    make_user("coord", role="coordinator")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        coordinator = log_in(browser.new_context(viewport={"width": 1280, "height": 900}), live_server, "coord")
        coordinator.click("text=Coordinator console")
        coordinator.wait_for_selector("h1:has-text('Coordinator console')")
        shot(coordinator, "01-dashboard-empty")

        coordinator.click("text=New mixed study")
        coordinator.wait_for_selector("legend:has-text('Further questions')")
        assert coordinator.locator("#id_synthetic_fraction").count() == 1
        shot(coordinator, "01b-builder-mixed")
        coordinator.go_back()
        press_tab_to(coordinator, "New paired study")
        coordinator.keyboard.press("Enter")
        coordinator.wait_for_selector("text=which is synthetic")
        assert coordinator.locator("#id_synthetic_fraction").count() == 0
        coordinator.fill("#id_name", "Pelvis fidelity")
        coordinator.select_option("#id_pool", str(pool.pk))
        coordinator.get_by_label("tiny", exact=True).check()
        coordinator.fill("#id_case_count", "40")
        coordinator.get_by_label("rad", exact=True).check()
        coordinator.click("button:has-text('Save')")
        coordinator.wait_for_selector("text=these cases need 40 real images but pool tiny has 24")
        shot(coordinator, "02-builder-refused-case-count")
        coordinator.fill("#id_case_count", "8")
        coordinator.fill("#id_blank_ms", "0")
        coordinator.click("button:has-text('Save')")
        coordinator.wait_for_selector("h1:has-text('Pelvis fidelity')")
        study = Study.objects.get(name="Pelvis fidelity")
        shot(coordinator, "03-study-draft")

        progress = []
        coordinator.on("response", lambda r: progress.append(r.json()) if r.url.endswith("/progress.json") else None)
        press_tab_to(coordinator, "Prepare")
        coordinator.keyboard.press("Enter")
        coordinator.wait_for_selector("#prep-bar")
        coordinator.wait_for_function("() => document.getElementById('prep-bar').value > 0")
        shot(coordinator, "04-study-preparing")
        coordinator.wait_for_selector(".state-ready", timeout=60_000)
        done = [p["done"] for p in progress if p.get("state") == "preparing" and "done" in p]
        assert any(0 < d < 8 for d in done), progress  # seen part-way
        assert done == sorted(done)
        assert "8 of 8 made" in coordinator.inner_text("dl.summary")
        shot(coordinator, "05-study-ready")

        press_tab_to(coordinator, "Open for reading")
        coordinator.keyboard.press("Enter")
        coordinator.wait_for_selector(".state-open")
        study.refresh_from_db()
        assert study.is_open and study.protocol_hash in coordinator.inner_text("dl.summary")

        reader = log_in(browser.new_context(viewport={"width": 1280, "height": 800}), live_server, "rad")
        reader.goto(f"{live_server.url}/studies/{study.pk}/read/")
        reader.wait_for_selector("#reader.shown")
        reader.keyboard.press("ArrowLeft")
        reader.keyboard.press("Enter")
        reader.wait_for_selector("text=Case 2 of 8")
        reader.wait_for_selector("#reader.shown")

        coordinator.reload()
        row = coordinator.locator("table.monitoring tr", has_text="rad")
        assert "1 / 8" in row.inner_text()
        shot(coordinator, "06-study-open-monitoring")

        coordinator.click("text=Readers and coordinators")
        coordinator.wait_for_selector("text=The protocol was frozen")
        assert coordinator.is_disabled("#id_equivalence_margin") and coordinator.is_enabled("#id_readers_0")
        shot(coordinator, "07-edit-frozen")
        coordinator.goto(f"{live_server.url}/console/studies/{study.pk}/")

        coordinator.click("text=Clone…")
        coordinator.wait_for_selector("h1:has-text('Clone Pelvis fidelity')")
        shot(coordinator, "08-clone")
        coordinator.fill("#id_name", "Pelvis fidelity, second run")
        coordinator.click("button:has-text('Clone')")
        coordinator.wait_for_selector("h1:has-text('Pelvis fidelity, second run')")
        copy = Study.objects.get(name="Pelvis fidelity, second run")
        assert copy.state == State.DRAFT and copy.seed != study.seed and copy.case_count == 8
        shot(coordinator, "09-clone-draft")

        coordinator.goto(f"{live_server.url}/console/studies/{study.pk}/exclude/?reader={readers[0].pk}")
        shot(coordinator, "10-exclude")
        coordinator.goto(f"{live_server.url}/console/studies/{study.pk}/")
        coordinator.click("text=Close…")
        coordinator.wait_for_selector("text=1 reader has not finished")
        shot(coordinator, "11-close-confirm")
        press_tab_to(coordinator, "Close the study")
        coordinator.keyboard.press("Enter")
        coordinator.wait_for_selector(".state-closed")
        shot(coordinator, "12-study-closed")

        posts = []
        reader.on("request", lambda r: posts.append(r.url) if "/answer/" in r.url else None)
        reader.keyboard.press("ArrowRight")
        reader.keyboard.press("Enter")
        reader.wait_for_selector("text=closed by its coordinator")
        time.sleep(2.5)  # a retry would come after 1 s
        assert len(posts) == 1
        assert "Connection lost" not in reader.inner_text("#status")
        assert Answer.objects.filter(slot__assignment__study=study).count() == 1

        coordinator.goto(f"{live_server.url}/console/")
        shot(coordinator, "13-dashboard")
        browser.close()
