"""Grade-then-reveal and the wash-out screen in Chromium: grading untold, the reveal screen, then real or synthetic."""

from __future__ import annotations

from datetime import timedelta

import pytest

from readerstudy.studies.generation import prepare
from readerstudy.studies.models import Answer, Question, Study
from tests.browsing import logged_in_page, require_chromium, screenshot

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, readers):
    with logged_in_page(live_server, "rad") as page:
        yield page


def test_grade_untold_then_reveal(live_server, pool, checkpoint, readers, page):
    study = Study.objects.create(name="knee-grading", design="grade_reveal", pool=pool, case_count=2, seed=5, is_open=True,
                                 blank_ms=0, instructions="Grade each knee for osteoarthritis.")
    study.generators.set([checkpoint])
    Question.objects.create(study=study, key="kl_grade", label="Kellgren–Lawrence grade", choices="0,1,2,3,4")
    prepare(study)
    study.assign(readers[0])
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    screenshot(page, "grade-reveal-instructions")
    page.click("#begin")
    page.wait_for_selector("#reader.shown")
    page.evaluate("window.sameGradingPage = true")  # the single-page flow swaps the second case in
    for number in (1, 2):
        page.wait_for_selector(f"text=Case {number} of 2")
        page.wait_for_selector("#reader.shown")
        assert "synthetic" not in page.content().lower().replace("reader.js", "")
        assert page.get_attribute("#reader", "data-design") == "grade"
        assert page.is_disabled("#submit")
        if number == 1:
            page.click("label.choice:has(input[name=q-kl_grade][value='2'])")
            screenshot(page, "grade-reveal-grading")
        else:  # engineer 14's per-question keys: the question's letter, then the grade itself
            assert page.evaluate("window.sameGradingPage") is True
            page.keyboard.press("r")  # no real-or-synthetic key while grading: nothing is chosen
            page.keyboard.press("g")
            page.keyboard.press("2")
            assert page.is_checked("input[name=q-kl_grade][value='2']") and page.is_enabled("#submit")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Some of the images you have just graded were synthetic")
    screenshot(page, "grade-reveal-told")
    page.click("#continue")
    for number in (1, 2):
        page.wait_for_selector(f"text=Case {number} of 2")
        page.wait_for_selector("#reader.shown")
        page.keyboard.press("s")
        page.keyboard.press("4")
        if number == 1:
            screenshot(page, "grade-reveal-judging")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Study complete")
    assert Answer.objects.filter(question="kl_grade").count() == 2
    assert list(Answer.objects.filter(question="real_or_synthetic").values_list("answer", "confidence")) == [("synthetic", 4)] * 2


def test_washout_screen_and_home(live_server, make_study, readers, page):
    study = make_study("mixed", cases=2, repeat_count=1, washout_days=10, blank_ms=0)
    assignment = study.assignments.get(reader=readers[0])
    for slot in assignment.slots.filter(phase=""):
        slot.mark_served()
        slot.record(__import__("uuid").uuid4(), {"real_or_synthetic": "real"}, confidence=2, reading_ms=800, client={})
    opens = Answer.objects.latest("answered_at").answered_at + timedelta(days=10)
    page.goto(f"{live_server.url}/")
    assert f"The repeat block opens on" in page.inner_text("main")
    screenshot(page, "washout-home")
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    assert opens.strftime("%d %B %Y").lstrip("0") in page.inner_text("main")
    screenshot(page, "washout-waiting")
