"""The analyst's report in Debian's Chromium: an unfinished reader is named, the headline uses the stated rule.

Screenshots land in test-artifacts/ (and in $REPORT_SHOTS when set) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from readerstudy.accounts.models import Role
from readerstudy.studies.models import Slot
from tests.browsing import ARTIFACTS, launch, log_in, require_chromium, screenshot
from tests.conftest import make_user
from tests.test_analysis_pages import read_everything

require_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def _shot(page, name: str, full_page: bool = True) -> None:
    screenshot(page, name, full_page=full_page)
    extra = os.getenv("REPORT_SHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / f"{name}.png", Path(extra) / f"{name}.png")


def test_incomplete_reader_is_named_and_left_out_of_the_headline(browser, live_server, make_study, readers):
    study = make_study("mixed", cases=10)
    read_everything(study, readers)
    late = make_user("late_reader", specialty="other")
    study.assign(late)
    from django.test import Client
    import json
    import uuid

    client = Client()
    client.force_login(late)
    for slot in Slot.objects.filter(assignment__reader=late, assignment__study=study).order_by("position")[:3]:
        client.get(f"/studies/{study.pk}/read/")
        body = {"idempotency_key": str(uuid.uuid4()), "answer": "real", "reading_ms": 1200, "confidence": 3}
        assert client.post(f"/studies/{study.pk}/answer/{slot.position}/", json.dumps(body),
                           content_type="application/json").status_code == 200
    make_user("ana", role=Role.ANALYST)

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page = log_in(context, live_server, "ana")
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/studies/{study.pk}/report/")

    panel = page.locator(".report-completeness")
    row = panel.locator("tr.reader-incomplete")
    assert row.count() == 1
    assert "late_reader" in row.inner_text() and "incomplete" in row.inner_text()
    assert "3" in row.locator("td").nth(1).inner_text() and "10" in row.locator("td").nth(2).inner_text()
    assert "Interim report" in page.locator(".report-interim-banner").inner_text()
    headline = page.locator(".report-headline")
    text = headline.inner_text()
    assert "2 readers × 10 cases" in text and "readers who completed the scored block" in text
    # The first figure table on the page is the headline's, not the pooled answers'.
    assert page.locator("h3").nth(1).inner_text().startswith("Headline")
    assert page.locator(".report-figure-downloads").count() >= 1  # report.js ran under the page's policy
    assert "INTERIM" in page.locator("figure.report-figure svg").first.inner_html()
    panel.scroll_into_view_if_needed()
    _shot(page, "report-completeness-top", full_page=False)
    _shot(page, "report-full")

    page.goto(f"{live_server.url}/studies/{study.pk}/report/?rule=all")
    headline = page.locator(".report-headline").inner_text()
    assert "not estimable" in headline and "late_reader" in headline
    _shot(page, "report-rule-all", full_page=False)

    page.emulate_media(media="print")
    page.goto(f"{live_server.url}/studies/{study.pk}/report/")
    assert page.locator(".report-figure-downloads").first.is_hidden()
    _shot(page, "report-print", full_page=False)
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    context.close()
