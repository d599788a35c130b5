"""Reading room 2 in Debian's Chromium: one page for a session, full screen and the countdown over
cases, a deadline a reload keeps, further questions by keyboard, clear endings, prefetch that
does not depend on the source, the coordinator's preview, and a stable layout.

Screenshots land in test-artifacts/ (reading-room-*.png) for a person to look at.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from readerstudy.studies.models import Answer, Assignment, Question, ServedImage, Slot
from tests.browsing import launch, log_in, require_chromium, screenshot
from tests.conftest import make_user

require_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def open_page(browser, live_server, username, viewport=(1366, 768)):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    return context, log_in(context, live_server, username)


def wait_for_case(page, text: str) -> None:
    page.wait_for_selector(f".progress-text:text-is('{text}')")
    page.wait_for_selector("#reader.shown")


def slot(study, username, position) -> Slot:
    return Slot.objects.get(assignment__study=study, assignment__reader__username=username, position=position)


def test_full_screen_and_countdown_last_over_cases_and_a_reload_keeps_the_time(browser, live_server, make_study):
    study = make_study("paired", cases=6, time_limit_seconds=60, blank_ms=100)
    context, page = open_page(browser, live_server, "rad")
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    wait_for_case(page, "Case 1 of 6")
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement && document.fullscreenElement.id === 'reader'")
    url = page.url
    for number in range(1, 6):
        wait_for_case(page, f"Case {number} of 6")
        # Still the same page, still in full screen, and the countdown is inside the full-screen area.
        assert page.url == url
        assert page.evaluate("() => document.fullscreenElement && document.fullscreenElement.contains(document.getElementById('countdown'))")
        assert page.is_visible("#countdown") and page.inner_text("#countdown").endswith("s left")
        if number == 2:
            screenshot(page, "reading-room-fullscreen")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Enter")
    wait_for_case(page, "Case 6 of 6")
    assert page.evaluate("() => document.fullscreenElement && document.fullscreenElement.id === 'reader'")

    # A reload mid-case shows the time left on the server's deadline, not a fresh minute.
    Slot.objects.filter(pk=slot(study, "rad", 6).pk).update(deadline=timezone.now() + timedelta(seconds=9))
    page.reload()
    wait_for_case(page, "Case 6 of 6")
    left = int(page.inner_text("#countdown").split()[0])
    assert 6 <= left <= 9
    page.wait_for_selector("#countdown.warning")  # the last 10 s
    screenshot(page, "reading-room-time-warning")
    Slot.objects.filter(pk=slot(study, "rad", 6).pk).update(deadline=timezone.now() - timedelta(seconds=1))
    page.reload()
    page.wait_for_selector("#time-up:not([hidden])")
    assert "Time is up" in page.inner_text("#time-up")
    assert page.evaluate("getComputedStyle(document.querySelector('.pane canvas')).visibility") == "hidden"
    screenshot(page, "reading-room-time-up")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Study complete")
    assert Answer.objects.get(slot=slot(study, "rad", 6)).client["timed_out"] is True
    context.close()


def pane_box(page) -> dict:
    return page.locator(".pane").first.bounding_box()


def test_a_graded_study_by_keyboard_alone_with_a_stable_layout(browser, live_server, make_study):
    study = make_study("mixed", cases=2, practice_case_count=1, blank_ms=50)
    Question.objects.create(study=study, key="kl_grade", label="KL grade", choices="0,1,2,3,4", order=1)
    Question.objects.create(study=study, key="osteophytes", label="Osteophytes", choices="none,small,large", order=2)
    Question.objects.create(study=study, key="comment", label="Comment", kind="text", required=False, order=3)
    context, page = open_page(browser, live_server, "rad")
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    wait_for_case(page, "Practice 1 of 1")
    box = pane_box(page)
    assert page.evaluate("() => document.documentElement.scrollHeight <= innerHeight")

    # Enter on an incomplete answer names what is missing, and sends nothing.
    page.keyboard.press("s")
    page.keyboard.press("Enter")
    missing = page.inner_text("#status")
    assert missing.startswith("Still to answer:") and "confidence" in missing and "KL grade (G)" in missing and "Osteophytes (J)" in missing
    assert "Comment" not in missing  # optional
    assert page.locator("fieldset.missing").count() == 3
    # Confidence and grade rows each have their own keys: 4 is confidence; G then 2 is the grade.
    page.keyboard.press("4")
    page.keyboard.press("g")
    assert page.locator("fieldset.question.armed").count() == 1
    page.keyboard.press("2")
    page.keyboard.press("j")
    page.keyboard.press("2")  # second choice: small
    page.keyboard.press("u")  # into the comment
    page.keyboard.type("rs sharp")  # typing chooses nothing
    page.keyboard.press("Escape")
    assert page.evaluate("() => document.querySelector('input[name=confidence]:checked').value") == "4"
    assert page.evaluate("() => document.querySelector('input[name=answer]:checked').value") == "synthetic"
    screenshot(page, "reading-room-mixed-three-questions")
    page.keyboard.press("Enter")
    page.wait_for_selector("#feedback:not([hidden])")
    assert pane_box(page) == box  # practice feedback does not shrink the image
    screenshot(page, "reading-room-practice-feedback")
    page.keyboard.press("Enter")
    wait_for_case(page, "Case 1 of 2")
    assert pane_box(page) == box
    stored = {a.question: a for a in Answer.objects.filter(slot=slot(study, "rad", 1))}
    assert stored["kl_grade"].answer == "2" and stored["osteophytes"].answer == "small" and stored["comment"].answer == "rs sharp"
    assert stored["real_or_synthetic"].answer == "synthetic" and stored["real_or_synthetic"].confidence == 4
    # H shows the instructions over the case and Escape returns to it, the case untouched.
    page.keyboard.press("h")
    page.wait_for_selector("#instructions-dialog:not([hidden])")
    assert "KL grade" in page.inner_text("#instructions-dialog")
    screenshot(page, "reading-room-instructions-overlay")
    page.keyboard.press("Escape")
    page.wait_for_selector("#instructions-dialog", state="hidden")
    for key in ("r", "1", "g", "0", "j", "3", "Enter"):
        page.keyboard.press(key)
    wait_for_case(page, "Case 2 of 2")
    stored = {a.question: a.answer for a in Answer.objects.filter(slot=slot(study, "rad", 2))}
    assert stored == {"real_or_synthetic": "real", "kl_grade": "0", "osteophytes": "large"}
    context.close()


def test_endings_are_clear_and_never_retried_for_ever(browser, live_server, make_study):
    study = make_study("paired", cases=4, blank_ms=0)
    context, page = open_page(browser, live_server, "rad")
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    wait_for_case(page, "Case 1 of 4")

    # A 4xx is shown and not retried; the case comes back to be answered.
    page.route("**/answer/**", lambda route: route.fulfill(status=400, json={"error": "refused for the test"}))
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_selector("#status:text('refused for the test')")
    page.wait_for_timeout(1500)
    assert len(posts) == 1 and page.is_visible("#reader.shown")

    # A 5xx is retried with backoff, then the page stops with a message and keeps the answer.
    page.unroute("**/answer/**")
    page.route("**/answer/**", lambda route: route.fulfill(status=500, body="error"))
    page.evaluate("() => { document.getElementById('reader').dataset.retryForMs = '2500'; }")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ending:not([hidden])")
    assert "The server is not answering" in page.inner_text("#ending")
    tries = len(posts) - 1
    assert tries >= 2
    page.wait_for_timeout(2500)
    assert len(posts) - 1 == tries  # stopped
    assert page.evaluate("() => Object.keys(localStorage).some((k) => k.startsWith('pending:'))")
    screenshot(page, "reading-room-server-error")
    page.unroute("**/answer/**")
    # Back later: the kept answer is sent once and reading carries on.
    page.reload()
    wait_for_case(page, "Case 2 of 4")
    assert Answer.objects.count() == 1

    # The study is closed while the reader is mid-case: a message of its own, and no retrying.
    study.is_open = False
    study.save()
    before = len(posts)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ending:not([hidden])")
    assert "The study was closed" in page.inner_text("#ending")
    page.wait_for_timeout(2000)
    assert len(posts) == before + 1
    assert not page.evaluate("() => Object.keys(localStorage).some((k) => k.startsWith('pending:'))")
    screenshot(page, "reading-room-closed")
    assert Answer.objects.count() == 1

    # A lost session: its own message and a way to log in again.
    study.is_open = True
    study.save()
    page.reload()
    wait_for_case(page, "Case 2 of 4")
    kept = [c for c in context.cookies() if c["name"] != "sessionid"]  # the session ends; the CSRF cookie stays
    context.clear_cookies()
    context.add_cookies(kept)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ending:not([hidden])")
    assert "You were logged out" in page.inner_text("#ending")
    assert page.get_attribute(".ending-link", "href").startswith("/login/?next=")
    screenshot(page, "reading-room-session-lost")
    context.close()


@pytest.mark.parametrize("design", ["paired", "mixed"])
def test_prefetch_does_not_depend_on_the_source(browser, live_server, make_study, design):
    """The request log: each case's images are fetched once, all at once, in display order,
    while the previous case is read (the first case's with the page); the same for both sources."""
    from tests.test_workflow_browser import request_shapes

    study = make_study(design, cases=6, blank_ms=0)
    context, page = open_page(browser, live_server, "rad")
    log = []
    page.on("request", lambda r: log.append((r.url.rsplit("/", 1)[1], time.monotonic())) if "/img/" in r.url else None)
    seen = []
    page.on("response", lambda r: seen.append((r.url, r.body(), r.all_headers(), r.request.method, r.request.all_headers())) if "/img/" in r.url else None)
    page.goto(f"{live_server.url}/studies/{study.pk}/read/")
    slots = list(Slot.objects.filter(assignment__study=study, assignment__reader__username="rad").order_by("position").select_related("case"))
    # The reader's own URL tokens (ServedImage, issue 12a), not the images' own.
    order = [ServedImage.tokens_for(s.assignment, s.images_in_display_order()) for s in slots]
    for number in range(1, 7):
        wait_for_case(page, f"Case {number} of 6")
        page.wait_for_timeout(300)  # the next case's images are asked for as this one is shown
        expected = [token for tokens in order[: number + 1] for token in tokens]
        assert [token for token, _ in log] == expected  # nothing more, nothing twice, display order
        batch = [at for token, at in log if token in order[min(number, 5)]]
        assert max(batch) - min(batch) < 0.05  # all of a case's images at once
        page.keyboard.press("ArrowLeft" if design == "paired" else "r")
        if design == "mixed":
            page.keyboard.press("3")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Study complete")
    shapes = request_shapes(seen, lambda image: image.source)
    assert shapes["real"] == shapes["synthetic"] and len(shapes["real"]) == 1
    if design == "paired":  # display order is the reader's sides, not the source: real comes first in some cases only
        firsts = {ServedImage.tokens_for(s.assignment, [s.case.real_image])[0] == order[i][0] for i, s in enumerate(slots)}
        assert firsts == {True, False}
    context.close()


def test_coordinator_previews_as_a_reader_and_nothing_is_stored(browser, live_server, make_study):
    study = make_study("mixed", cases=2, practice_case_count=1, blank_ms=0)
    Question.objects.create(study=study, key="kl_grade", label="KL grade", choices="0,1,2,3,4")
    study.coordinators.add(make_user("coord", role="coordinator"))  # previews are for the study's own coordinators
    counts = (Assignment.objects.count(), Slot.objects.count(), Answer.objects.count())
    context, page = open_page(browser, live_server, "coord")
    page.goto(f"{live_server.url}/studies/{study.pk}/preview/")
    wait_for_case(page, "Practice 1 of 1")
    assert page.is_visible("text=Preview as a reader: nothing is stored")
    for key in ("s", "5", "g", "3", "Enter"):
        page.keyboard.press(key)
    page.wait_for_selector("#feedback:not([hidden])")
    text = page.inner_text("#feedback")
    assert "Preview, nothing stored" in text and "real_or_synthetic = synthetic" in text and "kl_grade = 3" in text
    assert "Correct" in text or "Not quite" in text  # practice feedback as a reader gets it
    screenshot(page, "reading-room-preview")
    page.keyboard.press("Enter")
    for number in (1, 2):
        wait_for_case(page, f"Case {number} of 2")
        for key in ("r", "2", "g", "1", "Enter"):
            page.keyboard.press(key)
        page.wait_for_selector("#feedback:not([hidden])")
        page.keyboard.press("Enter")
    page.wait_for_selector("text=Preview finished")
    assert (Assignment.objects.count(), Slot.objects.count(), Answer.objects.count()) == counts
    context.close()


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)], ids=["1366x768", "1920x1080"])
def test_every_reader_screen_at_two_sizes(browser, live_server, make_study, size):
    """Screenshots of every reader screen (test-artifacts/reading-room-WxH-*.png) and the layout
    checks a person would make: nothing scrolls, the image area keeps its size."""
    mixed = make_study("mixed", cases=2, practice_case_count=1, time_limit_seconds=12, break_every=1, blank_ms=0, display_check=True)
    for order, (key, label, choices, kind) in enumerate([
        ("kl_grade", "Kellgren–Lawrence grade", "0,1,2,3,4", "choice"),
        ("osteophytes", "Osteophytes", "none,small,large", "choice"),
        ("comment", "Comment", "", "text"),
    ]):
        Question.objects.create(study=mixed, key=key, label=label, choices=choices, kind=kind, required=kind == "choice", order=order)
    paired = make_study("paired", cases=2, seed=99, blank_ms=0)
    name = f"reading-room-{size[0]}x{size[1]}"
    context, page = open_page(browser, live_server, "rad", size)

    def shot(what):
        screenshot(page, f"{name}-{what}")
        assert page.evaluate("() => document.documentElement.scrollHeight <= innerHeight && document.documentElement.scrollWidth <= innerWidth"), what

    shot("home")
    page.goto(f"{live_server.url}/studies/{mixed.pk}/")
    assert page.is_hidden("#begin")  # the display check comes first
    screenshot(page, f"{name}-instructions", full_page=True)
    page.click("[data-display-check=yes]")
    page.wait_for_selector("#begin:visible")
    page.click("#begin")
    wait_for_case(page, "Practice 1 of 1")
    box = pane_box(page)
    shot("mixed-practice")
    for key in ("s", "4", "g", "2", "j", "1", "Enter"):
        page.keyboard.press(key)
    page.wait_for_selector("#feedback:not([hidden])")
    assert pane_box(page) == box
    shot("practice-feedback")
    page.keyboard.press("Enter")
    wait_for_case(page, "Case 1 of 2")
    assert pane_box(page) == box
    shot("mixed-case-countdown")
    page.keyboard.press("?")
    shot("keys")
    page.keyboard.press("Escape")
    page.keyboard.press("h")
    shot("instructions-overlay")
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    page.keyboard.press("Enter")
    shot("missing-answer")
    page.wait_for_selector("#time-up:not([hidden])", timeout=20000)
    assert pane_box(page) == box
    shot("time-up")
    for key in ("3", "g", "1", "j", "2", "Enter"):
        page.keyboard.press(key)
    page.wait_for_selector("#break-panel:not([hidden])")
    shot("break")
    page.keyboard.press("Enter")
    wait_for_case(page, "Case 2 of 2")
    assert pane_box(page) == box
    assert Answer.objects.get(slot=slot(mixed, "rad", 2), question="real_or_synthetic").client["display_check"]["seen"] is True
    for key in ("r", "5", "g", "0", "j", "3", "Enter"):
        page.keyboard.press(key)
    page.wait_for_selector("text=Study complete")
    shot("finished")

    page.goto(f"{live_server.url}/studies/{paired.pk}/read/")
    wait_for_case(page, "Case 1 of 2")
    shot("paired-case")
    assert page.locator(".reader.paired .answer-area").bounding_box()["height"] < 90  # one row
    page.keyboard.down("z")
    page.wait_for_selector(".loupe[data-pane='1']:not([hidden])")
    shot("paired-loupe-both-panes")
    page.keyboard.up("z")
    page.keyboard.press("1")
    assert page.evaluate("() => readerViewers.state().panes.map((p) => p.pixel_scale)") == [1, 1]  # CSS px at DPR 1
    shot("paired-one-to-one")
    paired.is_open = False
    paired.save()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ending:not([hidden])")
    shot("closed")
    context.close()

    paired.coordinators.add(make_user("coord", role="coordinator"))  # previews are for the study's own coordinators
    context, page = open_page(browser, live_server, "coord", size)
    page.goto(f"{live_server.url}/studies/{paired.pk}/preview/")
    wait_for_case(page, "Case 1 of 2")
    shot("preview")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_selector("#feedback:not([hidden])")
    shot("preview-would-store")
    context.close()
