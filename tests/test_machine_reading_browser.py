"""The analyst sees the machine reader beside the human readers, in Debian's Chromium."""

from __future__ import annotations

import pytest

from readerstudy.accounts.models import Role
from readerstudy.analysis.machine_reader import compute_machine_reading, machine_summary
from tests.browsing import launch, log_in, require_chromium, screenshot
from tests.conftest import make_user
from tests.test_analysis_pages import read_everything

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("one_torch_thread")]


def test_report_page_shows_the_machine_reader(make_study, readers, live_server):
    from playwright.sync_api import sync_playwright

    study = make_study("paired", cases=10)
    read_everything(study, readers)
    compute_machine_reading(study, steps=20)
    summary = machine_summary(study)
    make_user("ana", role=Role.ANALYST)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = log_in(context, live_server, "ana")
        page.goto(f"{live_server.url}/studies/{study.pk}/report/")
        section = page.locator("section.machine-reader")
        section.wait_for()
        text = section.inner_text()
        assert "Human readers, pooled" in text and "Machine reader" in text
        assert f"{summary['auc']:.4f}" in text and summary["driver_description"] in text
        assert section.bounding_box()["y"] < page.locator("text=Cohen").first.bounding_box()["y"]  # before the detail
        screenshot(page, "analyst-report-machine-reader", full_page=True)
        browser.close()
