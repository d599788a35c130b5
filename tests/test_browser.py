"""A reader finishes both demo studies in Debian's Chromium; an analyst opens the report.

Screenshots land in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from readerstudy.studies.models import Answer, Study
from tests.browsing import launch, log_in, require_chromium, screenshot

require_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def demo(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("demo", "--no-serve", verbosity=0)
    for user in User.objects.all():
        user.set_password("pw-" + user.username)
        user.save()
    return {study.design: study for study in Study.objects.all()}


def wait_for_case(page, position: int, total: int) -> None:
    page.wait_for_selector(f"text=Case {position} of {total}")
    page.wait_for_selector("#reader.shown")


def canvas_has_image(page) -> bool:
    """The canvas holds a radiograph, not a blank: its pixels vary."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('canvas')).every((c) => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let min = 255, max = 0;
            for (let i = 0; i < d.length; i += 4 * 97) { min = Math.min(min, d[i]); max = Math.max(max, d[i]); }
            return max - min > 40;
        })"""
    )


def answers_of(username: str, study: Study) -> int:
    return Answer.objects.filter(slot__assignment__reader__username=username, slot__assignment__study=study).count()


def test_reader_finishes_both_demo_studies(browser, live_server, demo):
    paired, mixed = demo["paired"], demo["mixed"]
    # Blinding (issue 12a): no real image of the demo is shown in both of its studies.
    real_of = [{c.real_image_id for c in study.cases.all() if c.real_image_id} for study in (paired, mixed)]
    assert real_of[0] and real_of[1] and not real_of[0] & real_of[1]
    total = paired.case_count
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = log_in(context, live_server, "radiologist")
    screenshot(page, "home-reader")

    # Paired study with the keyboard: ← or → chooses, Enter confirms.
    page.click(f"a[href='/studies/{paired.pk}/']")
    page.click("#begin")
    for position in (1, 2):
        wait_for_case(page, position, total)
        assert canvas_has_image(page)
        if position == 1:
            screenshot(page, "reader-paired")
        page.keyboard.press("ArrowLeft" if position % 2 else "ArrowRight")
        page.keyboard.press("Enter")
    wait_for_case(page, 3, total)

    # Closing the browser and coming back resumes at the first unanswered case.
    context.close()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = log_in(context, live_server, "radiologist")
    page.goto(f"{live_server.url}/studies/{paired.pk}/read/")
    wait_for_case(page, 3, total)
    assert answers_of("radiologist", paired) == 2

    # A double-clicked submit stores the answer once.
    page.keyboard.press("ArrowLeft")
    page.dblclick("#submit")
    wait_for_case(page, 4, total)
    assert answers_of("radiologist", paired) == 3

    # The network drops as the reader answers: the page keeps the answer, says so, and retries.
    context.set_offline(True)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Connection lost")
    assert answers_of("radiologist", paired) == 3
    context.set_offline(False)
    wait_for_case(page, 5, total)
    assert answers_of("radiologist", paired) == 4
    for position in range(5, total + 1):
        wait_for_case(page, position, total)
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Study complete")
    assert answers_of("radiologist", paired) == total

    # Mixed study with the mouse: a call, a confidence, then submit.
    page.goto(f"{live_server.url}/studies/{mixed.pk}/")
    page.click("#begin")
    for position in range(1, mixed.case_count + 1):
        wait_for_case(page, position, mixed.case_count)
        assert page.is_disabled("#submit")
        page.click("label.choice:has(input[value=synthetic])")
        page.click("label.choice:has(input[name=confidence][value='4'])")
        if position == 1:
            screenshot(page, "reader-mixed")
        page.click("#submit")
    page.wait_for_selector("text=Study complete")
    assert answers_of("radiologist", mixed) == mixed.case_count
    stored = Answer.objects.filter(slot__assignment__study=mixed).first()
    assert stored.confidence == 4 and stored.reading_ms > 0
    context.close()

    # The analyst sees the report with the reader's numbers.
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = log_in(context, live_server, "analyst")
    page.goto(f"{live_server.url}/studies/{paired.pk}/report/")
    page.wait_for_selector("text=Cohen")
    screenshot(page, "analyst-report", full_page=True)
    context.close()
