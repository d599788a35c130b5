"""The reading workflow in Chromium: practice feedback, the break screen, a time limit, a grading question."""

from __future__ import annotations

import pytest

from readerstudy.studies.models import Answer, Question
from tests.browsing import launch, log_in, require_chromium, screenshot

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, readers):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield log_in(browser.new_context(viewport={"width": 1280, "height": 800}), live_server, "rad")
        browser.close()


def test_practice_feedback_then_break(live_server, make_study, page):
    study = make_study("paired", cases=4, practice_case_count=1, break_every=2, blank_ms=200)
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    page.wait_for_selector("text=Practice 1 of 1")
    page.wait_for_selector("#reader.shown")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_selector("#feedback:not([hidden])")
    text = page.inner_text("#feedback")
    assert "the synthetic image was on the" in text
    screenshot(page, "practice-feedback")
    page.keyboard.press("Enter")
    for number in (1, 2):
        page.wait_for_selector(f"text=Case {number} of 4")
        page.wait_for_selector("#reader.shown")
        assert page.is_hidden("#feedback")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Time for a break")
    screenshot(page, "break-screen")
    page.click("#continue")
    page.wait_for_selector("text=Case 3 of 4")
    assert Answer.objects.count() == 3


def test_time_limit_hides_images_and_grading_is_recorded(live_server, make_study, page):
    study = make_study("mixed", cases=2, time_limit_seconds=1, blank_ms=0)
    Question.objects.create(study=study, key="kl_grade", label="KL grade", choices="0,1,2,3,4")
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    page.wait_for_selector("#reader.shown")
    page.wait_for_selector("text=Time is up")
    assert page.evaluate("getComputedStyle(document.querySelector('.pane canvas')).visibility") == "hidden"
    page.keyboard.press("s")
    page.keyboard.press("4")
    assert page.is_disabled("#submit")  # the grade is still missing
    page.click("label.choice:has(input[name=q-kl_grade][value='3'])")
    screenshot(page, "mixed-with-grading")
    page.click("#submit")
    page.wait_for_selector("text=Case 2 of 2")
    stored = {a.question: a for a in Answer.objects.all()}
    assert stored["kl_grade"].answer == "3"
    assert stored["real_or_synthetic"].client["timed_out"] is True


def test_browser_sees_the_same_requests_and_headers_for_both_sources(live_server, make_study, page):
    """What the network panel shows differs by source only as the pixels imply."""
    from readerstudy.archive.encoding import encode_png
    from readerstudy.archive.models import Image

    study = make_study("paired", cases=4, blank_ms=0)
    seen = []

    def record(response):
        if "/img/" in response.url:
            request = response.request
            seen.append((response.url, response.body(), response.all_headers(), request.method, request.all_headers()))

    page.on("response", record)
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    for number in range(1, 5):
        page.wait_for_selector(f"text=Case {number} of 4")
        page.wait_for_selector("#reader.shown")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Study complete")
    assert len(seen) == 8
    shapes = {}
    for url, body, headers, method, request_headers in seen:
        image = Image.objects.get(token=url.rsplit("/", 1)[1])
        # The size is exactly what encoding these pixels gives: it says nothing the pixels do not.
        assert body == encode_png(image.read_levels())
        headers = {k: v for k, v in headers.items() if k not in ("date", "content-length")}
        request_headers = {k: v for k, v in request_headers.items() if k != "cookie"}
        shapes.setdefault(image.source, set()).add((method, tuple(sorted(headers.items())), tuple(sorted(request_headers.items()))))
    assert shapes["real"] == shapes["synthetic"] and len(shapes["real"]) == 1
